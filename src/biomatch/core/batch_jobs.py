"""Whole-gallery jobs through the core: bulk enrolment of a folder and de-duplication, each
run by a ``ChunkRunner`` (this process, or Ray). See ``biomatch.jobs``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.batch import images_by_subject
from biomatch.core.enrolment import EnrolmentAPI
from biomatch.errors import BioMatchError, InvalidRequest
from biomatch.jobs.dedup import DedupContext, find_duplicates, job_fingerprint
from biomatch.jobs.enrol import ExtractContext, Progress, extract_chunk, subject_chunks
from biomatch.jobs.runner import ChunkRunner
from biomatch.results import BulkEnrolOut, DedupOut, DuplicateOut
from biomatch.store import Subject
from biomatch.store import repository as repo


class BatchJobsAPI(EnrolmentAPI):
    def enrol_folder(
        self,
        actor: Principal,
        gallery: str,
        folder: Path,
        runner: ChunkRunner,
        *,
        modality: str = "face",
        primary_only: bool = False,
        subjects_per_chunk: int = 4,
        progress: Progress | None = None,
    ) -> BulkEnrolOut:
        """Enrol a folder laid out <subject>/<image>, skipping subjects already enrolled."""
        actor.require(Action.SUBJECT_ENROL)
        by_subject = images_by_subject(folder)
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            present = set(
                session.scalars(select(Subject.external_id).where(Subject.gallery_id == record.id))
            )
        chunks = subject_chunks(by_subject, present, subjects_per_chunk)
        images = sum(len(paths) for _, chunk in chunks for _, paths in chunk)
        context = ExtractContext(modality, self.settings, primary_only)
        enrolled, done, rejected = 0, 0, []
        for _, results in runner.run(extract_chunk, context, chunks):
            for subject, extracted in results:
                samples = [sample for _, sample, _ in extracted if sample is not None]
                rejected += [{"image": path, **error} for path, _, error in extracted if error]
                done += len(extracted)
                if not samples:
                    continue
                try:
                    self.enrol_samples(actor, gallery, subject, samples)
                    enrolled += 1
                except BioMatchError as exc:
                    rejected.append({"image": str(folder / subject), **exc.to_dict()})
            if progress is not None:
                progress(done, images)
        return BulkEnrolOut(
            gallery=gallery,
            subjects=len(by_subject),
            enrolled=enrolled,
            already_enrolled=len(present & set(by_subject)),
            images=images,
            rejected=rejected,
        )

    def deduplicate(
        self,
        actor: Principal,
        gallery: str,
        runner: ChunkRunner,
        *,
        model: str = "face",
        max_fmr: float = 1e-4,
        shortlist: int = 10,
        chunk_subjects: int = 64,
        checkpoint: Path | None = None,
        progress: Progress | None = None,
    ) -> DedupOut:
        """Search every subject of the gallery against the rest: pairs of subjects whose
        best comparison has an estimated FMR of at most ``max_fmr``."""
        actor.require(Action.SUBJECT_READ)
        if not 0 < max_fmr <= 1 or shortlist < 1 or chunk_subjects < 1:
            raise InvalidRequest(
                "max_fmr must be in (0, 1], shortlist and chunk_subjects at least 1."
            )
        plugin = self.modality(model)
        key = plugin.info.key
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            rows = repo.gallery_templates(session, record.id, key)
            names = repo.external_ids(session, sorted({s for _, s, _ in rows}))
            templates = [self._open_template(session, record.id, key, d) for _, _, d in rows]
            revision = record.revision
        subject_order = sorted(names, key=lambda s: names[s])
        position = {subject: number for number, subject in enumerate(subject_order)}
        context = DedupContext(
            plugin_name=model,
            settings=self.settings,
            templates=templates,
            owners=np.array([position[s] for _, s, _ in rows], dtype=np.int64),
            vectors=np.stack([plugin.index_vector(t) for t in templates])
            if templates
            else np.empty((0, plugin.info.dimensions), dtype=np.float32),
            shortlist=shortlist,
        )
        fingerprint = job_fingerprint(
            gallery=record.id, revision=revision, model=key, shortlist=shortlist,
            chunk_subjects=chunk_subjects,
        )  # fmt: skip
        pairs = find_duplicates(
            context,
            [names[s] for s in subject_order],
            runner,
            max_fmr=max_fmr,
            chunk_subjects=chunk_subjects,
            checkpoint=checkpoint,
            fingerprint=fingerprint,
            progress=progress,
        )
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                actor,
                "gallery.deduplicate",
                gallery=gallery,
                details={
                    "model": key,
                    "revision": revision,
                    "max_fmr": max_fmr,
                    "pairs": len(pairs),
                },
            )
        return DedupOut(
            gallery=gallery,
            model=key,
            revision=revision,
            subjects=len(subject_order),
            templates=len(templates),
            max_fmr=max_fmr,
            duplicates=[DuplicateOut(**vars(pair)) for pair in pairs],
        )
