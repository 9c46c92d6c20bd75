"""Searches: 1:1 verify and 1:N identify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biomatch.cli.common import (
    Authority,
    CaptureOption,
    CaseRef,
    DataDir,
    HandOption,
    LayoutOption,
    ModalityOption,
    Purpose,
    Token,
    print_result,
    reports_errors,
    search_context,
    session,
)

ProbeImage = Annotated[Path, typer.Argument(exists=True, dir_okay=False)]


@reports_errors
def verify(
    gallery: str,
    subject_id: str,
    image: ProbeImage,
    purpose: Purpose,
    authority: Authority,
    case_reference: CaseRef = None,
    modality: ModalityOption = "face",
    capture: CaptureOption = None,
    layout: LayoutOption = None,
    hand: HandOption = None,
    primary_face: Annotated[bool, typer.Option()] = False,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """1:1: does the image match the claimed subject?"""
    core, actor = session(data_dir, token)
    context = search_context(purpose, authority, case_reference)
    result = core.verify(
        actor,
        gallery,
        subject_id,
        image.read_bytes(),
        context,
        core.plugin_for_capture(modality, capture),
        primary_only=primary_face,
        layout=layout,
        hand=hand,
    )
    print_result(result)


@reports_errors
def identify(
    gallery: str,
    image: ProbeImage,
    purpose: Purpose,
    authority: Authority,
    case_reference: CaseRef = None,
    modality: ModalityOption = "face",
    capture: CaptureOption = None,
    layout: LayoutOption = None,
    hand: HandOption = None,
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    primary_face: Annotated[bool, typer.Option()] = False,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """1:N: ranked candidates (investigative leads) with estimated false match rates."""
    core, actor = session(data_dir, token)
    context = search_context(purpose, authority, case_reference)
    result = core.identify(
        actor,
        gallery,
        image.read_bytes(),
        context,
        core.plugin_for_capture(modality, capture),
        top_k=top_k,
        primary_only=primary_face,
        layout=layout,
        hand=hand,
    )
    print_result(result)
