"""1:1 comparison: comparisons per second per core, through the modality's ``compare``.

    .venv/bin/python benchmarks/compare.py [--modality face] [--seconds 3] [--json FILE]

Runs pinned to one core with one BLAS thread. Two ways of calling: one reference per call
(a 1:1 verification), and 1,000 references per call (re-scoring a 1:N shortlist or a
gallery sweep). Templates are made from real photos (matplotlib's Grace Hopper photo and
flipped/cropped copies); a comparison's cost does not depend on who is in the photo.
Prints a table and writes JSON (default benchmarks/results/compare.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def templates(modality: str) -> list[bytes]:
    import cv2
    import numpy as np
    from matplotlib import cbook

    from biomatch.config import Settings
    from biomatch.extraction import extract
    from biomatch.modalities import load_modality

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    variants = [image, image[:, ::-1], image[20:-20, 20:-20], image[:, 10:-10]]
    settings = Settings()
    plugin = load_modality(modality, settings)
    return [
        extract(bytes(cv2.imencode(".jpg", v)[1]), plugin, settings, enforce_quality=False).template
        for v in variants
    ]


def rate(function: Callable[[], Any], seconds: float, per_call: int) -> float:
    """Comparisons per second over about ``seconds`` of repeated calls."""
    function()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            function()
        calls += 100
    return calls * per_call / (time.perf_counter() - started)


def measure(modality: str, seconds: float) -> dict[str, float]:
    from biomatch.config import Settings
    from biomatch.modalities import load_modality

    plugin = load_modality(modality, Settings())
    made = templates(modality)
    probe, reference = made[0], made[1]
    shortlist = [made[i % len(made)] for i in range(1000)]
    return {
        "one reference per call": rate(lambda: plugin.compare(probe, [reference]), seconds, 1),
        "1000 references per call": rate(lambda: plugin.compare(probe, shortlist), seconds, 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", default="face")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/compare.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.modality, args.seconds)))
        return
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = ["taskset", "-c", "0", sys.executable, __file__, "--child"]
    command += ["--modality", args.modality, "--seconds", str(args.seconds)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    results = json.loads(output.stdout.strip().splitlines()[-1])
    report = {
        "benchmark": f"1:1 comparisons per second on one core ({args.modality})",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_avg_1m": os.getloadavg()[0],
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=report["benchmark"])
    table.add_column("call")
    table.add_column("comparisons/s/core", justify="right")
    for call, value in results.items():
        table.add_row(call, f"{value:,.0f}")
    Console().print(table)
    print(f"written: {args.json} (load average {report['load_avg_1m']:.2f})")


if __name__ == "__main__":
    main()
