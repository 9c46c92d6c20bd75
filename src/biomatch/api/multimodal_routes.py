"""Routes for multi-finger enrolment, face+finger search and ISO/IEC 19794-2 records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from biomatch.api.routes import Consent, Context, Core, Operator, read_upload
from biomatch.core.enrolment import MAX_ENROLLED_POSITIONS
from biomatch.core.probe import ProbeItem
from biomatch.errors import InvalidRequest, TooManyImages
from biomatch.results import EnrolmentOut, IdentificationOut, VerificationOut
from biomatch.service import BioMatch

router = APIRouter()

Positions = Annotated[
    list[Annotated[int, Field(ge=0, le=10)]],
    Form(description="ANSI/NIST finger position code (0-10) of each finger image, in order."),
]
Fingers = Annotated[
    list[UploadFile],
    File(
        description="Finger images: contact prints at 500 ppi, or phone photos of fingertips "
        "(capture=contactless), or one photo of four fingers (layout=four_finger)."
    ),
]
CaptureKind = Annotated[
    Literal["contact", "contactless"],
    Form(description="'contact' (scanner prints) or 'contactless' (phone-camera photos)."),
]
Hand = Annotated[
    Literal["left", "right"] | None,
    Form(description="The hand of a four-finger photo (names its fingers' positions)."),
]
Layout = Annotated[
    Literal["four_finger"] | None,
    Form(
        description="'four_finger': one photo of the four fingers of one hand, split into "
        "index, middle, ring and little fingertips."
    ),
]


@dataclass(frozen=True)
class FingerCapture:
    """How the finger images of a request were taken."""

    capture: str = "contact"
    layout: str | None = None
    hand: str | None = None


def finger_capture(
    capture: CaptureKind = "contact", layout: Layout = None, hand: Hand = None
) -> FingerCapture:
    return FingerCapture(capture, layout, hand)


Capture = Annotated[FingerCapture, Depends(finger_capture)]


async def _finger_items(
    core: BioMatch, fingers: list[UploadFile], positions: list[int], how: FingerCapture
) -> list[ProbeItem]:
    if len(fingers) > MAX_ENROLLED_POSITIONS:
        raise TooManyImages(
            f"{len(fingers)} finger images; the limit is {MAX_ENROLLED_POSITIONS}.",
            limit=MAX_ENROLLED_POSITIONS,
        )
    name = core.plugin_for_capture("finger", how.capture)
    plugin = None if name == "finger" else name  # the core picks among contact models
    if how.layout is not None:
        if len(fingers) != 1 or positions:
            raise InvalidRequest(
                f"A {how.layout} capture is one photo, without finger_positions: the hand "
                "names its fingers."
            )
        image = await read_upload(fingers[0], core)
        return [ProbeItem("finger", image, plugin=name, layout=how.layout, hand=how.hand)]
    if positions and len(positions) != len(fingers):
        raise InvalidRequest(
            f"{len(fingers)} finger images but {len(positions)} finger positions.",
        )
    codes = positions or [0] * len(fingers)
    return [
        ProbeItem("finger", await read_upload(upload, core), code, plugin=plugin, hand=how.hand)
        for upload, code in zip(fingers, codes, strict=True)
    ]


@router.post(
    "/galleries/{gallery}/fingers",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    tags=["enrolment"],
)
async def enrol_fingers(
    gallery: str,
    core: Core,
    actor: Operator,
    consent: Consent,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    fingers: Fingers,
    how: Capture,
    finger_positions: Positions = [],  # noqa: B006 (FastAPI form default)
    add_to_existing: Annotated[bool, Form()] = False,
) -> EnrolmentOut:
    """Enrol up to ten fingers of one subject, each with its finger position (or the four
    fingers of one photo, layout=four_finger with its hand)."""
    if how.layout is None and not finger_positions:
        raise InvalidRequest("Each finger image needs its finger_positions code.")
    items = await _finger_items(core, fingers, finger_positions, how)
    return await run_in_threadpool(
        core.enrol_probe_items,
        actor,
        gallery,
        subject_id,
        items,
        add_to_existing=add_to_existing,
        consent=consent,
    )


@router.post(
    "/galleries/{gallery}/verify-fused",
    response_model=VerificationOut,
    tags=["search"],
)
async def verify_fused(
    gallery: str,
    core: Core,
    actor: Operator,
    context: Context,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    fingers: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI form default)
    finger_positions: Positions = [],  # noqa: B006
    face: Annotated[UploadFile | None, File(description="Optional face image.")] = None,
    how: Capture = FingerCapture(),
) -> VerificationOut:
    """1:1 with one to four fingers (or a four-finger photo) and/or a face; one fused,
    calibrated answer."""
    items = await _probe(core, fingers, finger_positions, face, how)
    return await run_in_threadpool(core.verify_probe, actor, gallery, subject_id, items, context)


@router.post(
    "/galleries/{gallery}/identify-fused",
    response_model=IdentificationOut,
    tags=["search"],
)
async def identify_fused(
    gallery: str,
    core: Core,
    actor: Operator,
    context: Context,
    fingers: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    finger_positions: Positions = [],  # noqa: B006
    face: Annotated[UploadFile | None, File(description="Optional face image.")] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    how: Capture = FingerCapture(),
) -> IdentificationOut:
    """1:N with one to four fingers (or a four-finger photo) and/or a face; candidates
    ranked by fused FMR."""
    items = await _probe(core, fingers, finger_positions, face, how)
    return await run_in_threadpool(core.identify_probe, actor, gallery, items, context, top_k=top_k)


async def _probe(
    core: BioMatch,
    fingers: list[UploadFile],
    positions: list[int],
    face: UploadFile | None,
    how: FingerCapture,
) -> list[ProbeItem]:
    items = await _finger_items(core, fingers, positions, how) if fingers else []
    if face is not None:
        items.append(ProbeItem("face", await read_upload(face, core)))
    return items


@router.get(
    "/galleries/{gallery}/subjects/{subject_id}/iso19794-2",
    response_class=Response,
    tags=["subjects"],
)
def export_iso19794(
    gallery: str,
    subject_id: str,
    core: Core,
    actor: Operator,
    version: Annotated[Literal["2005", "2011"], Query()] = "2011",
) -> Response:
    """The subject's finger templates as one ISO/IEC 19794-2 minutiae record."""
    data = core.export_iso19794(actor, gallery, subject_id, version)
    return Response(data, media_type="application/octet-stream")


@router.post(
    "/galleries/{gallery}/subjects/{subject_id}/iso19794-2",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    tags=["subjects"],
)
async def import_iso19794(
    gallery: str,
    subject_id: str,
    core: Core,
    actor: Operator,
    record: Annotated[UploadFile, File(description="An ISO/IEC 19794-2 record.")],
    add_to_existing: Annotated[bool, Form()] = False,
) -> EnrolmentOut:
    """Enrol the finger views of a record made by another system, so it can be searched."""
    data = await read_upload(record, core)
    return await run_in_threadpool(
        core.import_iso19794, actor, gallery, subject_id, data, add_to_existing=add_to_existing
    )
