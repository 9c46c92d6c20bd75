"""The ``biomatch`` command: a thin layer over the core API (``biomatch.service``)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from biomatch.batch import extract_files
from biomatch.config import Settings
from biomatch.errors import BioMatchError

app = typer.Typer(
    help="BioMatch: accountable face verification and identification.", no_args_is_help=True
)
gallery_app = typer.Typer(help="Create and list galleries.", no_args_is_help=True)
subject_app = typer.Typer(help="Show and delete enrolled subjects.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")
app.add_typer(subject_app, name="subject")
app.add_typer(eval_app, name="eval")

console = Console(stderr=True)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

P = ParamSpec("P")
R = TypeVar("R")

DataDir = Annotated[
    Path | None, typer.Option(help="Data directory (default: $BIOMATCH_DATA_DIR or ./data).")
]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


def _core(data_dir: Path | None) -> Any:
    from biomatch.service import BioMatch

    return BioMatch(_settings(data_dir))


def _print(result: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(result, BaseModel):
        text = result.model_dump_json(indent=2)
    elif isinstance(result, list):
        text = json.dumps([item.model_dump(mode="json") for item in result], indent=2)
    else:
        text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Bad input ends the command with one line on stderr and exit code 2."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BioMatchError as exc:
            console.print(f"error [{exc.code}]: {exc.message}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        except OSError as exc:
            console.print(f"error [file]: {exc}", highlight=False, markup=False)
            raise typer.Exit(2) from None

    return run


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import uvicorn

    from biomatch.api import create_app

    settings = _settings(data_dir)
    uvicorn.run(create_app(settings), host=host, port=port)


@gallery_app.command("create")
@reports_errors
def gallery_create(
    name: str, description: Annotated[str, typer.Option()] = "", data_dir: DataDir = None
) -> None:
    """Create a gallery."""
    _print(_core(data_dir).create_gallery(name, description))


@gallery_app.command("list")
@reports_errors
def gallery_list(data_dir: DataDir = None) -> None:
    """List galleries with their subject counts."""
    _print(_core(data_dir).list_galleries())


@app.command()
@reports_errors
def enrol(
    gallery: str,
    subject_id: str,
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    largest_face: Annotated[bool, typer.Option(help="Use the largest of several faces.")] = False,
    add: Annotated[bool, typer.Option(help="Add samples to an existing subject.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Enrol one subject from one or more images (all accepted, or none)."""
    data = [path.read_bytes() for path in images]
    _print(
        _core(data_dir).enrol(
            gallery, subject_id, data, largest_only=largest_face, add_to_existing=add
        )
    )


@app.command("enrol-bulk")
@reports_errors
def enrol_bulk(
    gallery: str,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    workers: Annotated[int, typer.Option(min=1)] = 2,
    largest_face: Annotated[bool, typer.Option(help="Use the largest of several faces.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write every rejection as JSON.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Enrol a folder laid out <subject>/<image>; rejected images are listed, not fatal."""
    core = _core(data_dir)
    core.get_gallery(gallery)
    by_subject = _images_by_subject(folder)
    files = [path for paths in by_subject.values() for path in paths]
    results = extract_files(files, core.settings, workers=workers, largest_only=largest_face)
    accepted: dict[str, list[Any]] = {}
    rejected: list[dict[str, Any]] = []
    for result in tqdm(results, total=len(files), desc="extract", unit="img"):
        if result.sample is not None:
            accepted.setdefault(result.path.parent.name, []).append(result.sample)
        else:
            rejected.append({"image": str(result.path), **(result.error or {})})
    enrolled = 0
    for subject_id, samples in tqdm(accepted.items(), desc="enrol", unit="subject"):
        try:
            core.enrol_samples(gallery, subject_id, samples)
            enrolled += 1
        except BioMatchError as exc:
            rejected.append({"image": str(folder / subject_id), **exc.to_dict()})
    _bulk_summary(len(by_subject), enrolled, len(files), rejected)
    if report is not None:
        report.write_text(json.dumps({"rejected": rejected}, indent=2) + "\n")


def _images_by_subject(folder: Path) -> dict[str, list[Path]]:
    return {
        sub.name: sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
    }


def _bulk_summary(
    subjects: int, enrolled: int, images: int, rejected: list[dict[str, Any]]
) -> None:
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


@app.command()
@reports_errors
def verify(
    gallery: str,
    subject_id: str,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    largest_face: Annotated[bool, typer.Option()] = False,
    data_dir: DataDir = None,
) -> None:
    """1:1: does the image match the claimed subject?"""
    _print(
        _core(data_dir).verify(gallery, subject_id, image.read_bytes(), largest_only=largest_face)
    )


@app.command()
@reports_errors
def identify(
    gallery: str,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    largest_face: Annotated[bool, typer.Option()] = False,
    data_dir: DataDir = None,
) -> None:
    """1:N: ranked candidates (investigative leads) with estimated false match rates."""
    _print(
        _core(data_dir).identify(
            gallery, image.read_bytes(), top_k=top_k, largest_only=largest_face
        )
    )


@subject_app.command("show")
@reports_errors
def subject_show(gallery: str, subject_id: str, data_dir: DataDir = None) -> None:
    """Show a subject's samples and their quality scores."""
    _print(_core(data_dir).get_subject(gallery, subject_id))


@subject_app.command("delete")
@reports_errors
def subject_delete(gallery: str, subject_id: str, data_dir: DataDir = None) -> None:
    """Delete a subject with every sample and template."""
    deleted = _core(data_dir).delete_subject(gallery, subject_id)
    _print({"gallery": gallery, "subject_id": subject_id, "samples_deleted": deleted})


LfwDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The lfw/ folder.")]
Workers = Annotated[int, typer.Option(min=1, help="Extraction processes.")]
Cache = Annotated[Path | None, typer.Option(help="Template cache file (reused across runs).")]


@eval_app.command("lfw")
@reports_errors
def eval_lfw(
    lfw_dir: LfwDir,
    json_out: Annotated[Path, typer.Option("--json", help="Write the results here.")],
    pairs: Annotated[Path | None, typer.Option(help="Default: pairs.txt beside lfw/.")] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """LFW View-2 verification: 6,000 pairs, 10 folds (the official protocol)."""
    from biomatch.evaluation import lfw

    pairs_file = pairs or lfw_dir.parent / "pairs.txt"
    result = lfw.evaluate_verification(
        lfw_dir, pairs_file, Settings(), workers=workers, cache=cache
    )
    _write_result(
        json_out,
        result,
        ["accuracy_mean", "accuracy_std", "tar_at_far_1e-3", "ms_per_image", "failures_to_enrol"],
    )


@eval_app.command("lfw-identification")
@reports_errors
def eval_lfw_identification(
    lfw_dir: LfwDir,
    json_out: Annotated[Path, typer.Option("--json", help="Write the results here.")],
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Closed-set 1:N on LFW: rank-1 and rank-10 identification rates."""
    from biomatch.evaluation import lfw

    result = lfw.evaluate_identification(lfw_dir, Settings(), workers=workers, cache=cache)
    _write_result(
        json_out, result, [k for k in result if "rank" in k] + ["gallery_subjects", "probes"]
    )


@app.command()
@reports_errors
def calibrate(
    lfw_dir: LfwDir,
    out: Annotated[
        Path | None, typer.Option(help="Default: the packaged calibration file.")
    ] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the face score calibration from LFW impostor pairs."""
    from biomatch.calibration import calibration_path
    from biomatch.evaluation import lfw

    calibration = lfw.calibrate(lfw_dir, Settings(), workers=workers, cache=cache)
    target = out or calibration_path(calibration.model_key)
    calibration.save(target)
    thresholds = {f"{fmr:g}": calibration.threshold_for(fmr) for fmr in (1e-2, 1e-3, 1e-4, 1e-5)}
    _print(
        {
            "written": str(target),
            "n_impostor": calibration.n_impostor,
            "threshold_at_fmr": thresholds,
        }
    )


FingerDir = Annotated[
    Path, typer.Argument(exists=True, file_okay=False, help="An FVC B-set folder.")
]


@eval_app.command("fvc")
@reports_errors
def eval_fvc(
    folder: FingerDir,
    json_out: Annotated[Path, typer.Option("--json", help="Write the results here.")],
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """FVC fingerprint verification: all mated and all non-mated impression pairs."""
    from biomatch.evaluation import fvc

    result = fvc.evaluate(folder, Settings(), workers=workers, cache=cache)
    headline = ["mated_pairs", "non_mated_pairs", "eer", "fmr100", "fmr1000"]
    headline += ["extraction_ms_mean", "comparisons_per_second_one_core", "failures_to_enrol"]
    _write_result(json_out, result, headline)


@app.command("calibrate-finger")
@reports_errors
def calibrate_finger(
    folders: Annotated[list[Path], typer.Argument(exists=True, file_okay=False)],
    out: Annotated[
        Path | None, typer.Option(help="Default: the packaged calibration file.")
    ] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the finger score calibration from FVC non-mated pairs."""
    from biomatch.calibration import calibration_path
    from biomatch.evaluation import fvc

    calibration = fvc.calibrate(folders, Settings(), workers=workers, cache=cache)
    target = out or calibration_path(calibration.model_key)
    calibration.save(target)
    thresholds = {f"{fmr:g}": calibration.threshold_for(fmr) for fmr in (1e-2, 1e-3, 1e-4)}
    _print(
        {
            "written": str(target),
            "n_impostor": calibration.n_impostor,
            "threshold_at_fmr": thresholds,
        }
    )


def _write_result(path: Path, result: dict[str, Any], headline: list[str]) -> None:
    result["command"] = " ".join(sys.argv)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=str(path))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in headline:
        value = result[key]
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


if __name__ == "__main__":
    app()
