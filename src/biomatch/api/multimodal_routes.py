"""Routes for multi-finger enrolment, face+finger search (see ``multimodal``) and
ISO/IEC 19794-2 interchange (see ``interchange``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from biomatch import interchange, multimodal
from biomatch.api.routes import Core, read_upload
from biomatch.errors import InvalidRequest
from biomatch.results import EnrolmentOut
from biomatch.service import BioMatch

router = APIRouter()
ISO_MEDIA_TYPE = "application/octet-stream"

Positions = Annotated[
    list[int],
    Form(description="ANSI/NIST finger position code (0-10) of each finger image, in order."),
]
Fingers = Annotated[list[UploadFile], File(description="Finger images (contact, 500 ppi).")]


async def _finger_items(
    core: BioMatch, fingers: list[UploadFile], positions: list[int]
) -> list[multimodal.ProbeItem]:
    if positions and len(positions) != len(fingers):
        raise InvalidRequest(
            f"{len(fingers)} finger images but {len(positions)} finger positions.",
        )
    codes = positions or [0] * len(fingers)
    return [
        multimodal.ProbeItem("finger", await read_upload(upload, core), code)
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
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    fingers: Fingers,
    finger_positions: Positions,
    add_to_existing: Annotated[bool, Form()] = False,
) -> EnrolmentOut:
    """Enrol up to ten fingers of one subject, each with its finger position."""
    items = await _finger_items(core, fingers, finger_positions)
    pairs = [(item.finger_position, item.image) for item in items]
    return await run_in_threadpool(
        multimodal.enrol_fingers, core, gallery, subject_id, pairs, add_to_existing=add_to_existing
    )


@router.post(
    "/galleries/{gallery}/verify-fused",
    response_model=multimodal.MultiVerificationOut,
    tags=["search"],
)
async def verify_fused(
    gallery: str,
    core: Core,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    fingers: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI form default)
    finger_positions: Annotated[list[int], Form()] = [],  # noqa: B006
    face: Annotated[UploadFile | None, File(description="Optional face image.")] = None,
) -> multimodal.MultiVerificationOut:
    """1:1 with one to four fingers and/or a face; one fused, calibrated answer."""
    items = await _probe(core, fingers, finger_positions, face)
    return await run_in_threadpool(multimodal.verify, core, gallery, subject_id, items)


@router.post(
    "/galleries/{gallery}/identify-fused",
    response_model=multimodal.MultiIdentificationOut,
    tags=["search"],
)
async def identify_fused(
    gallery: str,
    core: Core,
    fingers: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    finger_positions: Annotated[list[int], Form()] = [],  # noqa: B006
    face: Annotated[UploadFile | None, File(description="Optional face image.")] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
) -> multimodal.MultiIdentificationOut:
    """1:N with one to four fingers and/or a face; candidates ranked by fused FMR."""
    items = await _probe(core, fingers, finger_positions, face)
    return await run_in_threadpool(multimodal.identify, core, gallery, items, top_k)


async def _probe(
    core: BioMatch, fingers: list[UploadFile], positions: list[int], face: UploadFile | None
) -> list[multimodal.ProbeItem]:
    items = await _finger_items(core, fingers, positions)
    if face is not None:
        items.append(multimodal.ProbeItem("face", await read_upload(face, core)))
    return items


@router.get(
    "/galleries/{gallery}/subjects/{subject_id}/iso19794-2",
    response_class=Response,
    responses={200: {"content": {ISO_MEDIA_TYPE: {}}}},
    tags=["interchange"],
)
async def export_iso(
    gallery: str,
    subject_id: str,
    core: Core,
    version: Annotated[Literal["2005", "2011"], Query()] = "2011",
) -> Response:
    """The subject's finger templates as one ISO/IEC 19794-2 finger minutiae record."""
    record = await run_in_threadpool(interchange.export_subject, core, gallery, subject_id, version)
    return Response(content=record, media_type=ISO_MEDIA_TYPE)


@router.post(
    "/galleries/{gallery}/subjects/{subject_id}/iso19794-2",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    tags=["interchange"],
)
async def import_iso(
    gallery: str,
    subject_id: str,
    core: Core,
    record: Annotated[UploadFile, File(description="An ISO/IEC 19794-2 record (2005 or 2011).")],
    add_to_existing: Annotated[bool, Form()] = False,
) -> EnrolmentOut:
    """Enrol the finger views of a record made by another system."""
    data = await read_upload(record, core)
    return await run_in_threadpool(
        interchange.enrol_record, core, gallery, subject_id, data, add_to_existing=add_to_existing
    )
