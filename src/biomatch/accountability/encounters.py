"""Encounters (one per search) and their human adjudication."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Role
from biomatch.errors import AdjudicationRefused, EncounterNotFound
from biomatch.results import (
    AdjudicationOut,
    CandidateStatus,
    EncounterOut,
    SearchContext,
)
from biomatch.store.models import Adjudication, Encounter, Gallery


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
    threshold: float,
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
        threshold=threshold,
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
    candidates = {c["subject_id"] for c in encounter.result.get("candidates", [])}
    if subject_id not in candidates:
        raise AdjudicationRefused(f"{subject_id!r} is not a candidate of this encounter.")
    if any(
        a.reviewer == actor.name and a.subject_external_id == subject_id
        for a in encounter.adjudications
    ):
        raise AdjudicationRefused("You already adjudicated this candidate.")


def encounter_view(encounter: Encounter, gallery: Gallery) -> EncounterOut:
    policy = GalleryPolicy.model_validate(gallery.policy)
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
        threshold=encounter.threshold,
        target_fmr=encounter.target_fmr,
        probe_sha256=encounter.probe_sha256,
        probe_quality=encounter.probe_quality,
        probe_image_kept=encounter.probe_image is not None,
        result=encounter.result,
        candidates=[
            _candidate_status(candidate, encounter.adjudications, policy.confirmations_required)
            for candidate in encounter.result.get("candidates", [])
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
    )


def _candidate_status(
    candidate: dict[str, Any], adjudications: list[Adjudication], required: int
) -> CandidateStatus:
    decisions = [
        a.decision for a in adjudications if a.subject_external_id == candidate["subject_id"]
    ]
    confirms, rejects = decisions.count("confirm"), decisions.count("reject")
    status = "lead"
    if confirms and rejects:
        status = "disputed"
    elif rejects:
        status = "rejected"
    elif confirms >= required:
        status = "confirmed"
    return CandidateStatus(
        subject_id=candidate["subject_id"],
        rank=candidate["rank"],
        score=candidate.get("score"),
        estimated_fmr=candidate["estimated_fmr"],
        status=status,
        confirmations=confirms,
        confirmations_required=required,
    )
