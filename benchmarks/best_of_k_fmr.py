"""The false match rate of a subject's best score over k templates: measured, against what
the service estimates (k x the calibrated FMR of the best score, ``FmrEstimate.best_of``)
and the best score's calibrated FMR alone.

    .venv/bin/python benchmarks/best_of_k_fmr.py [--draws 5] [--lfw-subjects 40] [--json FILE]

Sets from ../shared/data: FVC2002 DB1_B (10 fingers x 8 impressions, the contact finger
plug-in) and the first LFW people with at least 8 photos (8 each, the default face
plug-in). For a target FMR f, t is the score the model's own calibration gives f. Every
image is a probe against every other subject of its set, enrolled with k of that subject's
images (``--draws`` random draws of k); the measured FMR is the share of these impostor
subjects whose best score reaches t, with its 95% Clopper-Pearson interval, beside k times
the share of all non-mated image pairs reaching t (the union bound on this set; the
calibration pools other data, so the set's own single-comparison FMR at t differs from f).
Prints a table and writes JSON (default benchmarks/results/best_of_k_fmr.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.config import Settings
from biomatch.evaluation import dataset
from biomatch.evaluation.metrics import clopper_pearson
from biomatch.modalities import Modality, load_modality

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FVC2002 = DATA / "finger" / "fvc2002_db1b" / "DB1_B"
LFW = DATA / "face" / "lfw" / "lfw"
PER_SUBJECT = 8
KS = (1, 2, 4, 8)
TARGETS = (1e-2, 1e-3)


@dataclass(frozen=True)
class LabelledSet:
    name: str
    plugin: str
    root: Path
    labels: dict[str, str]


def fvc_set() -> LabelledSet:
    return LabelledSet(
        "FVC2002 DB1_B", "finger", FVC2002, dataset.label_folder(FVC2002, r"^(\d+)_")
    )


def lfw_set(subjects: int) -> LabelledSet:
    by_person: dict[str, list[str]] = defaultdict(list)
    for key, person in dataset.label_folder(LFW, None).items():
        by_person[person].append(key)
    chosen = [p for p in sorted(by_person) if len(by_person[p]) >= PER_SUBJECT][:subjects]
    labels = {key: p for p in chosen for key in sorted(by_person[p])[:PER_SUBJECT]}
    return LabelledSet(f"LFW, {len(chosen)} people x {PER_SUBJECT}", "face", LFW, labels)


def score_matrix(plugin: Modality, templates: list[bytes]) -> np.ndarray:
    return np.stack([plugin.compare(probe, templates) for probe in templates])


def measure(
    labelled: LabelledSet, settings: Settings, draws: int, seed: int
) -> list[dict[str, Any]]:
    found = dataset.extract(labelled.root, labelled.labels, settings, labelled.plugin, workers=2)
    keys = sorted(found.templates)
    plugin = load_modality(labelled.plugin, settings)
    scores = score_matrix(plugin, [found.templates[k] for k in keys])
    owner = np.array([labelled.labels[k] for k in keys])
    members = {s: np.flatnonzero(owner == s) for s in sorted(set(owner))}
    rng = np.random.default_rng(seed)
    rows = []
    for target in TARGETS:
        threshold = plugin.calibration.threshold_for(target)
        impostor = owner[:, None] != owner[None, :]
        single = float(np.mean(scores[impostor] >= threshold))  # every non-mated pair
        for k in KS:
            hits = trials = 0
            for probe in range(len(keys)):
                for subject, images in members.items():
                    if subject == owner[probe] or len(images) < k:
                        continue
                    for enrolled in _draws(rng, images, k, draws):
                        hits += bool(scores[probe, enrolled].max() >= threshold)
                        trials += 1
            low, high = clopper_pearson(hits, trials)
            rows.append(
                {
                    "set": labelled.name,
                    "model": plugin.info.key,
                    "target_fmr": target,
                    "templates": k,
                    "impostor_subjects": trials,
                    "false_matches": hits,
                    "measured_fmr": hits / trials if trials else None,
                    "measured_ci95": [low, high],
                    "best_score_fmr": target,
                    "estimated_fmr": min(1.0, k * target),
                    "single_fmr_measured": single,
                    "union_bound_measured": min(1.0, k * single),
                }
            )
    return rows


def _draws(rng: np.random.Generator, images: np.ndarray, k: int, draws: int) -> list[np.ndarray]:
    """Each image alone for k = 1, all of them for k = len(images), else random draws."""
    if k == 1:
        return [images[i : i + 1] for i in range(len(images))]
    if k >= len(images):
        return [images]
    return [rng.choice(images, k, replace=False) for _ in range(draws)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=5, help="random draws of k per subject")
    parser.add_argument("--lfw-subjects", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/best_of_k_fmr.json")
    args = parser.parse_args()
    settings = Settings()
    started = time.perf_counter()
    rows = []
    for labelled in (fvc_set(), lfw_set(args.lfw_subjects)):
        if not labelled.labels:
            raise SystemExit(f"{labelled.root}: no data (../shared/data is needed)")
        rows += measure(labelled, settings, args.draws, args.seed)
    print(
        f"{'set':20} {'f':>6} {'k':>2} {'trials':>7} {'measured FMR [95%]':>26} "
        f"{'best alone':>10} {'k x f':>7} {'k x measured single':>20}"
    )
    for row in rows:
        low, high = row["measured_ci95"]
        measured = f"{row['measured_fmr']:.4f} [{low:.4f}, {high:.4f}]"
        print(
            f"{row['set'][:20]:20} {row['target_fmr']:>6g} {row['templates']:>2} "
            f"{row['impostor_subjects']:>7} {measured:>26} {row['best_score_fmr']:>10g} "
            f"{row['estimated_fmr']:>7g} {row['union_bound_measured']:>20.4f}"
        )
    report = {
        "benchmark": "best_of_k_fmr",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "draws": args.draws,
        "seed": args.seed,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
