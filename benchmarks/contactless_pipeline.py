"""Contactless finger captures, ms per photo by stage, one process, on the shared RidgeBase
photos: fingertip photos (goal: 600 ms) and four-finger photos (goal: 2 s end to end).

    .venv/bin/python benchmarks/contactless_pipeline.py [--fingertips 16] [--hands 8] [--json F]

Fingertip stages: decode, contact_like (mask, ridge period, tip-up warp, unrolling,
flattening), minutiae (LEADER, fused graph), template (descriptors), and ``total`` (decode
and the plug-in's analyse + make_template, as the service runs them). Four-finger stages:
decode, split (hand mask, gaps, crops), fingers (analyse + make_template of the four
fingertips) and ``total``. Each stage also reports this process's CPU time. Prints a table
and writes JSON (default benchmarks/results/contactless_pipeline.json) with the load average.
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
RIDGEBASE = ROOT.parent / "shared/data/finger/ridgebase_samples"
CPU: dict[int, list[float]] = {}


def timed(runs: list[float], function: Callable[..., Any], *args: Any) -> Any:
    """Appends wall-clock ms to ``runs`` and this process's CPU ms (all threads) to CPU."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    runs.append((time.perf_counter() - started) * 1000)
    CPU.setdefault(id(runs), []).append((time.process_time() - cpu) * 1000)
    return result


def summary(stages: dict[str, list[float]]) -> dict[str, Any]:
    return {
        name: {
            "median_ms": statistics.median(runs),
            "p90_ms": sorted(runs)[int(0.9 * (len(runs) - 1))],
            "median_cpu_ms": statistics.median(CPU[id(runs)]),
            "n": len(runs),
        }
        for name, runs in stages.items()
        if runs
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingertips", type=int, default=16)
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/contactless_pipeline.json"
    )
    args = parser.parse_args()

    from biomatch.config import Settings
    from biomatch.imaging import decode_image
    from biomatch.modalities import load_modality
    from biomatch.modalities.finger import contactless
    from biomatch.modalities.finger.contactless_plugin import ContactlessFingerModality

    settings = Settings()
    plugin = load_modality("finger-contactless", settings)
    assert isinstance(plugin, ContactlessFingerModality)
    tips = sorted(RIDGEBASE.glob("fingertips/*/cl_*"))[: args.fingertips]
    hands = sorted(RIDGEBASE.glob("four_finger/*/*.jpg"))[: args.hands]
    if not tips or not hands:
        raise SystemExit(f"needs the RidgeBase samples at {RIDGEBASE}")

    def decode(data: bytes) -> Any:
        return decode_image(data, max_bytes=10**8, max_pixels=10**8)

    def capture(image: Any) -> bytes | None:
        found = plugin.analyse(image)  # a fingertip crop without a finger makes no template
        return plugin.make_template(found) if found.has_subject else None

    capture(decode(tips[0].read_bytes()))  # load the network outside the timings
    tip: dict[str, list[float]] = {
        k: [] for k in ("decode", "contact_like", "minutiae", "template", "total")
    }
    for path in tips:
        data = path.read_bytes()
        image = timed(tip["decode"], decode, data)
        found = timed(tip["contact_like"], contactless.contactless_to_contact, image)
        minutiae = timed(tip["minutiae"], plugin._contact_like_minutiae, found.image)
        timed(tip["template"], plugin.template_from_minutiae, minutiae, 300, 400)
        timed(tip["total"], lambda d: capture(decode(d)), data)
    four: dict[str, list[float]] = {k: [] for k in ("decode", "split", "fingers", "total")}

    def four_fingers(data: bytes, hand: str) -> list[bytes | None]:
        parts = plugin.split_capture(decode(data), "four_finger", hand)
        return [capture(part.image) for part in parts]

    for path in hands:
        data, hand = path.read_bytes(), path.parent.name.rsplit("_", 1)[-1]
        image = timed(four["decode"], decode, data)
        parts = timed(four["split"], plugin.split_capture, image, "four_finger", hand)
        timed(four["fingers"], lambda ps: [capture(p.image) for p in ps], parts)
        timed(four["total"], four_fingers, data, hand)
    result: dict[str, Any] = {
        "fingertip": summary(tip),
        "four_finger": summary(four),
        "fingertip_photos": len(tips),
        "four_finger_photos": len(hands),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1m_at_end": os.getloadavg()[0],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("fingertip", "four_finger"):
        for name, value in result[kind].items():
            print(
                f"{kind:<12} {name:<13} median {value['median_ms']:8.1f} ms   p90 "
                f"{value['p90_ms']:8.1f}   CPU median {value['median_cpu_ms']:8.1f}"
            )
    print(f"load average (1 min) {result['load_average_1m_at_end']:.2f}; written: {args.json}")


if __name__ == "__main__":
    main()
