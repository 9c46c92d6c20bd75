"""Routes: authenticate, parse the request, call the core, return its result. No logic here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from biomatch.accountability import reports
from biomatch.accountability.audit_filter import AuditFilter
from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action, Role
from biomatch.errors import (
    ConsentRequired,
    EmptyUpload,
    ImageTooLarge,
    SearchContextMissing,
    TooManyImages,
)
from biomatch.imaging import for_browser, media_type_of
from biomatch.results import (
    AuditEntryOut,
    ConsentIn,
    EncounterOut,
    EnrolmentOut,
    GalleryDeletionOut,
    GalleryOut,
    IdentificationOut,
    IssuedOperator,
    OperatorOut,
    RetentionOut,
    SearchContext,
    SubjectOut,
    TemplateUpgradeOut,
    Trimmed,
    VerificationOut,
)
from biomatch.service import DEFAULT_MODALITY, BioMatch

router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="An operator's API token (bm_<id>_<secret>).")


def get_core(request: Request) -> BioMatch:
    core: BioMatch = request.app.state.core
    return core


Core = Annotated[BioMatch, Depends(get_core)]


def get_principal(
    request: Request,
    core: Core,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    client = request.client.host if request.client else None
    return core.authenticate(credentials.credentials if credentials else None, client)


Operator = Annotated[Principal, Depends(get_principal)]
ModalityField = Annotated[str, Form(description="Biometric modality of the images.")]
CaptureField = Annotated[
    str | None,
    Form(
        description="Capture kind: for fingers 'contact' (a scanner print, the default) or "
        "'contactless' (a phone-camera photo); GET /v1/health lists the installed kinds."
    ),
]
LayoutField = Annotated[
    str | None,
    Form(
        description="'four_finger' (with hand): the image is one photo of the four fingers of "
        "one hand, searched as its four fingertips (capture=contactless)."
    ),
]
HandField = Annotated[str | None, Form(description="left or right, for layout=four_finger.")]
ViewQuery = Annotated[
    bool,
    Query(
        description="true: as a browser can show it (a TIFF as a PNG of the same pixels); "
        "default: the bytes as kept, whose SHA-256 the audit log holds."
    ),
]
PrimaryOnly = Annotated[
    bool,
    Form(
        description="Use the primary face where several are found (nearest the image centre, "
        "or the largest: setting face.primary), instead of refusing."
    ),
]


def search_context(
    purpose: Annotated[str | None, Form(description="One of the configured purposes.")] = None,
    legal_authority: Annotated[str | None, Form(description="Law or mandate relied on.")] = None,
    case_reference: Annotated[str | None, Form()] = None,
    location: Annotated[str | None, Form()] = None,
    notes: Annotated[str | None, Form()] = None,
    training: Annotated[
        bool, Form(description="A practice search: only a training gallery may be searched.")
    ] = False,
) -> SearchContext:
    try:
        return SearchContext(
            purpose=purpose or "",
            legal_authority=legal_authority or "",
            case_reference=case_reference,
            location=location,
            notes=notes,
            training=training,
        )
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors()})
        raise SearchContextMissing(
            "Every search states its purpose and legal authority: "
            f"missing or invalid {', '.join(fields)}.",
            fields=fields,
        ) from None


def consent_fields(
    consent_notice_version: Annotated[str | None, Form()] = None,
    consent_purpose: Annotated[str | None, Form()] = None,
    consent_term_days: Annotated[int | None, Form()] = None,
) -> ConsentIn | None:
    if consent_notice_version is None and consent_purpose is None:
        return None
    try:
        return ConsentIn(
            notice_version=consent_notice_version or "",
            purpose=consent_purpose or "",
            term_days=consent_term_days,
        )
    except ValidationError:
        raise ConsentRequired(
            "A consent record needs consent_notice_version and consent_purpose."
        ) from None


Context = Annotated[SearchContext, Depends(search_context)]
Consent = Annotated[ConsentIn | None, Depends(consent_fields)]


# Sequence numbers and row ids are 32-bit signed integers (PostgreSQL `integer`).
MAX_ID = 2**31 - 1


async def read_uploads(uploads: list[UploadFile], core: BioMatch) -> list[bytes]:
    """Every upload's bytes, after checking their count (before reading any)."""
    limit = core.settings.max_images_per_enrolment
    if len(uploads) > limit:
        raise TooManyImages(
            f"{len(uploads)} images in one request; the limit is {limit}.", limit=limit
        )
    return [await read_upload(upload, core) for upload in uploads]


async def read_upload(upload: UploadFile, core: BioMatch) -> bytes:
    limit = core.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if not data:
        raise EmptyUpload(f"The upload {upload.filename!r} is empty.")
    if len(data) > limit:
        raise ImageTooLarge(f"The upload {upload.filename!r} exceeds {limit} bytes.", limit=limit)
    return data


class Health(BaseModel):
    status: str
    models: list[str]
    capture_kinds: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Capture kinds by modality (finger: contact, contactless) the installed "
        "plug-ins take.",
    )


class Me(BaseModel):
    name: str
    role: Role
    may: list[Action]


class OperatorIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role


class GalleryIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field("", max_length=500)
    policy: GalleryPolicy | None = None
    preset: str | None = Field(None, description="travellers or investigations")


class OptOutIn(BaseModel):
    person_ref: str = Field(min_length=1, max_length=128)


class OptOutOut(BaseModel):
    recorded: bool
    enrolments_erased: int


class AdjudicationIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=128)
    decision: Literal["confirm", "reject", "inconclusive"]
    reason: Trimmed = Field(min_length=3, max_length=1000)


class ChainOut(BaseModel):
    intact: bool
    entries: int
    checkpoints_verified: int
    first_broken_seq: int | None
    problem: str | None
    finding: str | None = Field(
        description="What was found: missing_entry, broken_link, altered, forged_append, "
        "truncated, rewritten, checkpoint_forged, checkpoint_mismatch, checkpoint_deleted, "
        "witness_missing or witness_forged; None where intact."
    )
    witnessed_seq: int | None = Field(description="The newest head the witness signed.")


# -- service --------------------------------------------------------------------------------


@router.get("/health", response_model=Health, tags=["service"])
def health(core: Core) -> Health:
    return Health(
        status="ok",
        models=[core.modality(DEFAULT_MODALITY).info.key],
        capture_kinds=core.capture_kinds(),
    )


@router.get("/me", response_model=Me, tags=["operators"])
def me(actor: Operator) -> Me:
    from biomatch.accountability.roles import MATRIX

    return Me(
        name=actor.name, role=actor.role, may=[a for a, r in MATRIX.items() if actor.role in r]
    )


# -- operators ------------------------------------------------------------------------------


@router.post("/operators", response_model=IssuedOperator, status_code=201, tags=["operators"])
def create_operator(body: OperatorIn, actor: Operator, core: Core) -> IssuedOperator:
    return core.create_operator(actor, body.name, body.role)


@router.get("/operators", response_model=list[OperatorOut], tags=["operators"])
def list_operators(actor: Operator, core: Core) -> list[OperatorOut]:
    return core.list_operators(actor)


@router.delete("/operators/{name}", response_model=OperatorOut, tags=["operators"])
def revoke_operator(name: str, actor: Operator, core: Core) -> OperatorOut:
    return core.revoke_operator(actor, name)


# -- galleries and subjects -----------------------------------------------------------------


@router.post("/galleries", response_model=GalleryOut, status_code=201, tags=["galleries"])
def create_gallery(body: GalleryIn, actor: Operator, core: Core) -> GalleryOut:
    return core.create_gallery(
        actor, body.name, body.description, policy=body.policy, preset=body.preset
    )


@router.get("/galleries", response_model=list[GalleryOut], tags=["galleries"])
def list_galleries(actor: Operator, core: Core) -> list[GalleryOut]:
    return core.list_galleries(actor)


@router.get("/galleries/{gallery}", response_model=GalleryOut, tags=["galleries"])
def get_gallery(gallery: str, actor: Operator, core: Core) -> GalleryOut:
    return core.get_gallery(actor, gallery)


@router.delete("/galleries/{gallery}", response_model=GalleryDeletionOut, tags=["galleries"])
def delete_gallery(
    gallery: str,
    actor: Operator,
    core: Core,
    reason: Annotated[Trimmed, Query(min_length=3, max_length=500)] = "gallery deletion",
) -> GalleryDeletionOut:
    """Erase the gallery and everything in it (admins; the audit trail is kept)."""
    return core.delete_gallery(actor, gallery, reason)


@router.post(
    "/galleries/{gallery}/subjects", response_model=EnrolmentOut, status_code=201, tags=["subjects"]
)
async def enrol(
    gallery: str,
    actor: Operator,
    core: Core,
    consent: Consent,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    images: Annotated[list[UploadFile], File(description="One or more images.")],
    modality: ModalityField = DEFAULT_MODALITY,
    primary_only: PrimaryOnly = False,
    capture: CaptureField = None,
) -> EnrolmentOut:
    data = await read_uploads(images, core)
    return await run_in_threadpool(
        core.enrol,
        actor,
        gallery,
        subject_id,
        data,
        core.plugin_for_capture(modality, capture),
        primary_only=primary_only,
        consent=consent,
    )


@router.post(
    "/galleries/{gallery}/subjects/{subject_id}/samples",
    response_model=EnrolmentOut,
    status_code=201,
    tags=["subjects"],
)
async def add_samples(
    gallery: str,
    subject_id: str,
    actor: Operator,
    core: Core,
    images: Annotated[list[UploadFile], File(description="One or more images.")],
    modality: ModalityField = DEFAULT_MODALITY,
    primary_only: PrimaryOnly = False,
    capture: CaptureField = None,
) -> EnrolmentOut:
    data = await read_uploads(images, core)
    return await run_in_threadpool(
        core.enrol,
        actor,
        gallery,
        subject_id,
        data,
        core.plugin_for_capture(modality, capture),
        primary_only=primary_only,
        add_to_existing=True,
    )


@router.get(
    "/galleries/{gallery}/subjects/{subject_id}", response_model=SubjectOut, tags=["subjects"]
)
def get_subject(gallery: str, subject_id: str, actor: Operator, core: Core) -> SubjectOut:
    return core.get_subject(actor, gallery, subject_id)


@router.delete("/galleries/{gallery}/subjects/{subject_id}", status_code=204, tags=["subjects"])
def erase_subject(
    gallery: str,
    subject_id: str,
    actor: Operator,
    core: Core,
    reason: Annotated[str, Query(min_length=3, max_length=500)] = "erasure request",
) -> Response:
    core.erase_subject(actor, gallery, subject_id, reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/optouts", response_model=OptOutOut, status_code=201, tags=["subjects"])
def record_optout(body: OptOutIn, actor: Operator, core: Core) -> OptOutOut:
    return OptOutOut(recorded=True, enrolments_erased=core.record_optout(actor, body.person_ref))


# -- search ---------------------------------------------------------------------------------


@router.post("/galleries/{gallery}/verify", response_model=VerificationOut, tags=["search"])
async def verify(
    gallery: str,
    actor: Operator,
    core: Core,
    context: Context,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    image: Annotated[UploadFile, File(description="The probe image.")],
    modality: ModalityField = DEFAULT_MODALITY,
    primary_only: PrimaryOnly = False,
    capture: CaptureField = None,
    layout: LayoutField = None,
    hand: HandField = None,
) -> VerificationOut:
    data = await read_upload(image, core)
    plugin = core.plugin_for_capture(modality, capture)
    return await run_in_threadpool(
        core.verify,
        actor,
        gallery,
        subject_id,
        data,
        context,
        plugin,
        primary_only=primary_only,
        layout=layout,
        hand=hand,
    )


@router.post("/galleries/{gallery}/identify", response_model=IdentificationOut, tags=["search"])
async def identify(
    gallery: str,
    actor: Operator,
    core: Core,
    context: Context,
    image: Annotated[UploadFile, File(description="The probe image.")],
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    modality: ModalityField = DEFAULT_MODALITY,
    primary_only: PrimaryOnly = False,
    capture: CaptureField = None,
    layout: LayoutField = None,
    hand: HandField = None,
) -> IdentificationOut:
    data = await read_upload(image, core)
    return await run_in_threadpool(
        core.identify,
        actor,
        gallery,
        data,
        context,
        core.plugin_for_capture(modality, capture),
        top_k=top_k,
        primary_only=primary_only,
        layout=layout,
        hand=hand,
    )


# -- kept images and model upgrades ---------------------------------------------------------


@router.get(
    "/galleries/{gallery}/subjects/{subject_id}/samples/{sample_id}/image",
    response_class=Response,
    tags=["subjects"],
)
def reference_image(
    gallery: str,
    subject_id: str,
    sample_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    actor: Operator,
    core: Core,
    view: ViewQuery = False,
) -> Response:
    """A kept enrolment image, for adjudicating a lead (reviewers; audited)."""
    return image_response(core.reference_image(actor, gallery, subject_id, sample_id), view=view)


@router.get(
    "/encounters/{encounter_id}/probe-images/{item}", response_class=Response, tags=["encounters"]
)
def probe_image(
    encounter_id: str,
    item: Annotated[int, Path(ge=1, le=100)],
    actor: Operator,
    core: Core,
    view: ViewQuery = False,
) -> Response:
    """A kept probe image of a search (item 1 is its first capture; reviewers; audited)."""
    return image_response(core.probe_image(actor, encounter_id, item), view=view)


def image_response(data: bytes, *, view: bool) -> Response:
    """A kept image: its bytes as kept, or (``view``) as a browser can show them."""
    content, media_type = for_browser(data) if view else (data, media_type_of(data))
    return Response(content, media_type=media_type)


class UpgradeIn(BaseModel):
    model: str = Field(min_length=1, max_length=96, description="A plug-in name or model key.")


@router.post(
    "/galleries/{gallery}/templates/upgrade", response_model=TemplateUpgradeOut, tags=["galleries"]
)
async def upgrade_templates(
    gallery: str, body: UpgradeIn, actor: Operator, core: Core
) -> TemplateUpgradeOut:
    """Template the gallery's kept reference images with another model (resumable)."""
    return await run_in_threadpool(core.upgrade_templates, actor, gallery, body.model)


# -- encounters -----------------------------------------------------------------------------


@router.get("/encounters", response_model=list[EncounterOut], tags=["encounters"])
def list_encounters(
    actor: Operator, core: Core, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[EncounterOut]:
    return core.list_encounters(actor, limit)


@router.get("/encounters/{encounter_id}", response_model=EncounterOut, tags=["encounters"])
def get_encounter(encounter_id: str, actor: Operator, core: Core) -> EncounterOut:
    return core.get_encounter(actor, encounter_id)


@router.post(
    "/encounters/{encounter_id}/adjudications", response_model=EncounterOut, tags=["encounters"]
)
def adjudicate(
    encounter_id: str, body: AdjudicationIn, actor: Operator, core: Core
) -> EncounterOut:
    return core.adjudicate(actor, encounter_id, body.subject_id, body.decision, body.reason)


# -- audit, reports, retention --------------------------------------------------------------


@router.get("/audit", response_model=list[AuditEntryOut], tags=["audit"])
def audit_entries(
    actor: Operator,
    core: Core,
    where: Annotated[AuditFilter, Query()],
    after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    newest_first: Annotated[bool, Query()] = False,
) -> list[AuditEntryOut]:
    """Entries in chain order after ``after_seq`` (page on with the last seq seen), or newest
    first (page back with ``before_seq``)."""
    return core.audit_entries(actor, after_seq, limit, where, newest_first=newest_first)


@router.get("/audit/verify", response_model=ChainOut, tags=["audit"])
def verify_audit(actor: Operator, core: Core) -> ChainOut:
    return ChainOut(**core.verify_audit(actor).as_dict())


@router.get("/audit/export.csv", response_class=PlainTextResponse, tags=["audit"])
def export_audit_csv(actor: Operator, core: Core) -> PlainTextResponse:
    entries = core.audit_entries(actor, 0, 10**9)
    return PlainTextResponse(reports.audit_csv(entries), media_type="text/csv")


@router.get("/reports/transparency", tags=["audit"])
def transparency_report(actor: Operator, core: Core) -> dict[str, object]:
    return core.transparency_report(actor)


@router.get("/reports/transparency.html", response_class=HTMLResponse, tags=["audit"])
def transparency_report_html(actor: Operator, core: Core) -> HTMLResponse:
    return HTMLResponse(reports.transparency_html(core.transparency_report(actor)))


@router.post("/retention/run", response_model=RetentionOut, tags=["audit"])
def run_retention(actor: Operator, core: Core) -> RetentionOut:
    return core.run_retention(actor)
