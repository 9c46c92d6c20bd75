"""SFace pipeline choices on an LFW development split that shares no image with View 2.

    .venv/bin/python benchmarks/face_dev_split.py [--lfw DIR] [--per-person 20]
        [--landmark-px 0,36,48,64] [--workers 2] [--json FILE]

The split: every LFW image in no View-2 pair, of people with at least two such images, at
most ``--per-person`` of each (so a few people do not dominate). YuNet detects each image at
its own size; for each ``--landmark-px`` (``FaceConfig.sface_landmark_face_px``; 0: off)
the five points are then found again on a crop scaled so that the face box is that wide
(LFW's boxes are about 95 px), and each face chip is embedded with and without its mirror
image. Scores: all mated pairs and all non-mated pairs of the split. Prints a table of EER
and FNMR at FMR 1e-3 / 1e-4 per variant and writes JSON (default
benchmarks/results/face_dev_split.json). Choices made here are then confirmed once with
``biomatch eval lfw`` on View 2.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/face/lfw/lfw"


def development_split(lfw_dir: Path, per_person: int) -> list[str]:
    from biomatch.evaluation import lfw

    view2 = {i for p in lfw.read_pairs(lfw_dir.parent / "pairs.txt") for i in (p.first, p.second)}
    free = [i for i in lfw.all_image_ids(lfw_dir) if i not in view2]
    counts = Counter(i[:-5] for i in free)
    taken: Counter[str] = Counter()
    chosen = []
    for image_id in free:
        person = image_id[:-5]
        if counts[person] >= 2 and taken[person] < per_person:
            taken[person] += 1
            chosen.append(image_id)
    return chosen


_worker: dict[str, Any] = {}


def _start_worker(landmark_px: list[int]) -> None:
    import cv2

    from biomatch.config import Settings
    from biomatch.modalities.sface import models
    from biomatch.modalities.sface.detector import YuNetDetector
    from biomatch.modalities.sface.embedder import SFACE_INPUT, FaceEmbedder

    cv2.setNumThreads(1)
    settings = Settings()
    threshold = settings.face.sface_detection_threshold
    _worker["detectors"] = [YuNetDetector(10_000, threshold, px) for px in landmark_px]
    _worker["embedder"] = FaceEmbedder(models.embedder_path(), "opencv", SFACE_INPUT)


def embed_variants(path: str) -> np.ndarray | None:
    """(variants, 2, 128): chip and mirror embeddings for each landmark scale."""
    from biomatch.imaging import decode_image
    from biomatch.modalities.sface import alignment

    image = decode_image(Path(path).read_bytes(), max_bytes=10**8, max_pixels=10**8)
    out = []
    for detector in _worker["detectors"]:
        faces = detector.detect(image)
        if not faces:
            return None
        chip = alignment.embedding_chip(image, faces[0].landmarks.points)
        chips = [chip, np.ascontiguousarray(chip[:, ::-1])]
        out.append(_worker["embedder"].embed(chips))
    return np.asarray(out, dtype=np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    return normalised


def error_rates(matrix: np.ndarray, people: np.ndarray) -> dict[str, float]:
    upper = np.triu_indices(len(people), k=1)
    scores = matrix[upper]
    mated = people[upper[0]] == people[upper[1]]
    genuine, impostor = np.sort(scores[mated]), np.sort(scores[~mated])
    result: dict[str, float] = {"mated": int(genuine.size), "non_mated": int(impostor.size)}
    for fmr in (1e-3, 1e-4):
        threshold = impostor[int(np.ceil((1 - fmr) * impostor.size)) - 1]
        result[f"fnmr_at_fmr_{fmr:.0e}"] = float(np.mean(genuine <= threshold))
    candidates = np.concatenate([genuine, impostor])
    fnmr = np.searchsorted(genuine, candidates, side="left") / genuine.size
    fmr = 1 - np.searchsorted(impostor, candidates, side="left") / impostor.size
    best = int(np.argmin(np.abs(fnmr - fmr)))
    result["eer"] = float((fnmr[best] + fmr[best]) / 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=LFW)
    parser.add_argument("--per-person", type=int, default=20)
    parser.add_argument("--landmark-px", default="0,36,48,64")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/face_dev_split.json"
    )
    args = parser.parse_args()
    from biomatch.evaluation import lfw

    landmark_px = [int(px) for px in args.landmark_px.split(",")]
    ids = development_split(args.lfw, args.per_person)
    paths = [str(lfw.image_path(args.lfw, i)) for i in ids]
    with ProcessPoolExecutor(
        args.workers, initializer=_start_worker, initargs=(landmark_px,)
    ) as pool:
        embedded = list(pool.map(embed_variants, paths, chunksize=16))
    kept = [i for i, e in enumerate(embedded) if e is not None]
    people = np.array([ids[i][:-5] for i in kept])
    stack = unit(np.stack([embedded[i] for i in kept]))  # (n, scales, 2, 128)
    rows = {}
    for s, px in enumerate(landmark_px):
        for flip in (False, True):
            vectors = unit(stack[:, s].mean(axis=1)) if flip else stack[:, s, 0]
            where = f"points at face {px} px" if px else "points as detected"
            name = f"{where}, {'chip + mirror' if flip else 'chip only'}"
            rows[name] = error_rates(vectors @ vectors.T, people)
    report = {
        "split": "LFW images in no View-2 pair, people with 2+ such images",
        "per_person_cap": args.per_person,
        "landmark_px": landmark_px,
        "images": len(ids),
        "no_face_found": len(ids) - len(kept),
        "people": len(set(people)),
        "load_avg_1m": os.getloadavg()[0],
        "variants": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(kept)} of {len(ids)} images, {len(set(people))} people")
    for name, row in rows.items():
        print(
            f"{name:42s} EER {row['eer']:.4f}  FNMR@1e-3 {row['fnmr_at_fmr_1e-03']:.4f}  "
            f"FNMR@1e-4 {row['fnmr_at_fmr_1e-04']:.4f}  ({row['mated']} / {row['non_mated']})"
        )
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
