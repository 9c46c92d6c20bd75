"""Finger template creation, ms per image by stage, one process, on FVC2002 DB1_B images.

    .venv/bin/python benchmarks/finger_pipeline.py [--images 20] [--leader-threads 1] [--json FILE]

Stages: decode, NFIQ 2, minutiae (LEADER and MINDTCT), descriptors. Prints a table and
writes JSON (default benchmarks/results/finger_pipeline.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FVC2002 = ROOT.parent / "shared/data/finger/fvc2002_db1b/DB1_B"


def timed(runs: list[float], function: Callable[..., Any], *args: Any) -> Any:
    started = time.perf_counter()
    result = function(*args)
    runs.append((time.perf_counter() - started) * 1000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument(
        "--leader-threads", type=int, default=1, help="0: onnxruntime's default (all cores)"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/finger_pipeline.json"
    )
    args = parser.parse_args()

    from biomatch.imaging import decode_image
    from biomatch.modalities.finger import matcher, quality
    from biomatch.modalities.finger.extractor import extract_minutiae
    from biomatch.modalities.finger.plugin import to_grey

    files = sorted(FVC2002.glob("*.tif"))[: args.images]
    if not files:
        raise SystemExit(f"needs FVC2002 DB1_B images at {FVC2002}")
    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "nfiq2", "leader", "mindtct", "descriptors")
    }

    def decode(data: bytes) -> Any:
        return to_grey(decode_image(data, max_bytes=10**8, max_pixels=10**8))

    warm = decode(files[0].read_bytes())
    threads = args.leader_threads
    extract_minutiae(warm, "leader", threads=threads)  # load the network outside the timings
    matcher.descriptors(matcher.matching_frame(extract_minutiae(warm, "mindtct")))
    for path in files:
        data = path.read_bytes()
        grey = timed(stages["decode"], decode, data)
        timed(stages["nfiq2"], quality.nfiq2_score, grey)
        minutiae = timed(stages["leader"], extract_minutiae, grey, "leader", 500, threads)
        timed(stages["mindtct"], extract_minutiae, grey, "mindtct")
        frame = matcher.matching_frame(minutiae)
        timed(stages["descriptors"], matcher.descriptors, frame)
    result: dict[str, Any] = {
        name: {"median_ms": statistics.median(runs), "mean_ms": statistics.fmean(runs)}
        for name, runs in stages.items()
    }
    for extractor in ("leader", "mindtct"):
        total = sum(result[s]["median_ms"] for s in ("decode", "nfiq2", extractor, "descriptors"))
        result[f"total_{extractor}_median_ms"] = total
    result["images"] = len(files)
    result["leader_threads"] = threads
    result["load_average_1m_at_end"] = os.getloadavg()[0]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        if isinstance(value, dict):
            print(f"{name:<24} median {value['median_ms']:8.1f} ms   mean {value['mean_ms']:8.1f}")
        else:
            print(f"{name:<24} {value}")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
