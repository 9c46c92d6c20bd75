"""The 1:N indexes: derived data, rebuilt from the record store and checked against it."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Never

import typer
from tqdm import tqdm

from biomatch.cli.common import DataDir, console, core_for, reports_errors

if TYPE_CHECKING:
    from biomatch.core.indexing import Progress

index_app = typer.Typer(
    help="The 1:N indexes (derived from the record store).", no_args_is_help=True
)

GalleryArgument = Annotated[
    str | None, typer.Argument(help="One gallery (default: every gallery).")
]


@index_app.command("rebuild")
@reports_errors
def rebuild(gallery: GalleryArgument = None, data_dir: DataDir = None) -> None:
    """Rebuild the index of each model of the gallery from the record store."""
    core = core_for(data_dir)
    bars: list[tqdm[Never]] = []

    def progress_for(name: str, model_key: str) -> Progress:
        bar = tqdm(desc=f"{name}/{model_key}", unit="template", file=sys.stderr)
        bars.append(bar)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return update

    try:
        rebuilt = core.rebuild_index(gallery, progress_for)
    finally:
        for bar in bars:
            bar.close()
        core.close()
    where = "shared by the deployment" if core.indexes.shared else "in this process only"
    backend = core.settings.index.backend
    console.print(f"rebuilt {len(rebuilt)} index(es) ({backend}, {where})", highlight=False)


@index_app.command("check")
@reports_errors
def check(gallery: GalleryArgument = None, data_dir: DataDir = None) -> None:
    """Report templates missing from the index and ids orphaned in it; exit 1 on drift."""
    core = core_for(data_dir)
    try:
        checks = core.check_indexes(gallery)
    finally:
        core.close()
    report = [
        {
            "gallery": name,
            "model_key": found.model_key,
            "templates": found.templates,
            "store_revision": found.store_revision,
            "built": found.built,
            "index_revision": found.index_revision,
            "missing": found.missing,
            "orphaned": found.orphaned,
        }
        for name, found in checks
    ]
    print(json.dumps(report, indent=2))
    drifted = [entry for entry in report if entry["missing"] or entry["orphaned"]]
    unbuilt = sum(not entry["built"] for entry in report)
    console.print(
        f"{len(report)} index(es) checked, {len(drifted)} out of step with the store, "
        f"{unbuilt} not built yet (built by their first search, or by index rebuild)",
        highlight=False,
    )
    if drifted:
        raise typer.Exit(1)
