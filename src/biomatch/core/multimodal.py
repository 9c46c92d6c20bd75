"""Multi-finger and face+finger requests on top of the core API.

A subject may enrol up to ten fingers, each tagged with its ANSI/NIST finger position code
(1 right thumb .. 10 left little; 0 unknown), which travels inside the finger template. A
probe of up to four fingers, with or without a face, gets one fused score per candidate:
each probe item is compared with the candidate's templates of the same modality (and the
same finger position where both are known), its best score becomes an estimated FMR through
its model's calibration, and ``fusion.fuse`` combines those (see there for the rule).
Every fused search goes through the same gate as a single-modality one: role, gallery
policy, purpose and authority, rate limit; and it is recorded as an encounter and audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel

from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.enrolment import EnrolmentAPI
from biomatch.core.search import SearchAPI
from biomatch.errors import InvalidRequest, NoReference
from biomatch.extraction import ExtractedSample
from biomatch.fusion import Evidence, FusedScore, fuse, quality_weight
from biomatch.modalities.finger.template import FingerTemplate
from biomatch.results import CaptureQuality, ConsentIn, EnrolmentOut, SearchContext
from biomatch.store import repository as repo

MAX_ENROLLED_FINGERS = 10
MAX_PROBE_FINGERS = 4
FINGER_POSITIONS = range(0, 11)
# NFIQ 2 from which a finger's evidence counts in full (the gate's minimum counts 5%).
NFIQ2_FULL_WEIGHT = 60.0


@dataclass(frozen=True)
class ProbeItem:
    modality: str  # "face" or "finger"
    image: bytes
    finger_position: int = 0


class ContributionOut(BaseModel):
    modality: str
    finger_position: int | None
    score: float
    estimated_fmr: float
    quality_weight: float


class FusedOut(BaseModel):
    subject_id: str
    estimated_fmr: float
    fmr_is_upper_bound: bool
    modalities: list[str]
    contributions: list[ContributionOut]


class MultiVerificationOut(FusedOut):
    encounter_id: str
    gallery: str
    decision: str
    target_fmr: float
    probe_quality: list[CaptureQuality]


class MultiIdentificationOut(BaseModel):
    encounter_id: str
    gallery: str
    result_type: str = "investigative_leads"
    candidates: list[FusedOut]
    target_fmr: float
    probe_quality: list[CaptureQuality]


def with_position(sample: ExtractedSample, position: int) -> ExtractedSample:
    """The finger sample with its finger position written into its template."""
    _check_position(position)
    template = FingerTemplate.from_bytes(sample.template)
    tagged = replace(template, finger_position=position)
    return replace(sample, template=tagged.to_bytes(), label=f"finger {position}")


class MultimodalAPI(EnrolmentAPI, SearchAPI):
    def enrol_fingers(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        fingers: Sequence[tuple[int, bytes]],
        *,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
    ) -> EnrolmentOut:
        """Enrol (position, image) pairs: every finger or none."""
        actor.require(Action.SUBJECT_ENROL)
        if not 1 <= len(fingers) <= MAX_ENROLLED_FINGERS:
            raise InvalidRequest(f"Enrol 1 to {MAX_ENROLLED_FINGERS} fingers at a time.")
        self._gallery_ref(gallery)  # fail fast, before any model runs
        samples = [
            with_position(self.extract(image, "finger", label=f"finger {position}"), position)
            for position, image in fingers
        ]
        return self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing, consent=consent
        )

    def verify_fused(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        probes: Sequence[ProbeItem],
        context: SearchContext,
    ) -> MultiVerificationOut:
        started = datetime.now(UTC)
        record = self._authorise_search(actor, gallery, "verify", context)
        if not record.policy.enforcement:
            self._refuse_opted_out(subject_id)
        with self.db.transaction() as session:
            subject_pk = repo.subject_by_id(
                session, repo.gallery_by_name(session, gallery), subject_id
            ).id
        samples = self._extract_probes(probes)
        fused = self._fuse_subjects(record.id, [subject_pk], samples).get(subject_pk)
        if fused is None:
            raise NoReference(
                f"Subject {subject_id!r} has no template of any probe modality.",
                subject_id=subject_id,
            )
        target = self.settings.verify_target_fmr
        decision = "match" if fused.estimated_fmr <= target else "no_match"
        out = _fused_out(subject_id, fused)
        encounter_id = self._record_search(
            actor,
            record,
            "verify",
            context,
            [s for s, _ in samples],
            [],
            started,
            target,
            target,
            {
                "subject_id": subject_id,
                "decision": decision,
                "fused": out.model_dump(),
                "decision_rule": "fused estimated FMR <= target FMR",
            },
        )
        return MultiVerificationOut(
            **out.model_dump(),
            encounter_id=encounter_id,
            gallery=gallery,
            decision=decision,
            target_fmr=target,
            probe_quality=[sample.quality for sample, _ in samples],
        )

    def identify_fused(
        self,
        actor: Principal,
        gallery: str,
        probes: Sequence[ProbeItem],
        context: SearchContext,
        top_k: int = 10,
    ) -> MultiIdentificationOut:
        """Candidates: the union of each probe item's index shortlist, ranked by fused FMR."""
        started = datetime.now(UTC)
        if not 1 <= top_k <= self.settings.identify_max_top_k:
            raise InvalidRequest(f"top_k must be between 1 and {self.settings.identify_max_top_k}.")
        record = self._authorise_search(actor, gallery, "identify", context)
        samples = self._extract_probes(probes)
        shortlist: set[int] = set()
        for sample, _ in samples:
            plugin = self.modality(sample.modality)
            size = max(top_k, plugin.shortlist_subjects)
            self._sync_index(record, plugin)
            vector = plugin.index_vector(sample.template)
            hits = self.indexes.search_subjects(record.id, plugin.info.key, vector, size)
            shortlist.update(subject for subject, _ in hits)
        with self.db.transaction() as session:
            names = repo.external_ids(session, sorted(shortlist))
        fused = self._fuse_subjects(record.id, sorted(shortlist), samples)
        # FMRs tie at the calibration's resolution; the fused evidence breaks the tie.
        order = sorted(fused, key=lambda pk: (fused[pk].estimated_fmr, -fused[pk].evidence))
        ranked = [_fused_out(names[pk], fused[pk]) for pk in order]
        target = self.settings.identify_target_fmr
        candidates = [
            {
                "rank": rank,
                "subject_id": out.subject_id,
                "score": None,
                "estimated_fmr": out.estimated_fmr,
                "strong": out.estimated_fmr <= target,
                "modalities": out.modalities,
            }
            for rank, out in enumerate(ranked[:top_k], start=1)
        ]
        encounter_id = self._record_search(
            actor,
            record,
            "identify",
            context,
            [s for s, _ in samples],
            [],
            started,
            target,
            target,
            {"candidates": candidates, "decision_rule": "ranked by fused estimated FMR"},
        )
        return MultiIdentificationOut(
            encounter_id=encounter_id,
            gallery=gallery,
            candidates=ranked[:top_k],
            target_fmr=target,
            probe_quality=[sample.quality for sample, _ in samples],
        )

    def _extract_probes(self, probes: Sequence[ProbeItem]) -> list[tuple[ExtractedSample, int]]:
        fingers = [probe for probe in probes if probe.modality == "finger"]
        faces = [probe for probe in probes if probe.modality == "face"]
        if not probes or len(fingers) > MAX_PROBE_FINGERS or len(faces) > 1:
            raise InvalidRequest(
                f"A probe holds at most one face and 1 to {MAX_PROBE_FINGERS} fingers."
            )
        if len(faces) + len(fingers) != len(probes):
            raise InvalidRequest("Probe items must be 'face' or 'finger'.")
        positions = [probe.finger_position for probe in fingers if probe.finger_position]
        if len(positions) != len(set(positions)):
            raise InvalidRequest("A finger position appears twice in the probe.")
        samples = []
        for number, probe in enumerate(probes, start=1):
            sample = self.extract(probe.image, probe.modality, label=f"{probe.modality} {number}")
            if probe.modality == "finger":
                sample = with_position(sample, probe.finger_position)
            samples.append((sample, probe.finger_position))
        return samples

    def _fuse_subjects(
        self,
        gallery_id: int,
        subject_pks: Sequence[int],
        samples: list[tuple[ExtractedSample, int]],
    ) -> dict[int, FusedScore]:
        """Fused score of each subject that has a template of some probe item's modality. Each
        probe item is compared once with every template of all the subjects (one query, one
        ``compare`` call), then the best score per subject is kept."""
        items: dict[int, list[Evidence]] = {pk: [] for pk in subject_pks}
        for sample, position in samples:
            plugin = self.modality(sample.modality)
            with self.db.transaction() as session:
                rows = self._subject_templates(
                    session, gallery_id, list(subject_pks), plugin.info.key
                )
            if sample.modality == "finger" and position:
                rows = [row for row in rows if _position(row[3]) in (position, 0)]
            if not rows:
                continue
            scores = plugin.compare(sample.template, [row[3] for row in rows])
            best: dict[int, float] = {}
            for row, score in zip(rows, scores, strict=True):
                best[row[2]] = max(best.get(row[2], -np.inf), float(score))
            weight = self._weight(sample)
            for subject_pk, score in best.items():
                estimate = plugin.calibration.estimate(score)
                items[subject_pk].append(
                    Evidence(
                        modality=sample.modality,
                        estimated_fmr=estimate.value,
                        fmr_is_upper_bound=estimate.is_upper_bound,
                        quality_weight=weight,
                        finger_position=position if sample.modality == "finger" else None,
                        score=score,
                    )
                )
        return {pk: fuse(evidence) for pk, evidence in items.items() if evidence}

    def _weight(self, sample: ExtractedSample) -> float:
        if sample.modality != "finger":
            return 1.0
        nfiq2 = sample.quality_scores().get("nfiq2", NFIQ2_FULL_WEIGHT)
        return quality_weight(nfiq2, self.settings.finger.quality.min_nfiq2, NFIQ2_FULL_WEIGHT)


def _position(template: bytes) -> int:
    return FingerTemplate.from_bytes(template).finger_position


def _fused_out(subject_id: str, fused: FusedScore) -> FusedOut:
    return FusedOut(
        subject_id=subject_id,
        estimated_fmr=fused.estimated_fmr,
        fmr_is_upper_bound=fused.fmr_is_upper_bound,
        modalities=list(fused.modalities),
        contributions=[
            ContributionOut(
                modality=item.modality,
                finger_position=item.finger_position,
                score=round(item.score, 6),
                estimated_fmr=item.estimated_fmr,
                quality_weight=round(item.quality_weight, 4),
            )
            for item in fused.contributions
        ],
    )


def _check_position(position: int) -> None:
    if position not in FINGER_POSITIONS:
        raise InvalidRequest(
            "A finger position is an ANSI/NIST code from 0 (unknown) to 10.", position=position
        )
