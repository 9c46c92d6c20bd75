"""The capture-quality gate alone: what ``POST /v1/quality-check`` answers, from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biomatch.cli.common import (
    CaptureOption,
    DataDir,
    HandOption,
    LayoutOption,
    ModalityOption,
    PrimaryFace,
    Token,
    print_result,
    reports_errors,
    session,
)


@reports_errors
def quality_check(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    modality: ModalityOption = "face",
    capture: CaptureOption = None,
    layout: LayoutOption = None,
    hand: HandOption = None,
    primary_face: PrimaryFace = False,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """The quality gate's verdict on one capture, with its named reasons (a four-finger
    photo: each fingertip's); nothing is searched or kept. Exits 1 where it fails."""
    core, actor = session(data_dir, token)
    verdict = core.check_capture(
        actor,
        image.read_bytes(),
        core.plugin_for_capture(modality, capture),
        primary_only=primary_face,
        layout=layout,
        hand=hand,
    )
    print_result(verdict)
    if not verdict.passed:
        raise typer.Exit(1)
