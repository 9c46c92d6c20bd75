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
from tqdm import tqdm

from biomatch.batch import extract_files
from biomatch.calibration import ScoreCalibration
from biomatch.config import Settings
from biomatch.evaluation import metrics
from biomatch.modalities import load_modality

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
            raise ValueError(f"{path}: line {row + 2} is not an LFW pair: {line!r}")
    if len(pairs) != folds * 2 * per_class:
        raise ValueError(f"{path}: expected {folds * 2 * per_class} pairs, found {len(pairs)}")
    return pairs


def _image_id(name: str, number: str) -> str:
    return f"{name}_{int(number):04d}"


def image_path(lfw_dir: Path, image_id: str) -> Path:
    return lfw_dir / image_id[:-5] / f"{image_id}.jpg"


def all_image_ids(lfw_dir: Path) -> list[str]:
    return sorted(path.stem for path in lfw_dir.glob("*/*.jpg"))


@dataclass
class TemplateSet:
    """Templates of LFW images by image id; ids absent from ``vectors`` failed to enrol."""

    model_key: str
    vectors: dict[str, np.ndarray]
    failures: dict[str, str]
    seconds_total: float = 0.0
    images_timed: int = 0

    @property
    def ms_per_image(self) -> float:
        """Mean time of one extraction (decode to template) in one worker process."""
        return 1000 * self.seconds_total / self.images_timed if self.images_timed else float("nan")

    def matrix(self, ids: list[str]) -> np.ndarray:
        return np.stack([self.vectors[i] for i in ids])


def compute_templates(
    lfw_dir: Path,
    image_ids: Iterable[str],
    settings: Settings,
    workers: int,
    cache: Path | None = None,
) -> TemplateSet:
    """Templates for the images, reusing a cache file of earlier runs where given (failures
    are tried again, so a detector change shows)."""
    modality = load_modality("face", settings)
    ids = sorted(set(image_ids))
    cached = _load_cache(cache, modality.info.key)
    todo = [i for i in ids if i not in cached.vectors]
    for image_id in todo:
        cached.failures.pop(image_id, None)
    paths = [image_path(lfw_dir, i) for i in todo]
    results = extract_files(paths, settings, workers=workers, enforce_quality=False)
    for image_id, result in tqdm(
        zip(todo, results, strict=True),
        total=len(todo),
        desc="templates",
        unit="img",
        disable=not todo,
    ):
        cached.seconds_total += result.seconds
        cached.images_timed += 1
        if result.sample is None:
            cached.failures[image_id] = str((result.error or {}).get("code", "unknown"))
        else:
            cached.vectors[image_id] = modality.index_vector(result.sample.template)
    if cache is not None and todo:
        _save_cache(cache, cached)
    return cached


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
    scores = np.array([pair_score(templates, pair) for pair in pairs])
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


def pair_score(templates: TemplateSet, pair: Pair) -> float:
    a, b = templates.vectors.get(pair.first), templates.vectors.get(pair.second)
    if a is None or b is None:
        return -np.inf  # a failure to enrol counts against the system: never a match
    return float(a @ b)


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
    split = closed_set_split(by_person, templates)
    result: dict[str, Any] = {
        "protocol": "closed-set, first usable image enrolled, every other image searched",
        "model": templates.model_key,
        "gallery_subjects": len(split.gallery),
        "probes": len(split.probes) + split.missed,
        "probes_failed_to_enrol": split.missed,
    }
    gallery = templates.matrix(split.gallery)
    probe_matrix = templates.matrix(split.probes)
    mates = np.array(split.mates)
    distractors = templates.matrix(split.distractors)
    for label, matrix in (("", gallery), ("with_distractors_", np.vstack([gallery, distractors]))):
        found = _mate_ranks(probe_matrix, matrix, mates)
        # A probe that failed to enrol is a miss at every rank.
        found = np.concatenate([found, np.full(split.missed, np.iinfo(np.int64).max)])
        for rank in ranks:
            result[f"{label}rank{rank}"] = metrics.identification_rate(found, rank)
    result["distractor_subjects"] = len(split.distractors)
    result["data"] = _describe(lfw_dir, None)
    return result


@dataclass
class ClosedSetSplit:
    """Image ids of a closed-set 1:N run; ``mates[i]`` indexes the gallery entry of probe i."""

    gallery: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    mates: list[int] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)
    missed: int = 0  # searches whose probe failed to enrol: misses at every rank


def closed_set_split(by_person: dict[str, list[str]], templates: TemplateSet) -> ClosedSetSplit:
    """Each person with 2+ images enrols the first usable one and searches with the rest;
    people with one image are the distractors."""
    split = ClosedSetSplit()
    for ids in by_person.values():
        usable = [i for i in ids if i in templates.vectors]
        if len(ids) < 2:
            split.distractors.extend(usable)
            continue
        if not usable:
            split.missed += len(ids) - 1
            continue
        split.gallery.append(usable[0])
        for probe in (i for i in ids if i != usable[0]):
            if probe in templates.vectors:
                split.probes.append(probe)
                split.mates.append(len(split.gallery) - 1)
            else:
                split.missed += 1
    return split


def _mate_ranks(probes: np.ndarray, gallery: np.ndarray, mates: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(probes), dtype=np.int64)
    for start in range(0, len(probes), 1024):
        scores = probes[start : start + 1024] @ gallery.T
        mate_scores = scores[np.arange(len(scores)), mates[start : start + 1024]]
        ranks[start : start + 1024] = np.sum(scores >= mate_scores[:, None], axis=1)
    return ranks


def calibrate(
    lfw_dir: Path, settings: Settings, *, workers: int = 2, cache: Path | None = None
) -> ScoreCalibration:
    """Impostor distribution from every pair of LFW images of different people."""
    templates = compute_templates(lfw_dir, all_image_ids(lfw_dir), settings, workers, cache)
    ids = sorted(i for i in templates.vectors if i not in ERRATA)
    people = np.array([i[:-5] for i in ids])
    matrix = templates.matrix(ids)
    chunks = []
    for start in range(0, len(ids), 512):
        block = matrix[start : start + 512] @ matrix.T
        rows = np.arange(start, min(start + 512, len(ids)))
        # Upper triangle only (each pair once), different people only.
        keep = (np.arange(len(ids))[None, :] > rows[:, None]) & (
            people[None, :] != people[rows][:, None]
        )
        chunks.append(block[keep].astype(np.float32))
    impostor = np.concatenate(chunks)
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


def _load_cache(path: Path | None, model_key: str) -> TemplateSet:
    empty = TemplateSet(model_key, {}, {})
    if path is None or not path.exists():
        return empty
    with np.load(path, allow_pickle=False) as data:
        if str(data["model_key"]) != model_key:
            return empty
        vectors = dict(zip(data["ids"].tolist(), data["vectors"], strict=True))
        failures = dict(zip(data["failed"].tolist(), data["reasons"].tolist(), strict=True))
        timing = data["timing"]
        return TemplateSet(model_key, vectors, failures, float(timing[0]), int(timing[1]))


def _save_cache(path: Path, templates: TemplateSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted(templates.vectors)
    failed = sorted(templates.failures)
    np.savez(
        path,
        model_key=templates.model_key,
        ids=np.array(ids, dtype=str),
        vectors=templates.matrix(ids) if ids else np.empty((0, 128), np.float32),
        failed=np.array(failed, dtype=str),
        reasons=np.array([templates.failures[i] for i in failed], dtype=str),
        timing=np.array([templates.seconds_total, templates.images_timed]),
    )
