"""FVC verification protocol on a B set (10 fingers x 8 impressions, ``<finger>_<n>.tif``).

Mated pairs: every pair of impressions of the same finger (10 x C(8,2) = 280). Non-mated
pairs: every pair of impressions of different fingers (C(80,2) - 280 = 2,880). FVC's own
impostor set uses first impressions only (45 pairs); all pairs give a finer FMR scale.
A capture that yields no template is a failure to enrol, counted and reported: its mated
pairs are false non-matches (ISO/IEC 19795-1), its non-mated pairs are only counted, never
impostor scores, and never enter the calibration.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.calibration import ScoreCalibration, calibrate_by_source_pair
from biomatch.config import Settings
from biomatch.evaluation import dataset, metrics
from biomatch.modalities import Modality, load_modality

IMAGE_SUFFIXES = (".tif", ".tiff", ".bmp", ".png", ".jpg")
FAILURE_POLICY = (
    "ISO/IEC 19795-1: an image without a template is a failure to enrol, counted; each "
    "mated pair with one is a false non-match (in mated_pairs, score -inf); each non-mated "
    "pair with one is counted (non_mated_pairs_without_template), never an impostor score, "
    "and never a calibration score"
)


@dataclass
class FingerSet:
    names: list[str]  # file stems, e.g. "101_1"
    fingers: list[str]
    templates: dict[str, bytes]
    failures: dict[str, str]
    seconds: list[float]  # extraction time of each image extracted in this run


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise dataset.DatasetError(f"{folder} holds no fingerprint images.")
    return files


def extract_set(
    folder: Path, settings: Settings, workers: int = 2, cache: Path | None = None
) -> FingerSet:
    """Templates of every image; ``cache`` (shared with ``eval folder``: keyed by model and
    image hash) only saves time between runs."""
    files = image_files(folder)
    found = dataset.extract(
        folder, [path.name for path in files], settings, "finger", workers=workers, cache=cache
    )
    names = [path.stem for path in files]
    return FingerSet(
        names,
        [name.split("_")[0] for name in names],
        {Path(key).stem: template for key, template in found.templates.items()},
        {Path(key).stem: reason for key, reason in found.failures.items()},
        found.run_seconds,
    )


@dataclass(frozen=True)
class PairScores:
    """Scores of all pairs. A mated pair with a failed capture is a false non-match (its
    score is -inf, ISO/IEC 19795-1); a non-mated pair with one is no impostor score at all
    and is only counted."""

    genuine: np.ndarray
    impostor: np.ndarray
    non_mated_without_template: int
    comparisons_per_second: float


def pair_scores(plugin: Modality, first: FingerSet, second: FingerSet | None = None) -> PairScores:
    """All pairs within ``first`` (or, with ``second``, all pairs across the two sets, every
    one non-mated), each compared through the plug-in's ``compare``."""
    genuine: list[float] = []
    impostor: list[float] = []
    unscored = compared = 0
    started = time.perf_counter()
    for i, name in enumerate(first.names):
        others = range(len(second.names)) if second else range(i + 1, len(first.names))
        other = second or first
        references = [other.templates.get(other.names[j]) for j in others]
        scores = _scores(plugin, first.templates.get(name), references)
        compared += int(np.isfinite(scores).sum())
        for j, score in zip(others, scores, strict=True):
            if second is None and first.fingers[i] == first.fingers[j]:
                genuine.append(float(score))
            elif np.isfinite(score):
                impostor.append(float(score))
            else:
                unscored += 1
    elapsed = time.perf_counter() - started
    return PairScores(
        np.array(genuine), np.array(impostor), unscored, compared / max(elapsed, 1e-9)
    )


def _scores(plugin: Modality, probe: bytes | None, references: list[bytes | None]) -> np.ndarray:
    """Scores against each reference; -inf where either side has no template."""
    out = np.full(len(references), -np.inf)
    usable = [k for k, ref in enumerate(references) if ref is not None]
    if probe is None or not usable:
        return out
    out[usable] = plugin.compare(probe, [ref for ref in references if ref is not None])
    return out


def evaluate(
    folder: Path, settings: Settings, workers: int = 2, cache: Path | None = None
) -> dict[str, Any]:
    plugin = load_modality("finger", settings)
    fingers = extract_set(folder, settings, workers, cache)
    scored = pair_scores(plugin, fingers)
    genuine, impostor = scored.genuine, scored.impostor
    if not (genuine.size and impostor.size):
        raise dataset.DatasetError(
            f"{folder}: {genuine.size} mated and {impostor.size} non-mated pairs; an FVC set "
            "needs two or more impressions of each of two or more fingers (NNN_I files)"
        )
    eer, eer_threshold = metrics.eer(genuine, impostor)
    timed = np.array(fingers.seconds or [np.nan]) * 1000.0
    return {
        "dataset": str(folder),
        "model": plugin.info.key,
        "protocol": "all mated pairs; all pairs of impressions of different fingers",
        "images": len(fingers.names),
        "failures_to_enrol": len(fingers.failures),
        "failure_reasons": dict(sorted(fingers.failures.items())),
        "failure_policy": FAILURE_POLICY,
        "mated_pairs": int(genuine.size),
        "mated_pairs_false_non_match_for_failure": int(np.sum(~np.isfinite(genuine))),
        "non_mated_pairs": int(impostor.size),
        "non_mated_pairs_without_template": scored.non_mated_without_template,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "fmr100": metrics.fvc_fnmr_at_fmr(genuine, impostor, 1e-2),
        "fmr1000": metrics.fvc_fnmr_at_fmr(genuine, impostor, 1e-3),
        # Timed only for images extracted in this run (not those read from the cache).
        "images_extracted": len(fingers.seconds),
        "extraction_ms_mean": float(timed.mean()),
        "extraction_ms_median": float(np.median(timed)),
        "extraction_workers": workers,
        "comparisons_per_second_one_core": scored.comparisons_per_second,
    }


def calibrate(
    folders: list[Path], settings: Settings, workers: int = 2, cache: Path | None = None
) -> ScoreCalibration:
    """Impostor distribution: non-mated pairs within each set, and every pair across sets."""
    plugin = load_modality("finger", settings)
    sets = [extract_set(folder, settings, workers, cache) for folder in folders]
    # Only real comparisons: a failed capture is never an impostor score.
    named = list(zip(map(str, folders), sets, strict=True))
    groups = [(name, pair_scores(plugin, s).impostor) for name, s in named]
    groups += [
        (f"{a_name} + {b_name}", pair_scores(plugin, a, b).impostor)
        for (a_name, a), (b_name, b) in itertools.combinations(named, 2)
    ]
    source = {
        "datasets": [str(folder) for folder in folders],
        "pairs": "non-mated pairs within each set and all pairs across sets",
        "n_images": sum(len(s.names) for s in sets),
    }
    return calibrate_by_source_pair(plugin.info.key, groups, source)
