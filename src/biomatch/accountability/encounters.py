"""Encounters (one per search) and their human adjudication."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability.policy import GalleryPolicy, stored_policy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Role
from biomatch.errors import AdjudicationRefused, EncounterNotFound
from biomatch.results import (
    AdjudicationOut,
    CandidateOut,
    CandidateStatus,
    EncounterOut,
    SearchContext,
)
from biomatch.store.models import Adjudication, Encounter, Gallery

_PACK_MAGIC = b"BMP1"


def pack_probe_images(images: Sequence[bytes]) -> bytes:
    """The probe's images as one blob (sealed as one): magic, count, then each length-
    prefixed, in probe-item order."""
    parts = [_PACK_MAGIC, struct.pack("<I", len(images))]
    for image in images:
        parts += [struct.pack("<Q", len(image)), image]
    return b"".join(parts)


def unpack_probe_images(blob: bytes) -> list[bytes]:
    if blob[:4] != _PACK_MAGIC:
        return [blob]  # kept before probes had several items: one raw image
    (count,) = struct.unpack_from("<I", blob, 4)
    images, offset = [], 8
    for _ in range(count):
        (size,) = struct.unpack_from("<Q", blob, offset)
        images.append(blob[offset + 8 : offset + 8 + size])
        offset += 8 + size
    return images


def probe_expiry(policy: GalleryPolicy, started: datetime) -> datetime | None:
    if policy.probe_retention_hours == 0:
        return None
    return started + timedelta(hours=policy.probe_retention_hours)


def new_encounter(
    *,
    encounter_id: str,
    kind: str,
    actor: Principal,
    gallery: Gallery,
    context: SearchContext,
    started: datetime,
    ended: datetime,
    model_key: str,
    score_threshold: float | None,
    target_fmr: float,
    probe_sha256: str,
    probe_quality: dict[str, float],
    result: dict[str, Any],
) -> Encounter:
    return Encounter(
        id=encounter_id,
        kind=kind,
        operator=actor.name,
        gallery_id=gallery.id,
        started_at=started,
        ended_at=ended,
        purpose=context.purpose,
        legal_authority=context.legal_authority,
        case_reference=context.case_reference,
        location=context.location,
        notes=context.notes,
        model_key=model_key,
        score_threshold=score_threshold,
        target_fmr=target_fmr,
        probe_sha256=probe_sha256,
        probe_quality=probe_quality,
        result=result,
    )


def load_visible(session: Session, actor: Principal, encounter_id: str) -> Encounter:
    """The encounter, where this operator may see it (field operators see their own)."""
    encounter = session.get(Encounter, encounter_id)
    if encounter is None or not _visible(actor, encounter):
        raise EncounterNotFound(f"There is no encounter {encounter_id!r} visible to you.")
    return encounter


def list_visible(session: Session, actor: Principal, limit: int) -> list[Encounter]:
    query = select(Encounter).order_by(Encounter.started_at.desc()).limit(limit)
    if actor.role == Role.FIELD_OPERATOR:
        query = query.where(Encounter.operator == actor.name)
    return list(session.scalars(query))


def _visible(actor: Principal, encounter: Encounter) -> bool:
    return actor.role != Role.FIELD_OPERATOR or encounter.operator == actor.name


def check_adjudication(encounter: Encounter, actor: Principal, subject_id: str) -> None:
    if encounter.kind != "identify":
        raise AdjudicationRefused("Only 1:N leads are adjudicated; 1:1 answers carry a decision.")
    if encounter.operator == actor.name:
        raise AdjudicationRefused(
            "The operator who made the search may not adjudicate its candidates."
        )
    candidates = {c.subject_id for c in candidates_of(encounter)}
    if subject_id not in candidates:
        raise AdjudicationRefused(f"{subject_id!r} is not a candidate of this encounter.")
    if any(
        a.reviewer == actor.name and a.subject_external_id == subject_id
        for a in encounter.adjudications
    ):
        raise AdjudicationRefused("You already adjudicated this candidate.")


def encounter_view(encounter: Encounter, gallery: Gallery) -> EncounterOut:
    policy = stored_policy(gallery.policy, gallery.name)
    return EncounterOut(
        encounter_id=encounter.id,
        kind=encounter.kind,
        operator=encounter.operator,
        gallery=gallery.name,
        started_at=encounter.started_at,
        ended_at=encounter.ended_at,
        purpose=encounter.purpose,
        legal_authority=encounter.legal_authority,
        case_reference=encounter.case_reference,
        location=encounter.location,
        notes=encounter.notes,
        model=encounter.model_key,
        target_fmr=encounter.target_fmr,
        score_threshold=encounter.score_threshold,
        probe_sha256=encounter.probe_sha256,
        probe_quality=encounter.probe_quality,
        probe_image_kept=encounter.probe_image is not None,
        result=encounter.result,
        candidates=[
            _candidate_status(candidate, encounter.adjudications, policy.confirmations_required)
            for candidate in candidates_of(encounter)
        ],
        adjudications=[
            AdjudicationOut(
                subject_id=a.subject_external_id,
                reviewer=a.reviewer,
                decision=a.decision,
                reason=a.reason,
                created_at=a.created_at,
            )
            for a in encounter.adjudications
        ],
        training=policy.training,
    )


def candidates_of(encounter: Encounter) -> list[CandidateOut]:
    """The encounter's 1:N candidates, as recorded."""
    stored = encounter.result.get("candidates", [])
    return [CandidateOut.model_validate(candidate) for candidate in stored]


def _candidate_status(
    candidate: CandidateOut, adjudications: list[Adjudication], required: int
) -> CandidateStatus:
    decisions = [a.decision for a in adjudications if a.subject_external_id == candidate.subject_id]
    confirms, rejects = decisions.count("confirm"), decisions.count("reject")
    status = "lead"
    if confirms and rejects:
        status = "disputed"
    elif rejects:
        status = "rejected"
    elif confirms >= required:
        status = "confirmed"
    return CandidateStatus(
        subject_id=candidate.subject_id,
        rank=candidate.rank,
        score=candidate.score,
        estimated_fmr=candidate.estimated_fmr,
        status=status,
        confirmations=confirms,
        confirmations_required=required,
    )
