"""LFW: the View-2 verification protocol, closed-set identification, and calibration."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.calibration import ScoreCalibration
from biomatch.config import Settings
from biomatch.evaluation import analysis, dataset, metrics
from biomatch.evaluation.dataset import closed_set_split
from biomatch.modalities import Modality, load_modality

MISSED = np.iinfo(np.int64).max  # a search whose mate was not found at any reported rank

# Byte-identical images filed under two names (LFW errata): kept out of 1:N galleries and
# out of the impostor set used for calibration.
ERRATA = frozenset(
    {"Carlos_Beltran_0001", "Raul_Ibanez_0001", "Bart_Hendricks_0001", "Ricky_Ray_0001"}
)


@dataclass(frozen=True)
class Pair:
    fold: int
    first: str
    second: str
    same: bool


def read_pairs(path: Path) -> list[Pair]:
    lines = path.read_text().split("\n")
    folds, per_class = (int(value) for value in lines[0].split())
    pairs: list[Pair] = []
    for row, line in enumerate(line for line in lines[1:] if line.strip()):
        fold = row // (2 * per_class)
        fields = line.split()
        if len(fields) == 3:
            name, a, b = fields
            pairs.append(Pair(fold, _image_id(name, a), _image_id(name, b), True))
        elif len(fields) == 4:
            pairs.append(
                Pair(fold, _image_id(fields[0], fields[1]), _image_id(fields[2], fields[3]), False)
            )
        else:
            raise dataset.DatasetError(f"{path}: line {row + 2} is not an LFW pair: {line!r}")
    if len(pairs) != folds * 2 * per_class:
        raise dataset.DatasetError(
            f"{path}: expected {folds * 2 * per_class} pairs, found {len(pairs)}"
        )
    return pairs


def _image_id(name: str, number: str) -> str:
    return f"{name}_{int(number):04d}"


def image_path(lfw_dir: Path, image_id: str) -> Path:
    return lfw_dir / image_id[:-5] / f"{image_id}.jpg"


def all_image_ids(lfw_dir: Path) -> list[str]:
    return sorted(path.stem for path in lfw_dir.glob("*/*.jpg"))


@dataclass
class TemplateSet:
    """Templates of LFW images by image id, from the one evaluation template cache
    (``dataset.extract``); ids absent from ``templates`` failed to enrol."""

    plugin: Modality
    templates: dict[str, bytes]
    failures: dict[str, str]
    run_seconds: list[float] = field(default_factory=list)

    @property
    def model_key(self) -> str:
        return self.plugin.info.key

    @property
    def ms_per_image(self) -> float:
        """Mean time of one extraction (decode to template) in one worker, this run."""
        return 1000 * float(np.mean(self.run_seconds)) if self.run_seconds else float("nan")


def compute_templates(
    lfw_dir: Path,
    image_ids: Iterable[str],
    settings: Settings,
    workers: int,
    cache: Path | None = None,
) -> TemplateSet:
    """Templates for the images through the one evaluation cache (keyed by image SHA-256
    and model; failures are tried again, so a detector change shows)."""
    plugin = load_modality("face", settings)
    keys = {i: f"{i[:-5]}/{i}.jpg" for i in sorted(set(image_ids))}
    found = dataset.extract(lfw_dir, keys.values(), settings, "face", workers=workers, cache=cache)
    return TemplateSet(
        plugin,
        {i: found.templates[k] for i, k in keys.items() if k in found.templates},
        {i: found.failures[k] for i, k in keys.items() if k in found.failures},
        found.run_seconds,
    )


def pair_scores(templates: TemplateSet, pairs: list[Pair]) -> np.ndarray:
    """Each pair's score through the plug-in's ``compare``; -inf where an image failed to
    enrol (it counts against the system: never a match)."""
    return dataset.scores_of_pairs(
        templates.plugin, templates.templates, [(p.first, p.second) for p in pairs]
    )


def evaluate_verification(
    lfw_dir: Path,
    pairs_file: Path,
    settings: Settings,
    *,
    workers: int = 2,
    cache: Path | None = None,
) -> dict[str, Any]:
    pairs = read_pairs(pairs_file)
    started = time.perf_counter()
    templates = compute_templates(
        lfw_dir, [i for p in pairs for i in (p.first, p.second)], settings, workers, cache
    )
    scores = pair_scores(templates, pairs)
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])
    fold_results = metrics.ten_fold_accuracy(scores, same, folds)
    accuracies = np.array([fold.accuracy for fold in fold_results])
    genuine, impostor = scores[same], scores[~same]
    tar, threshold = metrics.tar_at_fmr(genuine, impostor, 1e-3)
    used = {i for p in pairs for i in (p.first, p.second)}
    return {
        "protocol": "LFW View-2, 10 folds, threshold chosen on the other 9 folds",
        "model": templates.model_key,
        "pairs": len(pairs),
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "fold_accuracies": accuracies.tolist(),
        "fold_thresholds": [fold.threshold for fold in fold_results],
        "tar_at_far_1e-3": tar,
        "threshold_at_far_1e-3": threshold,
        "impostor_pairs": len(impostor),
        "genuine_pairs": len(genuine),
        "ms_per_image": templates.ms_per_image,
        "images": len(used),
        "failures_to_enrol": sum(1 for i in used if i in templates.failures),
        "failed_images": sorted(i for i in used if i in templates.failures),
        "pairs_scored_as_non_match_for_failure": int(np.sum(~np.isfinite(scores))),
        "elapsed_s": time.perf_counter() - started,
        "data": _describe(lfw_dir, pairs_file),
    }


def evaluate_identification(
    lfw_dir: Path,
    settings: Settings,
    *,
    workers: int = 2,
    cache: Path | None = None,
    ranks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, Any]:
    """Closed set: each identity with 2+ images enrols its first usable image; the rest
    are probes. Repeated with every other LFW identity added to the gallery as distractors."""
    by_person = images_by_person(lfw_dir)
    templates = compute_templates(
        lfw_dir, [i for ids in by_person.values() for i in ids], settings, workers, cache
    )
    split = closed_set_split(by_person, templates.templates)
    result: dict[str, Any] = {
        "protocol": "closed-set, first usable image enrolled, every other image searched "
        "through the service's index path (shortlist, then the plug-in's compare)",
        "model": templates.model_key,
        "gallery_subjects": len(split.gallery),
        "probes": len(split.probes) + split.missed,
        "probes_failed_to_enrol": split.missed,
    }
    scores = dataset.search_scores(
        templates.plugin,
        templates.templates,
        split.probes,
        split.enrolled,
        settings,
        depth=max(ranks),
        gallery_sizes=[len(split.gallery)],
    )
    mates = np.array(split.mates, dtype=np.int64)
    for label, columns in (("", len(split.gallery)), ("with_distractors_", len(split.enrolled))):
        found, _ = analysis.mated_ranks(analysis.SearchScores(scores, mates, columns), columns)
        # A probe that failed to enrol is a miss at every rank.
        found = np.concatenate([found, np.full(split.missed, MISSED)])
        for rank in ranks:
            result[f"{label}rank{rank}"] = metrics.identification_rate(found, rank)
    result["distractor_subjects"] = len(split.distractors)
    result["data"] = _describe(lfw_dir, None)
    return result


def calibrate(
    lfw_dir: Path, settings: Settings, *, workers: int = 2, cache: Path | None = None
) -> ScoreCalibration:
    """Impostor distribution from every pair of LFW images of different people."""
    templates = compute_templates(lfw_dir, all_image_ids(lfw_dir), settings, workers, cache)
    ids = sorted(i for i in templates.templates if i not in ERRATA)
    # Every pair of different people once, each scored by the plug-in's compare.
    impostor = dataset.impostor_scores(
        templates.plugin, [templates.templates[i] for i in ids], [i[:-5] for i in ids]
    )
    source = {
        "dataset": "LFW (250x250 grayscale, LFW-a style), every pair of different people",
        "images": len(ids),
        "failures_to_enrol": len(templates.failures),
        **_describe(lfw_dir, None),
    }
    return ScoreCalibration.from_impostor_scores(templates.model_key, impostor, source)


def images_by_person(lfw_dir: Path) -> dict[str, list[str]]:
    people: dict[str, list[str]] = defaultdict(list)
    for image_id in all_image_ids(lfw_dir):
        if image_id not in ERRATA:
            people[image_id[:-5]].append(image_id)
    return dict(people)


def _describe(lfw_dir: Path, pairs_file: Path | None) -> dict[str, Any]:
    described: dict[str, Any] = {"lfw_dir": str(lfw_dir.resolve())}
    if pairs_file is not None:
        described["pairs_file"] = str(pairs_file.resolve())
        described["pairs_sha256"] = hashlib.sha256(pairs_file.read_bytes()).hexdigest()
    return described
