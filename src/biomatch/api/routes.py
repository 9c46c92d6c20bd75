"""Routes: parse the request, call the core, return its result. No logic lives here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from biomatch.errors import EmptyUpload, ImageTooLarge
from biomatch.results import (
    EnrolmentOut,
    GalleryOut,
    IdentificationOut,
    SubjectOut,
    VerificationOut,
)
from biomatch.service import DEFAULT_MODALITY, BioMatch

router = APIRouter()


class GalleryIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field("", max_length=500)


class Health(BaseModel):
    status: str
    models: list[str]


def get_core(request: Request) -> BioMatch:
    core: BioMatch = request.app.state.core
    return core


Core = Annotated[BioMatch, Depends(get_core)]
Modality = Annotated[str, Form(description="Biometric modality of the images.")]
LargestOnly = Annotated[
    bool, Form(description="Use the largest face where several are found, instead of refusing.")
]


async def read_upload(upload: UploadFile, core: BioMatch) -> bytes:
    limit = core.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if not data:
        raise EmptyUpload(f"The upload {upload.filename!r} is empty.")
    if len(data) > limit:
        raise ImageTooLarge(f"The upload {upload.filename!r} exceeds {limit} bytes.", limit=limit)
    return data


@router.get("/health", response_model=Health, tags=["service"])
def health(core: Core) -> Health:
    return Health(status="ok", models=[core.modality(DEFAULT_MODALITY).info.key])


@router.post(
    "/galleries", response_model=GalleryOut, status_code=status.HTTP_201_CREATED, tags=["galleries"]
)
def create_gallery(body: GalleryIn, core: Core) -> GalleryOut:
    return core.create_gallery(body.name, body.description)


@router.get("/galleries", response_model=list[GalleryOut], tags=["galleries"])
def list_galleries(core: Core) -> list[GalleryOut]:
    return core.list_galleries()


@router.get("/galleries/{gallery}", response_model=GalleryOut, tags=["galleries"])
def get_gallery(gallery: str, core: Core) -> GalleryOut:
    return core.get_gallery(gallery)


@router.post(
    "/galleries/{gallery}/subjects",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    tags=["subjects"],
)
async def enrol(
    gallery: str,
    core: Core,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    images: Annotated[list[UploadFile], File(description="One or more face images.")],
    modality: Modality = DEFAULT_MODALITY,
    largest_only: LargestOnly = False,
) -> EnrolmentOut:
    data = [await read_upload(image, core) for image in images]
    return await run_in_threadpool(
        core.enrol, gallery, subject_id, data, modality, largest_only=largest_only
    )


@router.post(
    "/galleries/{gallery}/subjects/{subject_id}/samples",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    tags=["subjects"],
)
async def add_samples(
    gallery: str,
    subject_id: str,
    core: Core,
    images: Annotated[list[UploadFile], File(description="One or more face images.")],
    modality: Modality = DEFAULT_MODALITY,
    largest_only: LargestOnly = False,
) -> EnrolmentOut:
    data = [await read_upload(image, core) for image in images]
    return await run_in_threadpool(
        core.enrol,
        gallery,
        subject_id,
        data,
        modality,
        largest_only=largest_only,
        add_to_existing=True,
    )


@router.get(
    "/galleries/{gallery}/subjects/{subject_id}", response_model=SubjectOut, tags=["subjects"]
)
def get_subject(gallery: str, subject_id: str, core: Core) -> SubjectOut:
    return core.get_subject(gallery, subject_id)


@router.delete(
    "/galleries/{gallery}/subjects/{subject_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["subjects"],
)
def delete_subject(gallery: str, subject_id: str, core: Core) -> Response:
    core.delete_subject(gallery, subject_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/galleries/{gallery}/verify", response_model=VerificationOut, tags=["search"])
async def verify(
    gallery: str,
    core: Core,
    subject_id: Annotated[str, Form(min_length=1, max_length=128)],
    image: Annotated[UploadFile, File(description="The probe face image.")],
    modality: Modality = DEFAULT_MODALITY,
    largest_only: LargestOnly = False,
) -> VerificationOut:
    data = await read_upload(image, core)
    return await run_in_threadpool(
        core.verify, gallery, subject_id, data, modality, largest_only=largest_only
    )


@router.post("/galleries/{gallery}/identify", response_model=IdentificationOut, tags=["search"])
async def identify(
    gallery: str,
    core: Core,
    image: Annotated[UploadFile, File(description="The probe face image.")],
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    modality: Modality = DEFAULT_MODALITY,
    largest_only: LargestOnly = False,
) -> IdentificationOut:
    data = await read_upload(image, core)
    return await run_in_threadpool(
        core.identify, gallery, data, modality, top_k=top_k, largest_only=largest_only
    )
