"""Accuracy on labelled data (LFW, FVC, any pairs list or folder) and score calibration."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from biomatch.cli.common import console, print_result, reports_errors
from biomatch.config import Settings
from biomatch.errors import InvalidRequest

if TYPE_CHECKING:
    from biomatch.calibration import ScoreCalibration

eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)

LfwDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The lfw/ folder.")]
FingerDir = Annotated[
    Path, typer.Argument(exists=True, file_okay=False, help="An FVC B-set folder.")
]
Workers = Annotated[int, typer.Option(min=1, help="Extraction processes.")]
JsonOut = Annotated[Path, typer.Option("--json", help="Write every number here.")]
Cache = Annotated[Path | None, typer.Option(help="Template cache file (reused across runs).")]
Pairs = Annotated[Path | None, typer.Option(help="Default: pairs.txt beside lfw/.")]
Modality = Annotated[str, typer.Option(help="face, or any installed modality (finger).")]
Html = Annotated[Path | None, typer.Option("--html", help="Also write the HTML report here.")]
Groups = Annotated[
    Path | None, typer.Option(help="CSV subject,group given by you (ISO/IEC 19795-10).")
]
Bootstrap = Annotated[int, typer.Option(min=0, help="Bootstrap replicates for intervals.")]
Seed = Annotated[int, typer.Option(help="Seed of the impostor sample and the bootstrap.")]
ImpostorPairs = Annotated[int, typer.Option(min=1, help="Seeded non-mated sample.")]
CalibrationOut = Annotated[
    Path | None, typer.Option(help="Default: the packaged calibration file.")
]
FLAT_KEYS = [
    "eer",
    "fnmr_at_fmr_1e-2",
    "fnmr_at_fmr_1e-3",
    "fnmr_at_fmr_1e-4",
    "n_genuine",
    "n_impostor",
    "failures_to_enrol",
]


@eval_app.command("lfw")
@reports_errors
def eval_lfw(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    pairs: Pairs = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """LFW View-2 verification: 6,000 pairs, 10 folds (the official protocol)."""
    from biomatch.evaluation import lfw

    pairs_file = pairs or lfw_dir.parent / "pairs.txt"
    result = lfw.evaluate_verification(
        lfw_dir, pairs_file, Settings(), workers=workers, cache=cache
    )
    headline = ["accuracy_mean", "accuracy_std", "tar_at_far_1e-3", "ms_per_image"]
    _write_result(json_out, result, [*headline, "failures_to_enrol"])


@eval_app.command("lfw-identification")
@reports_errors
def eval_lfw_identification(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Closed-set 1:N on LFW: rank-1 and rank-10 identification rates."""
    from biomatch.evaluation import lfw

    result = lfw.evaluate_identification(lfw_dir, Settings(), workers=workers, cache=cache)
    headline = [k for k in result if "rank" in k]
    _write_result(json_out, result, [*headline, "gallery_subjects", "probes"])


@eval_app.command("pairs")
@reports_errors
def eval_pairs(
    csv_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="img_a,img_b,same_identity")
    ],
    root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Images' root.")],
    json_out: JsonOut,
    modality: Modality = "face",
    html_out: Html = None,
    label_regex: Annotated[
        str | None, typer.Option(help="Subject from the file name (default: first folder).")
    ] = None,
    groups: Groups = None,
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
) -> None:
    """Verification from a pairs list: FNMR at FMR, EER, intervals, DET curve."""
    from biomatch.evaluation import report, runs

    options = runs.RunOptions(
        modality, workers, cache, groups, label_regex, bootstrap=bootstrap, seed=seed
    )
    result, figures = runs.evaluate_pairs(csv_file, root, Settings(), options)
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result, FLAT_KEYS)


@eval_app.command("folder")
@reports_errors
def eval_folder(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    json_out: JsonOut,
    modality: Modality = "face",
    label_regex: Annotated[
        str | None,
        typer.Option(help="Subject = first group matched in the file name, e.g. '^(\\d+)_'."),
    ] = None,
    html_out: Html = None,
    groups: Groups = None,
    impostor_pairs: ImpostorPairs = 100_000,
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
    capture: Annotated[
        str | None,
        typer.Option(help="Capture kind of the images (finger: contact or contactless)."),
    ] = None,
    probe_glob: Annotated[
        str | None,
        typer.Option(
            help="Probe file names (e.g. 'cl_*'): against --reference-glob's files, or alone: "
            "only these files, among themselves."
        ),
    ] = None,
    reference_glob: Annotated[
        str | None, typer.Option(help="Reference file names (e.g. 'ct_*').")
    ] = None,
    reference_capture: Annotated[
        str, typer.Option(help="Capture kind of the references (with the globs).")
    ] = "contact",
    layout: Annotated[
        str | None,
        typer.Option(help="'four_finger': each image is one hand's four fingers (folder: hand)."),
    ] = None,
) -> None:
    """Verification (all mated pairs, seeded non-mated sample) and identification (closed
    and open set) from a folder: one sub-folder per subject, or --label-regex. With
    --probe-glob/--reference-glob: each probe against each reference (contactless photos
    against contact prints); with --layout four_finger: one sub-folder per hand, named
    ..._left or ..._right, per-finger and fused four-finger comparisons."""
    from biomatch.evaluation import contactless, four_finger, report, runs
    from biomatch.modalities import plugin_for_capture

    settings = Settings()
    plugin = plugin_for_capture(modality, capture, settings)
    options = runs.RunOptions(
        plugin,
        workers,
        cache,
        groups,
        label_regex,
        bootstrap=bootstrap,
        seed=seed,
        impostor_pairs=impostor_pairs,
        file_glob=probe_glob,
    )
    if layout is not None:
        if reference_glob is not None:
            raise InvalidRequest(
                f"--layout {layout} compares the photos of hands among themselves: "
                "--reference-glob does not apply."
            )
        keys = [
            *FLAT_KEYS,
            "segmentation_failures",
            "fused_eer",
            "fused_fnmr_at_fmr_1e-2",
            "searched_failures_to_acquire",
            "searched_fused_eer",
            "searched_fused_fnmr_at_fmr_1e-2",
            "enrolled_fused_eer",
            "enrolled_fused_fnmr_at_fmr_1e-2",
        ]
        result, figures = four_finger.evaluate(folder, settings, options, layout)
    elif reference_glob is not None:
        cross = contactless.CrossOptions(
            probe_glob, reference_glob, capture or "contact", reference_capture
        )
        options = replace(options, modality=modality, file_glob=None)
        keys = FLAT_KEYS
        result, figures = contactless.evaluate_cross(folder, settings, options, cross)
    else:
        keys = [*FLAT_KEYS, "rank1", "fnir_at_fpir_0.01", "enrolled_subjects_eer"]
        result, figures = runs.evaluate_folder(folder, settings, options)
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result, keys)


@eval_app.command("lfw-report")
@reports_errors
def eval_lfw_report(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    html_out: Html = None,
    pairs: Pairs = None,
    impostor_pairs: ImpostorPairs = 1_000_000,
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 200,
    seed: Seed = 0,
) -> None:
    """LFW report: View-2 and all-pairs verification, closed/open-set identification."""
    from biomatch.evaluation import lfw_report, report

    result, figures = lfw_report.evaluate(
        lfw_dir,
        pairs or lfw_dir.parent / "pairs.txt",
        Settings(),
        workers=workers,
        cache=cache,
        impostor_pairs=impostor_pairs,
        bootstrap=bootstrap,
        seed=seed,
    )
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result["headline"], list(result["headline"]))


@eval_app.command("fvc")
@reports_errors
def eval_fvc(
    folder: FingerDir,
    json_out: JsonOut,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """FVC fingerprint verification: all mated and all non-mated impression pairs."""
    from biomatch.evaluation import fvc

    result = fvc.evaluate(folder, Settings(), workers=workers, cache=cache)
    headline = ["mated_pairs", "non_mated_pairs", "eer", "fmr100", "fmr1000"]
    headline += ["extraction_ms_mean", "comparisons_per_second_one_core", "failures_to_enrol"]
    _write_result(json_out, result, headline)


@reports_errors
def calibrate(
    lfw_dir: LfwDir,
    out: CalibrationOut = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the face score calibration from LFW impostor pairs."""
    from biomatch.evaluation import lfw

    calibration = lfw.calibrate(lfw_dir, Settings(), workers=workers, cache=cache)
    _save_calibration(calibration, out, (1e-2, 1e-3, 1e-4, 1e-5))


@reports_errors
def calibrate_finger(
    folders: Annotated[list[Path], typer.Argument(exists=True, file_okay=False)],
    out: CalibrationOut = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the finger score calibration from FVC non-mated pairs."""
    from biomatch.evaluation import fvc

    calibration = fvc.calibrate(folders, Settings(), workers=workers, cache=cache)
    _save_calibration(calibration, out, (1e-2, 1e-3, 1e-4))


@reports_errors
def calibrate_contactless(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="contact|contactless:FOLDER:GLOB[:LABEL_REGEX], e.g. "
            "'contactless:../shared/data/finger/ridgebase_samples/fingertips:cl_*'; or "
            "four_finger:FOLDER:GLOB (one hand per sub-folder, ..._left or ..._right: the "
            "fingertips a search would use)."
        ),
    ],
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the contactless finger calibrations (contactless-contactless and
    contactless-contact) from the impostor pairs of the sources."""
    from biomatch.evaluation import contactless

    same, cross = contactless.calibrate(sources, Settings(), workers=workers, cache=cache)
    _save_calibration(same, None, (1e-2, 1e-3))
    _save_calibration(cross, None, (1e-2, 1e-3))


def _save_calibration(
    calibration: ScoreCalibration, out: Path | None, fmrs: tuple[float, ...]
) -> None:
    from biomatch.calibration import calibration_path

    target = out or calibration_path(calibration.model_key)
    calibration.save(target)
    thresholds = {f"{fmr:g}": calibration.threshold_for(fmr) for fmr in fmrs}
    result = {"written": str(target), "n_impostor": calibration.n_impostor}
    result["threshold_at_fmr"] = thresholds
    if "by_source_pair" in calibration.source:
        result["by_source_pair"] = calibration.source["by_source_pair"]
    print_result(result)


def _write_result(path: Path, result: dict[str, Any], headline: list[str]) -> None:
    result["command"] = " ".join(sys.argv)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    _metrics_table(path, [(key, result[key]) for key in headline])


def _print_headline(path: Path, result: dict[str, Any], keys: list[str]) -> None:
    rows = [(key, result.get(key)) for key in keys]
    _metrics_table(path, [(key, "not enough data" if v is None else v) for key, v in rows])


def _metrics_table(path: Path, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=str(path))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
