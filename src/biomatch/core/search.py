"""1:1 verification and 1:N identification, each recorded as an encounter."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import numpy as np

from biomatch.accountability import encounters as enc
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.state import (
    DEFAULT_MODALITY,
    CoreState,
    GalleryRef,
)
from biomatch.errors import (
    InvalidRequest,
    NoReference,
    PolicyForbids,
    SearchContextMissing,
)
from biomatch.extraction import ExtractedSample
from biomatch.modalities import Modality
from biomatch.results import (
    CandidateOut,
    ComparisonOut,
    IdentificationOut,
    ModelRef,
    ScoreMeaning,
    SearchContext,
    VerificationOut,
)
from biomatch.store import Gallery
from biomatch.store import repository as repo


class SearchAPI(CoreState):
    def verify(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        primary_only: bool = False,
    ) -> VerificationOut:
        """1:1: the probe against every sample of the claimed subject, fused by the maximum."""
        started = datetime.now(UTC)
        record = self._authorise_search(actor, gallery, "verify", context)
        if not record.policy.enforcement:
            self._refuse_opted_out(subject_id)
        plugin = self.modality(modality)
        with self.db.transaction() as session:
            subject = repo.subject_by_id(
                session, repo.gallery_by_name(session, gallery), subject_id
            )
            references = self._subject_templates(session, record.id, [subject.id], plugin.info.key)
        if not references:
            raise NoReference(
                f"Subject {subject_id!r} has no {plugin.info.key} template to compare with.",
                subject_id=subject_id,
                model=plugin.info.key,
            )
        probe = self.extract(image, modality, primary_only=primary_only)
        scores = plugin.compare(probe.template, [row[3] for row in references])
        target = self.settings.verify_target_fmr
        threshold = plugin.calibration.threshold_for(target)
        best = float(scores.max())
        meaning = self._meaning(plugin, best)
        decision = "match" if best >= threshold else "no_match"
        encounter_id = self._record_search(
            actor,
            record,
            "verify",
            context,
            [probe],
            [image],
            started,
            threshold,
            target,
            {"subject_id": subject_id, "decision": decision, **meaning.model_dump()},
        )
        return VerificationOut(
            encounter_id=encounter_id,
            gallery=gallery,
            subject_id=subject_id,
            decision=decision,
            score=meaning.score,
            estimated_fmr=meaning.estimated_fmr,
            fmr_is_upper_bound=meaning.fmr_is_upper_bound,
            threshold=round(threshold, 6),
            target_fmr=target,
            comparisons=[
                ComparisonOut(sample_id=row[1], score=round(float(score), 6))
                for row, score in zip(references, scores, strict=True)
            ],
            model=model_ref(plugin),
            probe_quality=probe.quality,
        )

    def identify(
        self,
        actor: Principal,
        gallery: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        top_k: int = 10,
        primary_only: bool = False,
    ) -> IdentificationOut:
        """1:N: a ranked list of candidates (leads), each with its estimated FMR."""
        started = datetime.now(UTC)
        if not 1 <= top_k <= self.settings.identify_max_top_k:
            raise InvalidRequest(
                f"top_k must be between 1 and {self.settings.identify_max_top_k}.", top_k=top_k
            )
        record = self._authorise_search(actor, gallery, "identify", context)
        plugin = self.modality(modality)
        probe = self.extract(image, modality, primary_only=primary_only)
        self._sync_index(record, plugin)
        vector = plugin.index_vector(probe.template)
        width = max(top_k, plugin.shortlist_subjects)
        shortlist = self.indexes.search_subjects(record.id, plugin.info.key, vector, width)
        ranked = self._rescore(
            plugin, record, probe.template, [subject for subject, _ in shortlist]
        )
        size = self.indexes.subject_count(record.id, plugin.info.key)
        candidates = [
            self._candidate(plugin, rank, external_id, score, size)
            for rank, (external_id, score) in enumerate(ranked[:top_k], start=1)
        ]
        target = self.settings.identify_target_fmr
        encounter_id = self._record_search(
            actor,
            record,
            "identify",
            context,
            [probe],
            [image],
            started,
            plugin.calibration.threshold_for(target),
            target,
            {"gallery_size": size, "candidates": [c.model_dump() for c in candidates]},
        )
        return IdentificationOut(
            encounter_id=encounter_id,
            gallery=gallery,
            gallery_size=size,
            candidates=candidates,
            target_fmr=target,
            model=model_ref(plugin),
            probe_quality=probe.quality,
        )

    def _authorise_search(
        self, actor: Principal, gallery: str, mode: str, context: SearchContext
    ) -> GalleryRef:
        actor.require(Action.SEARCH)
        record = self._gallery_ref(gallery)
        policy = record.policy
        if mode not in policy.modes:
            raise PolicyForbids(f"Gallery {gallery!r} does not allow {mode}.", allowed=policy.modes)
        if actor.role not in policy.search_roles:
            raise PolicyForbids(
                f"Gallery {gallery!r} may not be searched by role {actor.role.value}."
            )
        if context.purpose not in self.settings.purposes:
            raise SearchContextMissing(
                f"Purpose {context.purpose!r} is not one of the configured purposes.",
                purposes=self.settings.purposes,
            )
        if policy.case_reference_required and not (context.case_reference or "").strip():
            raise SearchContextMissing(f"Gallery {gallery!r} requires a case reference.")
        self._search_limit.take(actor.name)
        return record

    def _record_search(
        self,
        actor: Principal,
        gallery: GalleryRef,
        kind: str,
        context: SearchContext,
        probes: list[ExtractedSample],
        images: list[bytes],
        started: datetime,
        threshold: float,
        target_fmr: float,
        result: dict[str, object],
    ) -> str:
        """The encounter and its audit entry, in one transaction. A probe image (given for
        single-image searches) is kept, encrypted, only as long as the gallery allows."""
        encounter_id = str(uuid.uuid4())
        ended = datetime.now(UTC)
        hashes = [probe.image_sha256 for probe in probes]
        models = sorted({probe.model_key for probe in probes})
        with self._write_lock, self.db.write_transaction() as session:
            record = session.get_one(Gallery, gallery.id)
            encounter = enc.new_encounter(
                encounter_id=encounter_id,
                kind=kind,
                actor=actor,
                gallery=record,
                context=context,
                started=started,
                ended=ended,
                model_key="+".join(models),
                threshold=threshold,
                target_fmr=target_fmr,
                probe_sha256=hashes[0] if len(hashes) == 1 else _digest(hashes),
                probe_quality=_probe_quality(probes),
                result=result,
            )
            expiry = enc.probe_expiry(gallery.policy, started)
            if expiry is not None and len(images) == 1:
                encounter.probe_image = self.vault.seal(
                    session, gallery.id, images[0], f"probe:{encounter_id}"
                )
                encounter.probe_expires_at = expiry
            session.add(encounter)
            self.audit.append(
                session,
                actor,
                f"search.{kind}",
                gallery=gallery.name,
                encounter=encounter_id,
                subject=str(result.get("subject_id")) if kind == "verify" else None,
                details={
                    "period": [started.isoformat(), ended.isoformat()],
                    "purpose": context.purpose,
                    "legal_authority": context.legal_authority,
                    "case_reference": context.case_reference,
                    "probe_sha256": hashes,
                    "model": models,
                    "result": result,
                },
            )
        return encounter_id

    def _rescore(
        self, plugin: Modality, gallery: GalleryRef, probe: bytes, subject_ids: list[int]
    ) -> list[tuple[str, float]]:
        """Full comparison of the probe with every template of the shortlisted subjects."""
        if not subject_ids:
            return []
        with self.db.transaction() as session:
            rows = self._subject_templates(session, gallery.id, subject_ids, plugin.info.key)
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


def model_ref(plugin: Modality) -> ModelRef:
    return ModelRef(
        modality=plugin.info.modality, model_id=plugin.info.model_id, version=plugin.info.version
    )


def _digest(hashes: list[str]) -> str:
    return hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _probe_quality(probes: list[ExtractedSample]) -> dict[str, float]:
    if len(probes) == 1:
        return probes[0].quality_scores()
    return {
        f"{number}.{probe.modality}.{name}": score
        for number, probe in enumerate(probes, start=1)
        for name, score in probe.quality_scores().items()
    }
