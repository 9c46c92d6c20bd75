"""The core API. The HTTP service, the CLI and Python callers all go through ``BioMatch``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biomatch.config import Settings
from biomatch.errors import GalleryExists, InvalidRequest, NoReference, SubjectExists
from biomatch.extraction import ExtractedSample, extract
from biomatch.index import IndexRegistry
from biomatch.modalities import Modality, load_modality
from biomatch.results import (
    CandidateOut,
    ComparisonOut,
    EnrolmentOut,
    GalleryOut,
    IdentificationOut,
    ModelRef,
    SampleOut,
    ScoreMeaning,
    SubjectOut,
    VerificationOut,
)
from biomatch.store import Database, Gallery, Sample, Subject, Template
from biomatch.store import repository as repo

DEFAULT_MODALITY = "face"


@dataclass(frozen=True)
class _GalleryRef:
    id: int
    name: str
    revision: int


class BioMatch:
    def __init__(self, settings: Settings, modalities: Sequence[str] = (DEFAULT_MODALITY,)) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url)
        self.db.migrate()
        self._modalities = {name: load_modality(name, settings) for name in modalities}
        self._indexes = IndexRegistry(settings.index)
        # Serialises this process's writes, so index revisions are applied in order.
        self._write_lock = threading.Lock()
        self.rebuild_indexes()

    def close(self) -> None:
        self.db.dispose()

    # -- galleries -------------------------------------------------------------------------

    def create_gallery(self, name: str, description: str = "") -> GalleryOut:
        _check_name("gallery name", name)
        try:
            with self._write_lock, self.db.transaction() as session:
                gallery = Gallery(name=name, description=description)
                session.add(gallery)
                session.flush()
                return _gallery_out(gallery, subjects=0)
        except IntegrityError:
            raise GalleryExists(f"A gallery named {name!r} exists.", gallery=name) from None

    def list_galleries(self) -> list[GalleryOut]:
        with self.db.transaction() as session:
            counts = repo.subject_counts(session)
            galleries = session.scalars(select(Gallery).order_by(Gallery.name))
            return [_gallery_out(g, counts.get(g.id, 0)) for g in galleries]

    def get_gallery(self, name: str) -> GalleryOut:
        with self.db.transaction() as session:
            gallery = repo.gallery_by_name(session, name)
            return _gallery_out(gallery, repo.subject_counts(session).get(gallery.id, 0))

    # -- enrolment -------------------------------------------------------------------------

    def extract(
        self,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
        label: str | None = None,
    ) -> ExtractedSample:
        return extract(
            image, self.modality(modality), self.settings, largest_only=largest_only, label=label
        )

    def enrol(
        self,
        gallery: str,
        subject_id: str,
        images: Sequence[bytes],
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
        add_to_existing: bool = False,
    ) -> EnrolmentOut:
        """Enrol every image or none: one failed capture rejects the whole request."""
        if not images:
            raise InvalidRequest("An enrolment needs at least one image.")
        self.get_gallery(gallery)  # fail fast, before any model runs
        samples = [
            self.extract(image, modality, largest_only=largest_only, label=f"image {number}")
            for number, image in enumerate(images, start=1)
        ]
        return self.enrol_samples(gallery, subject_id, samples, add_to_existing=add_to_existing)

    def enrol_samples(
        self,
        gallery: str,
        subject_id: str,
        samples: Sequence[ExtractedSample],
        *,
        add_to_existing: bool = False,
    ) -> EnrolmentOut:
        _check_name("subject id", subject_id)
        if not samples:
            raise InvalidRequest("An enrolment needs at least one sample.")
        with self._write_lock:
            with self.db.transaction() as session:
                record = repo.gallery_by_name(session, gallery)
                subject, created = self._subject_for_enrolment(
                    session, record, subject_id, add_to_existing
                )
                stored = [_store_sample(session, record, subject, sample) for sample in samples]
                session.flush()
                revision = repo.bump_revision(session, record.id)
                result = EnrolmentOut(
                    gallery=gallery,
                    subject_id=subject_id,
                    created=created,
                    samples=[_sample_out(sample, template) for sample, template in stored],
                )
                additions = [
                    (template.id, subject.id, template.model_key, template.data)
                    for _, template in stored
                ]
            self._index_additions(record.id, revision, additions)
        return result

    def get_subject(self, gallery: str, subject_id: str) -> SubjectOut:
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            return SubjectOut(
                gallery=gallery,
                subject_id=subject_id,
                created_at=subject.created_at,
                samples=[_sample_out(sample, sample.template) for sample in subject.samples],
            )

    def delete_subject(self, gallery: str, subject_id: str) -> int:
        """Delete the subject with its samples and templates; returns the samples deleted."""
        with self._write_lock:
            with self.db.transaction() as session:
                record = repo.gallery_by_name(session, gallery)
                subject = repo.subject_by_id(session, record, subject_id)
                removed = session.execute(
                    select(Template.id, Template.model_key).where(Template.subject_id == subject.id)
                ).all()
                deleted = len(subject.samples)
                session.delete(subject)
                session.flush()
                revision = repo.bump_revision(session, record.id)
            for model_key in {key for _, key in removed}:
                ids = [template_id for template_id, key in removed if key == model_key]
                self._indexes.apply_removed(record.id, model_key, revision, ids)
        return deleted

    # -- search ----------------------------------------------------------------------------

    def verify(
        self,
        gallery: str,
        subject_id: str,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
    ) -> VerificationOut:
        """1:1: the probe against every sample of the claimed subject, fused by the maximum."""
        plugin = self.modality(modality)
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            references = repo.subject_templates(session, [subject.id], plugin.info.key)
        if not references:
            raise NoReference(
                f"Subject {subject_id!r} has no {plugin.info.key} template to compare with.",
                subject_id=subject_id,
                model=plugin.info.key,
            )
        probe = self.extract(image, modality, largest_only=largest_only)
        scores = plugin.compare(probe.template, [row[3] for row in references])
        best = float(scores.max())
        target = self.settings.verify_target_fmr
        threshold = plugin.calibration.threshold_for(target)
        meaning = self._meaning(plugin, best)
        return VerificationOut(
            gallery=gallery,
            subject_id=subject_id,
            decision="match" if best >= threshold else "no_match",
            score=meaning.score,
            estimated_fmr=meaning.estimated_fmr,
            fmr_is_upper_bound=meaning.fmr_is_upper_bound,
            threshold=round(threshold, 6),
            target_fmr=target,
            comparisons=[
                ComparisonOut(sample_id=row[1], score=round(float(score), 6))
                for row, score in zip(references, scores, strict=True)
            ],
            model=_model_ref(plugin),
            probe_quality=probe.quality,
        )

    def identify(
        self,
        gallery: str,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        top_k: int = 10,
        largest_only: bool = False,
    ) -> IdentificationOut:
        """1:N: a ranked list of candidates (leads), each with its estimated FMR."""
        if not 1 <= top_k <= self.settings.identify_max_top_k:
            raise InvalidRequest(
                f"top_k must be between 1 and {self.settings.identify_max_top_k}.", top_k=top_k
            )
        plugin = self.modality(modality)
        record = self._gallery_ref(gallery)
        probe = self.extract(image, modality, largest_only=largest_only)
        self._sync_index(record, plugin)
        vector = plugin.index_vector(probe.template)
        # A plug-in whose index vector is coarser than its matcher asks for a wider shortlist.
        width = max(top_k, getattr(plugin, "shortlist_subjects", top_k))
        shortlist = self._indexes.search_subjects(record.id, plugin.info.key, vector, width)
        ranked = self._rescore(plugin, probe.template, [subject for subject, _ in shortlist])
        size = self._indexes.subject_count(record.id, plugin.info.key)
        return IdentificationOut(
            gallery=gallery,
            gallery_size=size,
            candidates=[
                self._candidate(plugin, rank, external_id, score, size)
                for rank, (external_id, score) in enumerate(ranked[:top_k], start=1)
            ],
            target_fmr=self.settings.identify_target_fmr,
            model=_model_ref(plugin),
            probe_quality=probe.quality,
        )

    # -- internals -------------------------------------------------------------------------

    def modality(self, name: str) -> Modality:
        if name not in self._modalities:
            self._modalities[name] = load_modality(name, self.settings)
        return self._modalities[name]

    def rebuild_indexes(self) -> None:
        """Rebuild every in-memory index from the store (start-up, or after a crash)."""
        with self.db.transaction() as session:
            galleries = [
                _GalleryRef(g.id, g.name, g.revision) for g in session.scalars(select(Gallery))
            ]
        for gallery in galleries:
            for plugin in self._modalities.values():
                self._sync_index(gallery, plugin)

    def _gallery_ref(self, name: str) -> _GalleryRef:
        with self.db.transaction() as session:
            gallery = repo.gallery_by_name(session, name)
            return _GalleryRef(gallery.id, gallery.name, gallery.revision)

    def _sync_index(self, gallery: _GalleryRef, plugin: Modality) -> None:
        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with self.db.transaction() as session:
                rows = repo.gallery_templates(session, gallery.id, plugin.info.key)
            vectors = [plugin.index_vector(data) for _, _, data in rows]
            return (
                np.array([row[0] for row in rows], dtype=np.int64),
                np.array([row[1] for row in rows], dtype=np.int64),
                np.stack(vectors) if vectors else np.empty((0, plugin.info.dimensions)),
            )

        self._indexes.sync(
            gallery.id, plugin.info.key, plugin.info.dimensions, gallery.revision, load
        )

    def _index_additions(
        self, gallery_id: int, revision: int, additions: list[tuple[int, int, str, bytes]]
    ) -> None:
        for model_key in {row[2] for row in additions}:
            plugin = next(p for p in self._modalities.values() if p.info.key == model_key)
            rows = [
                (template_id, subject_id, plugin.index_vector(data))
                for template_id, subject_id, key, data in additions
                if key == model_key
            ]
            self._indexes.apply_added(gallery_id, model_key, revision, rows)

    def _rescore(
        self, plugin: Modality, probe: bytes, subject_ids: list[int]
    ) -> list[tuple[str, float]]:
        """Full comparison of the probe with every template of the shortlisted subjects."""
        if not subject_ids:
            return []
        with self.db.transaction() as session:
            rows = repo.subject_templates(session, subject_ids, plugin.info.key)
            names = repo.external_ids(session, subject_ids)
        scores = plugin.compare(probe, [row[3] for row in rows])
        best: dict[int, float] = {}
        for row, score in zip(rows, scores, strict=True):
            best[row[2]] = max(best.get(row[2], -np.inf), float(score))
        return sorted(((names[s], score) for s, score in best.items()), key=lambda p: -p[1])

    def _meaning(self, plugin: Modality, score: float) -> ScoreMeaning:
        estimate = plugin.calibration.estimate(score)
        return ScoreMeaning(
            score=round(score, 6),
            estimated_fmr=estimate.value,
            fmr_is_upper_bound=estimate.is_upper_bound,
        )

    def _candidate(
        self, plugin: Modality, rank: int, external_id: str, score: float, size: int
    ) -> CandidateOut:
        meaning = self._meaning(plugin, score)
        return CandidateOut(
            rank=rank,
            subject_id=external_id,
            score=meaning.score,
            estimated_fmr=meaning.estimated_fmr,
            fmr_is_upper_bound=meaning.fmr_is_upper_bound,
            expected_false_matches=meaning.estimated_fmr * size,
            strong=meaning.estimated_fmr <= self.settings.identify_target_fmr,
        )

    def _subject_for_enrolment(
        self, session: Session, gallery: Gallery, subject_id: str, add_to_existing: bool
    ) -> tuple[Subject, bool]:
        existing = repo.find_subject(session, gallery, subject_id)
        if existing is not None:
            if not add_to_existing:
                raise SubjectExists(
                    f"Gallery {gallery.name!r} already has subject {subject_id!r}.",
                    gallery=gallery.name,
                    subject_id=subject_id,
                )
            return existing, False
        subject = Subject(gallery_id=gallery.id, external_id=subject_id)
        session.add(subject)
        session.flush()
        return subject, True


def _store_sample(
    session: Session, gallery: Gallery, subject: Subject, sample: ExtractedSample
) -> tuple[Sample, Template]:
    record = Sample(
        subject_id=subject.id,
        modality=sample.modality,
        image_sha256=sample.image_sha256,
        width=sample.width,
        height=sample.height,
        quality=sample.quality_scores(),
        capture={"face_box": sample.quality.face_box, "label": sample.label},
    )
    session.add(record)
    session.flush()
    template = Template(
        sample_id=record.id,
        subject_id=subject.id,
        gallery_id=gallery.id,
        model_key=sample.model_key,
        data=sample.template,
    )
    session.add(template)
    return record, template


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > 128 or value != value.strip() or "/" in value:
        raise InvalidRequest(
            f"The {what} must be 1-128 characters, without '/' or surrounding spaces.",
            value=value,
        )


def _gallery_out(gallery: Gallery, subjects: int) -> GalleryOut:
    return GalleryOut(
        name=gallery.name,
        description=gallery.description,
        created_at=gallery.created_at,
        subjects=subjects,
    )


def _sample_out(sample: Sample, template: Template) -> SampleOut:
    return SampleOut(
        sample_id=sample.id,
        modality=sample.modality,
        model=template.model_key,
        image_sha256=sample.image_sha256,
        width=sample.width,
        height=sample.height,
        quality=sample.quality,
        created_at=sample.created_at,
    )


def _model_ref(plugin: Modality) -> ModelRef:
    return ModelRef(
        modality=plugin.info.modality, model_id=plugin.info.model_id, version=plugin.info.version
    )
