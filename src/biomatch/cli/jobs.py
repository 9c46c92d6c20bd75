"""Whole-gallery jobs: de-duplication (bulk enrolment is ``enrol-bulk --ray``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from biomatch.cli.common import (
    DataDir,
    RayAddress,
    RayOption,
    Token,
    print_result,
    reports_errors,
    session,
)


@reports_errors
def dedup(
    gallery: str,
    model: Annotated[str, typer.Option(help="Plug-in whose templates are compared.")] = "face",
    max_fmr: Annotated[
        float, typer.Option(help="Report pairs whose estimated FMR is at most this.")
    ] = 1e-4,
    shortlist: Annotated[int, typer.Option(min=1, help="Subjects compared per template.")] = 10,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Keep finished chunks here; a rerun does only what is left."),
    ] = None,
    ray: RayOption = False,
    ray_address: RayAddress = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Search every subject against the rest of the gallery: likely duplicates as JSON."""
    from biomatch.jobs import runner_for

    core, actor = session(data_dir, token)
    with tqdm(desc=f"de-duplicating {gallery}", unit="chunk", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = core.deduplicate(
            actor, gallery, runner_for(ray, ray_address),
            model=model, max_fmr=max_fmr, shortlist=shortlist,
            checkpoint=checkpoint, progress=progress,
        )  # fmt: skip
    print_result(result)
