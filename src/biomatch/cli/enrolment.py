"""Enrolment: one subject, a folder of subjects, and templating kept images with a new model."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from tqdm import tqdm

from biomatch.batch import FileResult, extract_files, images_by_subject
from biomatch.cli.common import (
    CaptureOption,
    DataDir,
    HandOption,
    LayoutOption,
    ModalityOption,
    PrimaryFace,
    RayAddress,
    RayOption,
    Token,
    console,
    print_result,
    reports_errors,
    session,
)
from biomatch.errors import BioMatchError

if TYPE_CHECKING:
    from biomatch.accountability.principal import Principal
    from biomatch.extraction import ExtractedSample
    from biomatch.results import BulkEnrolOut, ConsentIn
    from biomatch.service import BioMatch

templates_app = typer.Typer(help="Templates of kept reference images.", no_args_is_help=True)

Rejection = dict[str, Any]
Accepted = dict[str, list["ExtractedSample"]]


@reports_errors
def enrol(
    gallery: str,
    subject_id: str,
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    modality: ModalityOption = "face",
    capture: CaptureOption = None,
    layout: LayoutOption = None,
    hand: HandOption = None,
    primary_face: PrimaryFace = False,
    add: Annotated[bool, typer.Option(help="Add samples to an existing subject.")] = False,
    consent_notice: Annotated[str | None, typer.Option(help="Consent notice version.")] = None,
    consent_purpose: Annotated[str | None, typer.Option(help="Purpose consented to.")] = None,
    consent_days: Annotated[int | None, typer.Option(help="Consent term in days.")] = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Enrol one subject from one or more images (all accepted, or none; with --layout
    four_finger, the fingertips of each photo that fail the gate are left out and listed)."""
    core, actor = session(data_dir, token)
    consent = _consent(consent_notice, consent_purpose, consent_days)
    data = [path.read_bytes() for path in images]
    result = core.enrol(
        actor,
        gallery,
        subject_id,
        data,
        core.plugin_for_capture(modality, capture),
        primary_only=primary_face,
        add_to_existing=add,
        consent=consent,
        layout=layout,
        hand=hand,
    )
    print_result(result)


def _consent(notice: str | None, purpose: str | None, days: int | None) -> ConsentIn | None:
    from biomatch.results import ConsentIn

    if not (notice or purpose):
        return None
    return ConsentIn(notice_version=notice or "", purpose=purpose or "", term_days=days)


@reports_errors
def enrol_bulk(
    gallery: str,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    modality: ModalityOption = "face",
    capture: CaptureOption = None,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    primary_face: PrimaryFace = False,
    report: Annotated[Path | None, typer.Option(help="Write every rejection as JSON.")] = None,
    ray: RayOption = False,
    ray_address: RayAddress = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Enrol a folder laid out <subject>/<image>; rejected images are listed, not fatal.
    With --ray: a Ray job that skips subjects already enrolled (resumable)."""
    core, actor = session(data_dir, token)
    core.get_gallery(actor, gallery)
    modality = core.plugin_for_capture(modality, capture)
    if ray or ray_address:
        result = _enrol_with_ray(core, actor, gallery, folder, modality, primary_face, ray_address)
        if report is not None:
            report.write_text(json.dumps({"rejected": result.rejected}, indent=2) + "\n")
        return
    by_subject = images_by_subject(folder)
    files = [path for paths in by_subject.values() for path in paths]
    results = extract_files(
        files, core.settings, modality, workers=workers, primary_only=primary_face, keep_image=True
    )
    accepted, rejected = _sort_extractions(
        tqdm(results, total=len(files), desc="extract", unit="img")
    )
    enrolled = _enrol_accepted(core, actor, gallery, folder, accepted, rejected)
    _bulk_summary(len(by_subject), enrolled, len(files), rejected)
    if report is not None:
        report.write_text(json.dumps({"rejected": rejected}, indent=2) + "\n")


def _enrol_with_ray(
    core: BioMatch,
    actor: Principal,
    gallery: str,
    folder: Path,
    modality: str,
    primary_face: bool,
    address: str | None,
) -> BulkEnrolOut:
    from biomatch.jobs import RayRunner

    with tqdm(desc="extract and enrol", unit="img", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = core.enrol_folder(
            actor, gallery, folder, RayRunner(address),
            modality=modality, primary_only=primary_face, progress=progress,
        )  # fmt: skip
    print_result(result.model_copy(update={"rejected": []}))
    _bulk_summary(result.subjects, result.enrolled, result.images, result.rejected)
    return result


def _sort_extractions(
    results: Iterable[FileResult],
) -> tuple[Accepted, list[Rejection]]:
    """(accepted samples by subject folder, rejected images)."""
    accepted: Accepted = {}
    rejected: list[Rejection] = []
    for result in results:
        if result.sample is not None:
            accepted.setdefault(result.path.parent.name, []).append(result.sample)
        else:
            rejected.append({"image": str(result.path), **(result.error or {})})
    return accepted, rejected


def _enrol_accepted(
    core: BioMatch,
    actor: Principal,
    gallery: str,
    folder: Path,
    accepted: Accepted,
    rejected: list[Rejection],
) -> int:
    """Enrol each subject's accepted samples; a refused subject joins ``rejected``."""
    enrolled = 0
    for subject_id, samples in tqdm(accepted.items(), desc="enrol", unit="subject"):
        try:
            core.enrol_samples(actor, gallery, subject_id, samples)
            enrolled += 1
        except BioMatchError as exc:
            rejected.append({"image": str(folder / subject_id), **exc.to_dict()})
    return enrolled


def _bulk_summary(subjects: int, enrolled: int, images: int, rejected: list[Rejection]) -> None:
    table = Table(title="Bulk enrolment")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("subject folders", str(subjects))
    table.add_row("subjects enrolled", str(enrolled))
    table.add_row("images", str(images))
    table.add_row("images rejected", str(len(rejected)))
    reasons = Counter(
        reason["name"]
        for item in rejected
        for reason in item.get("details", {}).get("reasons", [{"name": item.get("code")}])
    )
    for reason, count in reasons.most_common():
        table.add_row(f"  rejected for {reason}", str(count))
    console.print(table)


@templates_app.command("upgrade")
@reports_errors
def templates_upgrade(
    gallery: str,
    model: Annotated[str, typer.Option(help="Plug-in name or model key to template with.")],
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Template the gallery's kept reference images with another model (resumable)."""
    core, actor = session(data_dir, token)
    with tqdm(desc=f"templating {gallery}", unit="sample", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = core.upgrade_templates(actor, gallery, model, progress=progress)
    print_result(result)
