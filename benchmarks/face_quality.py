"""The face quality gate's measures per face plug-in, on the face fixtures and an LFW sample.

    .venv/bin/python benchmarks/face_quality.py [--plugins face-sface,face-dlib]
        [--lfw-sample 600] [--json FILE]

For each plug-in (dlib's only where installed): each check's score on a seeded sample of
LFW images (percentiles and the share refused at the configured threshold) and, for every
image of ../shared/data/face/fixtures, the checks it fails. The thresholds in
``FaceQualityConfig`` are read from these tables (README: "Face quality gate"). Writes JSON
(default benchmarks/results/face_quality.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT.parent / "shared/data/face"
PERCENTILES = (1, 5, 50, 95, 99)


def fixture_images() -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png"}
    return sorted(p for p in (FACE / "fixtures").rglob("*") if p.suffix.lower() in suffixes)


def lfw_sample(count: int) -> list[Path]:
    images = sorted((FACE / "lfw/lfw").glob("*/*.jpg"))
    return random.Random(0).sample(images, min(count, len(images)))


def analysed(plugin: Any, path: Path, settings: Any) -> dict[str, Any]:
    from biomatch.imaging import decode_image

    image = decode_image(path.read_bytes(), max_bytes=10**8, max_pixels=10**8)
    capture = plugin.analyse(image)
    return {
        "faces": capture.subjects_found,
        "scores": capture.quality.scores(),
        "thresholds": {check.name: check.threshold for check in capture.quality.checks},
        "failed": sorted(check.name for check in capture.quality.failures),
    }


def summary(rows: list[dict[str, Any]], thresholds: dict[str, str]) -> dict[str, Any]:
    found = [row for row in rows if row["faces"] > 0]
    checks: dict[str, Any] = {}
    for name, threshold in thresholds.items():
        values = np.array([row["scores"][name] for row in found if name in row["scores"]])
        refused = np.mean([name in row["failed"] for row in found]) if found else 0.0
        checks[name] = {
            "threshold": threshold,
            "refused_share": round(float(refused), 4),
            **{f"p{q}": round(float(np.percentile(values, q)), 2) for q in PERCENTILES},
        }
    return {
        "images": len(rows),
        "no_face": len(rows) - len(found),
        "several_faces": sum(row["faces"] > 1 for row in rows),
        "passed_gate": sum(not row["failed"] for row in rows),
        "checks": checks,
    }


def measure(name: str, settings: Any, lfw: list[Path]) -> dict[str, Any]:
    from biomatch.modalities import load_modality

    plugin = load_modality(name, settings)
    lfw_rows = [analysed(plugin, path, settings) for path in lfw]
    probe = next(row for row in lfw_rows if row["faces"])
    thresholds = {k: v for k, v in probe["thresholds"].items() if k != "face_count"}
    fixtures = {
        str(path.relative_to(FACE / "fixtures")): analysed(plugin, path, settings)
        for path in fixture_images()
    }
    return {"model": plugin.info.key, "lfw": summary(lfw_rows, thresholds), "fixtures": fixtures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default="face-sface,face-dlib")
    parser.add_argument("--lfw-sample", type=int, default=600)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/face_quality.json")
    args = parser.parse_args()
    from biomatch.config import Settings

    settings = Settings()
    lfw = lfw_sample(args.lfw_sample)
    names = [n for n in args.plugins.split(",") if n != "face-dlib" or _have_dlib()]
    report = {name: measure(name, settings, lfw) for name in names}
    report_all = {"load_avg_1m": os.getloadavg()[0], "plugins": report}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report_all, indent=2) + "\n")
    print_tables(report)
    print(f"written: {args.json}")


def _have_dlib() -> bool:
    return importlib.util.find_spec("dlib") is not None


def print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for result in report.values():
        lfw = result["lfw"]
        table = Table(
            title=f"{result['model']}: LFW sample of {lfw['images']} ({lfw['no_face']} no face, "
            f"{lfw['several_faces']} several, {lfw['passed_gate']} pass the gate)"
        )
        for column in ("check", "threshold", "refused", *(f"p{q}" for q in PERCENTILES)):
            table.add_column(column, justify="right")
        for check, row in lfw["checks"].items():
            cells = [f"{row[f'p{q}']:.2f}" for q in PERCENTILES]
            table.add_row(check, row["threshold"], f"{row['refused_share']:.1%}", *cells)
        console.print(table)
    fixtures = Table(title="Fixtures: checks failed (faces found)")
    fixtures.add_column("image")
    for name in report:
        fixtures.add_column(name)
    first = next(iter(report.values()))["fixtures"]
    for image in first:
        cells = []
        for result in report.values():
            row = result["fixtures"][image]
            cells.append(f"{', '.join(row['failed']) or 'pass'} ({row['faces']})")
        fixtures.add_row(image, *cells)
    console.print(fixtures)


if __name__ == "__main__":
    main()
