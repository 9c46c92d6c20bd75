"""Contactless finger captures, ms per photo by stage, one process, on the shared RidgeBase
photos: fingertip photos (goal: 600 ms) and four-finger photos (goal: 2 s end to end).

    .venv/bin/python benchmarks/contactless_pipeline.py [--fingertips 16] [--hands 8]
        [--gallery 100] [--json F]

Fingertip stages: decode, contact_like (mask, ridge period, tip-up warp, unrolling,
flattening), minutiae (LEADER, fused graph), template (descriptors), and ``total`` (decode
and the plug-in's analyse + make_template, as the service runs them). Four-finger stages:
decode, split (hand mask, gaps, crops), fingers (analyse + make_template of the four
fingertips) and ``total``. ``identify``: the whole 1:N request through the core (fingertip
and four-finger photo against a gallery of contact prints: extraction, search, fusion, the
encounter and its audit entry; photos the gate refuses in rows of their own, timed to the
422). Each stage also reports this process's CPU time. Prints a table
and writes JSON (default benchmarks/results/contactless_pipeline.json) with the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RIDGEBASE = ROOT.parent / "shared/data/finger/ridgebase_samples"
CPU: dict[int, list[float]] = {}


def timed(runs: list[float], function: Callable[..., Any], *args: Any) -> Any:
    """Appends wall-clock ms to ``runs`` and this process's CPU ms (all threads) to CPU."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    record(runs, started, cpu)
    return result


def record(runs: list[float], started: float, cpu: float) -> None:
    """The wall-clock and CPU ms since ``started`` and ``cpu`` (as ``timed`` keeps them)."""
    runs.append((time.perf_counter() - started) * 1000)
    CPU.setdefault(id(runs), []).append((time.process_time() - cpu) * 1000)


def summary(stages: dict[str, list[float]]) -> dict[str, Any]:
    return {
        name: {
            "median_ms": statistics.median(runs),
            "p90_ms": sorted(runs)[math.ceil(0.9 * len(runs)) - 1],
            "median_cpu_ms": statistics.median(CPU[id(runs)]),
            "n": len(runs),
        }
        for name, runs in stages.items()
        if runs
    }


@dataclass
class Searched:
    runs: dict[str, list[float]]
    refused: dict[str, int]
    gallery: int


def identify_end_to_end(tips: list[Path], hands: list[Path], gallery_size: int) -> Searched:
    """``BioMatch.identify_probe`` (extraction, index shortlist, matcher, fusion, encounter
    and audit record) of each photo against a gallery of RidgeBase contact prints, in a
    temporary data directory; photos the gate refuses are timed to that answer (422, the
    retake loop's wait) in rows of their own, ``<kind>_refused``."""
    from biomatch.accountability.policy import GalleryPolicy
    from biomatch.accountability.principal import SYSTEM, Principal
    from biomatch.accountability.roles import Role
    from biomatch.config import Settings
    from biomatch.errors import QualityRejected
    from biomatch.results import SearchContext
    from biomatch.service import BioMatch, ProbeItem

    settings = Settings(data_dir=Path(tempfile.mkdtemp()), search_rate_per_minute=10**6)
    core = BioMatch(settings, modalities=("finger", "finger-contactless"))
    core.create_gallery(SYSTEM, "prints", policy=GalleryPolicy(modes=["verify", "identify"]))
    enroller = Principal(None, "bench-enroller", Role.ENROLLER)
    searcher = Principal(None, "bench-operator", Role.FIELD_OPERATOR)
    context = SearchContext(purpose="identity_check", legal_authority="benchmark run")
    prints = sorted(RIDGEBASE.glob("fingertips/*/ct_*"))[:gallery_size]
    for number, path in enumerate(prints):
        core.enrol_positions(enroller, "prints", f"p{number}", [(0, path.read_bytes())])
    kinds = ("fingertip", "four_finger")
    runs: dict[str, list[float]] = {k: [] for k in (*kinds, *(f"{k}_refused" for k in kinds))}
    photos: list[tuple[str, Path, str | None]] = [("fingertip", path, None) for path in tips]
    photos += [("four_finger", path, path.parent.name.rsplit("_", 1)[-1]) for path in hands]
    for kind, path, hand in photos:
        layout = "four_finger" if hand else None
        item = ProbeItem(
            "finger", path.read_bytes(), plugin="finger-contactless", layout=layout, hand=hand
        )
        started, cpu = time.perf_counter(), time.process_time()
        try:
            core.identify_probe(searcher, "prints", [item], context)
        except QualityRejected:
            kind = f"{kind}_refused"
        record(runs[kind], started, cpu)
    core.close()
    return Searched(runs, {k: len(runs[f"{k}_refused"]) for k in kinds}, len(prints))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingertips", type=int, default=16)
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--gallery", type=int, default=100, help="contact prints enrolled")
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
    searched = identify_end_to_end(tips, hands, args.gallery)
    result: dict[str, Any] = {
        "fingertip": summary(tip),
        "four_finger": summary(four),
        "identify": summary(searched.runs),
        "identify_refused": searched.refused,
        "identify_gallery_subjects": searched.gallery,
        "fingertip_photos": len(tips),
        "four_finger_photos": len(hands),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1m_at_end": os.getloadavg()[0],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("fingertip", "four_finger", "identify"):
        for name, value in result[kind].items():
            print(
                f"{kind:<12} {name:<19} median {value['median_ms']:8.1f} ms   p90 "
                f"{value['p90_ms']:8.1f}   CPU median {value['median_cpu_ms']:8.1f}"
            )
    print(
        f"identify: gallery of {searched.gallery} contact prints; refused by the gate "
        f"(answered 422): {searched.refused}"
    )
    print(f"load average (1 min) {result['load_average_1m_at_end']:.2f}; written: {args.json}")


if __name__ == "__main__":
    main()
