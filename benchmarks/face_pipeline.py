"""Face template creation, ms per image by stage, at 640x480 and 1920x1080, on 1 and 2 cores.

    .venv/bin/python benchmarks/face_pipeline.py [--repeats 20] [--json FILE]
        [--model dlib|sface] [--cores 1,2] [--sizes 640x480,1920x1080]

``--model sface`` times the YuNet + SFace plug-in (modalities/sface) stage by stage.

Each core count runs in its own process (BLAS threads are fixed at import). Prints a table
and writes JSON (default benchmarks/results/face_pipeline.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared/data/face/fixtures/face_recognition_repo/examples/obama-1080p.jpg"
SIZES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}


def source_photo() -> bytes:
    if PHOTO.exists():
        return PHOTO.read_bytes()
    from matplotlib import cbook

    handle: Any = cbook.get_sample_data("grace_hopper.jpg")
    with handle:
        data: bytes = handle.read()
    return data


def fitted(data: bytes, size: tuple[int, int]) -> bytes:
    """The photo cropped to the aspect ratio and resized, as JPEG."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "the source photo does not decode"
    height, width = image.shape[:2]
    want = size[0] / size[1]
    if width / height > want:
        crop = int(height * want)
        image = image[:, (width - crop) // 2 : (width + crop) // 2]
    else:
        crop = int(width / want)
        image = image[(height - crop) // 2 : (height + crop) // 2]
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return bytes(cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 92])[1])


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    result = function()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def measure(repeats: int, model: str, sizes: list[str]) -> dict[str, dict[str, float]]:
    from biomatch.config import Settings

    settings = Settings()  # other BIOMATCH_FACE__* settings apply (e.g. SFACE_RUNTIME)
    settings.face = settings.face.model_copy(update={"model": model})
    source = source_photo()
    run = measure_size_sface if model == "sface" else measure_size
    return {name: run(fitted(source, SIZES[name]), settings, repeats) for name in sizes}


def measure_size_sface(data: bytes, settings: Any, repeats: int) -> dict[str, float]:
    import numpy as np

    from biomatch.extraction import extract
    from biomatch.imaging import decode_image
    from biomatch.modalities import load_modality
    from biomatch.modalities.face import quality
    from biomatch.modalities.sface import alignment

    face = load_modality("face-sface", settings)
    # The plug-in's own detector and network, timed stage by stage.
    detector, embedder = face._detector, face._embedder
    config = settings.face
    limits = {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
    row: dict[str, float] = {}
    row["decode"], image = timed(lambda: decode_image(data, **limits), repeats)
    side = config.sface_detection_long_side
    row[f"detect (YuNet at <= {side} px, 5 points)"], faces = timed(
        lambda: detector.detect(image), repeats
    )
    points = faces[0].landmarks.points
    row["align (112 + quality chip)"], (chip, quality_chip) = timed(
        lambda: (alignment.embedding_chip(image, points), alignment.quality_chip(image, points)),
        repeats,
    )
    row["quality"], _ = timed(
        lambda: quality.face_checks(quality_chip, faces[0].landmarks, config.quality), repeats
    )
    flips = face._flip_average
    chips = [chip, *([np.ascontiguousarray(chip[:, ::-1])] if flips else [])]
    what = "chip + mirror" if flips else "chip"
    row[f"embed ({what}, {config.sface_runtime})"], _ = timed(
        lambda: embedder.embed(chips), repeats
    )
    row["end to end"], _ = timed(lambda: extract(data, face, settings), repeats)
    return {stage: round(ms, 2) for stage, ms in row.items()}


def measure_size(data: bytes, settings: Any, repeats: int) -> dict[str, float]:
    import numpy as np

    from biomatch.extraction import extract
    from biomatch.imaging import decode_image
    from biomatch.modalities import load_modality
    from biomatch.modalities.face import landmarks, models, quality
    from biomatch.modalities.face.detector import FaceDetector

    face = load_modality("face", settings)
    detector = FaceDetector(settings.face)
    embedder = models.resnet_embedder()
    limits = {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
    row: dict[str, float] = {}
    row["decode"], image = timed(lambda: decode_image(data, **limits), repeats)
    row["detect"], boxes = timed(lambda: detector.detect(image), repeats)
    row["landmarks"], points = timed(lambda: landmarks.locate(image, boxes[0]), repeats)
    row["align"], chip = timed(lambda: landmarks.align(image, points), repeats)
    row["quality"], _ = timed(
        lambda: quality.face_checks(chip, points, settings.face.quality), repeats
    )
    chips = [chip, np.ascontiguousarray(chip[:, ::-1])]
    row["embed (chip + mirror)"], _ = timed(
        lambda: embedder.compute_face_descriptor(chips), repeats
    )
    row["end to end"], _ = timed(lambda: extract(data, face, settings), repeats)
    return {stage: round(ms, 2) for stage, ms in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--json", type=Path, help="default benchmarks/results/face_pipeline[_sface].json"
    )
    parser.add_argument("--model", choices=["dlib", "sface"], default="dlib")
    parser.add_argument("--cores", default="1,2", help="core counts to time, e.g. 1 or 1,2")
    parser.add_argument("--sizes", default=",".join(SIZES), help="e.g. 640x480")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    suffix = "" if args.model == "dlib" else f"_{args.model}"
    args.json = args.json or ROOT / f"benchmarks/results/face_pipeline{suffix}.json"
    if args.child:
        print(json.dumps(measure(args.repeats, args.model, sizes)))
        return
    by_cores = {}
    for cores in (int(c) for c in args.cores.split(",")):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(cores), "OMP_NUM_THREADS": str(cores)}
        command = [
            "taskset",
            "-c",
            ",".join(str(c) for c in range(cores)),
            sys.executable,
            __file__,
            "--child",
            "--repeats",
            str(args.repeats),
            "--model",
            args.model,
            "--sizes",
            args.sizes,
        ]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        by_cores[f"{cores} core{'s' if cores > 1 else ''}"] = json.loads(output.stdout)
    report = {
        "benchmark": "face template creation, median ms per image",
        "model": args.model,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "repeats": args.repeats,
        # The machine may be shared: the load beside the timing says how disturbed it was.
        "load_avg_1m": os.getloadavg()[0],
        "results": by_cores,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print_table(by_cores, sizes)
    print(f"written: {args.json}")


def print_table(by_cores: dict[str, dict[str, dict[str, float]]], sizes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Face template creation (median ms per image)")
    table.add_column("stage")
    columns = [(cores, size) for cores in by_cores for size in sizes]
    for cores, size in columns:
        table.add_column(f"{size}\n{cores}", justify="right")
    stages = next(iter(next(iter(by_cores.values())).values()))
    for stage in stages:
        table.add_row(stage, *(f"{by_cores[c][s][stage]:.1f}" for c, s in columns))
    Console().print(table)


if __name__ == "__main__":
    main()
