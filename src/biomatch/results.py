"""What the core API returns; the HTTP and CLI layers serialise these as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from biomatch.accountability.policy import GalleryPolicy

LEAD_NOTICE = (
    "Candidates are investigative leads, not identifications. A score's estimated false "
    "match rate says how often an unrelated person scores that high; any decision needs "
    "review by a trained person."
)


DECISION_RULE = "match where the (fused) estimated FMR <= target_fmr"


class ModelRef(BaseModel):
    modality: str
    model_id: str
    version: str


class QualityCheckOut(BaseModel):
    name: str
    score: float
    threshold: str
    passed: bool
    message: str


class CaptureQuality(BaseModel):
    passed: bool
    checks: list[QualityCheckOut]
    region: tuple[int, int, int, int] | None = Field(
        None, description="Region of the subject used (left, top, right, bottom)."
    )
    position: int | None = Field(
        None, description="The capture's position (ANSI/NIST finger code), where known."
    )


class GalleryOut(BaseModel):
    name: str
    description: str
    created_at: datetime
    subjects: int
    policy: GalleryPolicy


Trimmed = Annotated[str, StringConstraints(strip_whitespace=True)]


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class SearchContext(BaseModel):
    """Why a search is made and under what authority; recorded with the encounter. Text is
    trimmed; purpose and authority must say something, a blank optional field is absent.
    ``training``: the operator is practising; only a training gallery may be searched."""

    purpose: Trimmed = Field(min_length=1, max_length=64)
    legal_authority: Trimmed = Field(min_length=3, max_length=200)
    case_reference: Annotated[Trimmed | None, BeforeValidator(_blank_is_none)] = Field(
        None, max_length=200
    )
    location: Annotated[Trimmed | None, BeforeValidator(_blank_is_none)] = Field(
        None, max_length=200
    )
    notes: Annotated[Trimmed | None, BeforeValidator(_blank_is_none)] = Field(None, max_length=1000)
    training: bool = False


class ConsentIn(BaseModel):
    notice_version: Trimmed = Field(min_length=1, max_length=64)
    purpose: Trimmed = Field(min_length=1, max_length=200)
    term_days: int | None = Field(None, ge=1, le=3650)


class OperatorOut(BaseModel):
    name: str
    role: str
    active: bool
    created_at: datetime


class IssuedOperator(OperatorOut):
    token: str = Field(description="Shown once; only a salted hash is stored.")


class SampleOut(BaseModel):
    sample_id: int
    modality: str
    model: str = Field(description="The model of the template made at enrolment.")
    models: list[str] = Field(description="Every model the sample is templated with.")
    image_kept: bool = Field(description="The reference image is kept (encrypted).")
    image_sha256: str
    width: int
    height: int
    quality: dict[str, float]
    created_at: datetime


class SubjectOut(BaseModel):
    gallery: str
    subject_id: str
    created_at: datetime
    samples: list[SampleOut]


class EnrolmentOut(BaseModel):
    gallery: str
    subject_id: str
    created: bool = Field(description="False where samples were added to an existing subject.")
    samples: list[SampleOut]
    left_out: list[CaptureQuality] = Field(
        [],
        description="Parts of a split capture (fingertips of a four-finger photo) that failed "
        "the quality gate and were not enrolled, each with its position and reasons.",
    )


class TemplateUpgradeOut(BaseModel):
    gallery: str
    model: str
    templated: int = Field(description="Samples templated with the model by this run.")
    already_templated: int
    needs_recapture: list[str] = Field(
        description="Subjects with a sample that could not be templated: no kept reference "
        "image, or the image fails the new model's quality gate."
    )


class ComparisonOut(BaseModel):
    item: int = Field(description="Probe item (1-based) that was compared.")
    sample_id: int
    score: float


class ScoreMeaning(BaseModel):
    score: float
    estimated_fmr: float = Field(
        description="Share of unrelated pairs (impostors) that score at least this high."
    )
    fmr_is_upper_bound: bool = Field(
        description="True when the score is above every calibration impostor score."
    )


class ContributionOut(BaseModel):
    """One probe item's evidence about one subject: its best score over the subject's
    templates, and what that score means under the item's model calibration."""

    item: int
    modality: str
    model: str
    position: int | None = Field(description="Finger position code; None for a face.")
    score: float
    estimated_fmr: float = Field(
        description="The best score's FMR times comparisons: an impostor enrolled with k "
        "templates has k chances to score high (the union bound)."
    )
    fmr_is_upper_bound: bool
    quality_weight: float
    comparisons: int = Field(description="How many of the subject's templates were compared.")


class CandidateOut(BaseModel):
    rank: int
    subject_id: str
    score: float | None = Field(
        description="The raw score where one probe item decided; None for a fused result."
    )
    estimated_fmr: float = Field(description="Fused estimated FMR (one item: its own).")
    fmr_is_upper_bound: bool = False
    score_threshold: float | None = Field(
        None,
        description="One probe item: the score at which this candidate is strong (its best "
        "score's FMR times its templates compared meets target_fmr); None where fused or "
        "where the calibration cannot resolve target_fmr / templates.",
    )
    expected_false_matches: float | None = Field(
        None,
        description="estimated_fmr x gallery size: unrelated people expected to score this high.",
    )
    strong: bool = Field(description="estimated_fmr at or below the configured identify FMR.")
    modalities: list[str] = []
    contributions: list[ContributionOut] = []


class VerificationOut(BaseModel):
    encounter_id: str
    gallery: str
    subject_id: str
    decision: Literal["match", "no_match"]
    decision_rule: str = DECISION_RULE
    score: float | None = Field(
        description="One probe item: the best score over the subject's samples; None if fused."
    )
    estimated_fmr: float
    fmr_is_upper_bound: bool
    target_fmr: float
    score_threshold: float | None = Field(
        description="One probe item: the score at which the subject's estimated FMR (its "
        "best score's FMR times the templates compared) meets target_fmr."
    )
    modalities: list[str]
    contributions: list[ContributionOut]
    comparisons: list[ComparisonOut]
    model: ModelRef | None = Field(description="The model of a one-item probe.")
    models: list[ModelRef]
    probe_quality: list[CaptureQuality] = Field(
        description="Each probe item's quality; then the parts of a split capture (fingertips "
        "of a four-finger photo) left out for failing the gate (passed false)."
    )


class IdentificationOut(BaseModel):
    encounter_id: str
    gallery: str
    gallery_size: int = Field(description="Enrolled subjects the probe could be compared with.")
    candidates: list[CandidateOut]
    result_type: Literal["investigative_leads"] = "investigative_leads"
    notice: str = LEAD_NOTICE
    target_fmr: float
    score_threshold: float | None = Field(
        description="One probe item: the score at which a candidate compared through one "
        "template is strong (each candidate's own, for its templates, is its score_threshold)."
    )
    model: ModelRef | None
    models: list[ModelRef]
    probe_quality: list[CaptureQuality] = Field(
        description="Each probe item's quality; then the parts of a split capture (fingertips "
        "of a four-finger photo) left out for failing the gate (passed false)."
    )


class AdjudicationOut(BaseModel):
    subject_id: str
    reviewer: str
    decision: Literal["confirm", "reject", "inconclusive"]
    reason: str
    created_at: datetime


class CandidateStatus(BaseModel):
    subject_id: str
    rank: int
    score: float | None = Field(description="None for fused candidates.")
    estimated_fmr: float
    status: Literal["lead", "confirmed", "rejected", "disputed"]
    confirmations: int
    confirmations_required: int


class EncounterOut(BaseModel):
    encounter_id: str
    kind: Literal["verify", "identify"]
    operator: str
    gallery: str
    started_at: datetime
    ended_at: datetime
    purpose: str
    legal_authority: str
    case_reference: str | None
    location: str | None
    notes: str | None
    model: str
    target_fmr: float
    score_threshold: float | None = Field(description="None where several items were fused.")
    probe_sha256: str
    probe_quality: dict[str, float]
    probe_image_kept: bool
    result: dict[str, object]
    candidates: list[CandidateStatus]
    adjudications: list[AdjudicationOut]
    training: bool = Field(False, description="A practice search against a training gallery.")


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    role: str
    action: str
    gallery: str | None
    subject: str | None
    encounter: str | None
    details: dict[str, object]
    prev_hash: str
    hash: str


class RetentionFailure(BaseModel):
    gallery: str
    error: str


class RetentionOut(BaseModel):
    probes_deleted: int
    subjects_deleted: int
    failures: list[RetentionFailure] = Field(
        [], description="Galleries whose run failed (audited as retention.failed); the others ran."
    )


class GalleryDeletionOut(BaseModel):
    gallery: str
    subjects_deleted: int
    samples_deleted: int
    encounters_deleted: int
    data_keys_destroyed: int


class QualityReason(BaseModel):
    name: str = Field(description="The failed check (e.g. brightness_min, yaw_deg).")
    message: str = Field(description="What the operator can do about it, in plain words.")


class PartVerdictOut(BaseModel):
    """The gate's verdict on one part of a split capture (a fingertip of a four-finger photo)."""

    position: int = Field(description="The part's position (ANSI/NIST finger code).")
    region: tuple[int, int, int, int] = Field(description="Where it lies in the capture.")
    passed: bool
    reasons: list[QualityReason]
    checks: list[QualityCheckOut]


class QualityVerdictOut(BaseModel):
    """The capture-quality gate's verdict on one capture; nothing was searched or stored."""

    passed: bool
    modality: str
    model: str
    reasons: list[QualityReason] = Field(
        description="Every failed check (a split capture: what keeps it from a search); empty "
        "when passed."
    )
    checks: list[QualityCheckOut]
    region: tuple[int, int, int, int] | None
    width: int
    height: int
    parts: list[PartVerdictOut] = Field(
        [],
        description="A split capture (layout=four_finger): each fingertip's verdict. It passes "
        "where at least split_capture_min_passed of them pass; the others are left out.",
    )


class PluginOut(BaseModel):
    plugin: str = Field(description="The name a request's modality field takes.")
    modality: str
    capture_kind: str
    model: str


class GalleryChoice(BaseModel):
    """A gallery as the capture app offers it: what its policy lets this operator do."""

    name: str
    description: str
    modes: list[str] = Field(description="Searches this operator may make here.")
    case_reference_required: bool
    training: bool
    keeps_reference_images: bool
    confirmations_required: int


class CapabilitiesOut(BaseModel):
    operator: str
    role: str
    may: list[str]
    purposes: list[str]
    legal_authorities: list[str] = Field(
        description="Configured authorities a search may cite; empty: any stated authority."
    )
    galleries: list[GalleryChoice]
    plugins: list[PluginOut]
    verify_target_fmr: float
    identify_target_fmr: float
    max_upload_bytes: int


class OfflineDiscardIn(BaseModel):
    """A capture queued on a device while offline and discarded there unsent."""

    queued_at: datetime
    discarded_at: datetime
    gallery: str = Field(max_length=64)
    mode: Literal["verify", "identify"]
    purpose: str = Field(max_length=64)
    reason: str = Field("", max_length=200)


class ReviewItemOut(BaseModel):
    """An encounter awaiting this reviewer's adjudication."""

    encounter_id: str
    gallery: str
    operator: str
    started_at: datetime
    purpose: str
    case_reference: str | None
    training: bool
    probe_image_kept: bool
    open_candidates: int = Field(description="Candidates still leads that you have not judged.")


class BulkEnrolOut(BaseModel):
    gallery: str
    subjects: int = Field(description="Subject folders found.")
    enrolled: int = Field(description="Subjects this run enrolled.")
    already_enrolled: int = Field(description="Subjects the gallery held already (skipped).")
    images: int = Field(description="Images this run extracted.")
    rejected: list[dict[str, Any]] = Field(description="Images and subjects refused, and why.")


class DuplicateOut(BaseModel):
    subject_a: str
    subject_b: str
    score: float
    estimated_fmr: float
    fmr_is_upper_bound: bool


class DedupOut(BaseModel):
    gallery: str
    model: str
    revision: int = Field(description="The gallery revision the job read.")
    subjects: int
    templates: int
    max_fmr: float
    duplicates: list[DuplicateOut] = Field(
        description="Likely duplicate subjects, most alike first: investigative leads for a "
        "person to review, not decisions."
    )
