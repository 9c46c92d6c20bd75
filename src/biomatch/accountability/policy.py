"""Gallery policies: which modes, which roles may search, retention, consent, adjudication.

Policies only ever add restrictions: there is no setting that turns off the purpose,
authority, audit or adjudication requirements of the core.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from biomatch.accountability.roles import Role

log = logging.getLogger("biomatch.policy")

Mode = Literal["verify", "identify"]

MAX_ENROLMENT_RETENTION_DAYS = 36_500  # 100 years
MAX_PROBE_RETENTION_HOURS = 87_600  # 10 years


class GalleryPolicy(BaseModel):
    modes: list[Mode] = Field(["verify"], min_length=1, description="Searches allowed.")
    search_roles: list[Role] = Field(
        [Role.FIELD_OPERATOR], min_length=1, description="Roles that may search this gallery."
    )
    case_reference_required: bool = Field(
        False, description="Searches must name a case reference, not only a legal authority."
    )
    consent_required: bool = Field(False, description="Enrolment needs a consent record.")
    enforcement: bool = Field(
        False,
        description="Enforcement galleries do not consult the opt-out registry before 1:1.",
    )
    enrolment_retention_days: int | None = Field(
        None,
        ge=1,
        le=MAX_ENROLMENT_RETENTION_DAYS,
        description="Subjects are deleted this long after enrolment (at most 100 years).",
    )
    probe_retention_hours: int = Field(
        0,
        ge=0,
        le=MAX_PROBE_RETENTION_HOURS,
        description="Probe images of searches are kept this long (0: not kept; at most 10 years).",
    )
    keep_reference_images: bool = Field(
        True,
        description="Keep enrolment images, encrypted, for adjudication and model upgrades "
        "(deleted with the subject); False keeps only their hash.",
    )
    confirmations_required: int = Field(
        1, ge=1, le=3, description="Independent reviewer confirmations to confirm a lead."
    )
    training: bool = Field(
        False,
        description="A practice gallery: its searches are audited but flagged training, left "
        "out of the transparency statistics; a training search touches no other gallery.",
    )


PRESETS: dict[str, GalleryPolicy] = {
    # Border programmes: 1:1 only, with consent, probes gone within 12 hours.
    "travellers": GalleryPolicy(
        modes=["verify"],
        consent_required=True,
        probe_retention_hours=12,
        enrolment_retention_days=365,
    ),
    # Investigations: 1:N allowed, a case reference on every search, two-person review.
    "investigations": GalleryPolicy(
        modes=["verify", "identify"],
        case_reference_required=True,
        enforcement=True,
        probe_retention_hours=24 * 30,
        confirmations_required=2,
    ),
}


def stored_policy(raw: dict[str, Any], gallery: str) -> GalleryPolicy:
    """A gallery's stored policy. Retention periods that a release before the current bounds
    stored beyond them are read as the maximum (logged): the same in effect, and no request
    or retention run fails on them."""
    clamped = dict(raw)
    for field, ceiling in _CEILINGS.items():
        value = clamped.get(field)
        if isinstance(value, int) and value > ceiling:
            log.warning("gallery %r: stored %s=%d read as %d", gallery, field, value, ceiling)
            clamped[field] = ceiling
    return GalleryPolicy.model_validate(clamped)


_CEILINGS = {
    "enrolment_retention_days": MAX_ENROLMENT_RETENTION_DAYS,
    "probe_retention_hours": MAX_PROBE_RETENTION_HOURS,
}
