"""Routes the capture app and the review console use beside the search API: the quality
gate alone, the operator's choices, offline discards, the review queue, candidate photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from biomatch.api.routes import (
    CaptureField,
    Core,
    HandField,
    LayoutField,
    ModalityField,
    Operator,
    PrimaryOnly,
    image_response,
    read_upload,
)
from biomatch.results import CapabilitiesOut, OfflineDiscardIn, QualityVerdictOut, ReviewItemOut

router = APIRouter()


class OfflineDiscardsIn(BaseModel):
    discards: list[OfflineDiscardIn] = Field(min_length=1, max_length=500)


class OfflineDiscardsOut(BaseModel):
    recorded: int


@router.get("/capabilities", response_model=CapabilitiesOut, tags=["capture"])
def capabilities(actor: Operator, core: Core) -> CapabilitiesOut:
    """Purposes, authorities, the galleries this operator may search (with what their
    policies allow) and the installed plug-ins' capture kinds."""
    return core.capabilities(actor)


@router.post("/quality-check", response_model=QualityVerdictOut, tags=["capture"])
async def quality_check(
    actor: Operator,
    core: Core,
    image: Annotated[UploadFile, File(description="One capture.")],
    modality: ModalityField = "face",
    primary_only: PrimaryOnly = False,
    capture: CaptureField = None,
    layout: LayoutField = None,
    hand: HandField = None,
) -> QualityVerdictOut:
    """The capture-quality gate's verdict with its named reasons (a four-finger photo:
    each fingertip's); searches and stores nothing (the check itself is audited, by hash)."""
    data = await read_upload(image, core)
    plugin = core.plugin_for_capture(modality, capture)
    return await run_in_threadpool(
        core.check_capture,
        actor,
        data,
        plugin,
        primary_only=primary_only,
        layout=layout,
        hand=hand,
    )


@router.post(
    "/offline-discards", response_model=OfflineDiscardsOut, status_code=201, tags=["capture"]
)
def offline_discards(body: OfflineDiscardsIn, actor: Operator, core: Core) -> OfflineDiscardsOut:
    """Captures queued on a device offline and discarded there unsent, reported on reconnect."""
    return OfflineDiscardsOut(recorded=core.record_offline_discards(actor, body.discards))


@router.get("/review-queue", response_model=list[ReviewItemOut], tags=["encounters"])
def review_queue(
    actor: Operator, core: Core, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ReviewItemOut]:
    """1:N encounters awaiting your adjudication, oldest first (never your own searches)."""
    return core.review_queue(actor, limit)


@router.get(
    "/encounters/{encounter_id}/candidates/{subject_id}/reference-image",
    response_class=Response,
    tags=["encounters"],
)
def candidate_reference_image(
    encounter_id: str, subject_id: str, actor: Operator, core: Core
) -> Response:
    """A candidate's kept enrolment photo (its reviewers, and the searcher; audited), as a
    browser can show it (a contact scanner's TIFF as a PNG of the same pixels)."""
    data = core.candidate_reference_image(actor, encounter_id, subject_id)
    return image_response(data, view=True)
