"""Kill -9 during enrolment, N times over one data directory, checking after each crash that
no acknowledged enrolment is lost, no subject is half-written and the audit log verifies.

    .venv/bin/python benchmarks/crash_consistency.py [--runs 50] [--seed 14] [--json FILE]

Each run starts a process that enrols subjects of two images each through the core API and
says so once each enrolment returned; after 1-3 acknowledgements and a random 0-0.6 s more
(inside the next enrolment) it is killed with SIGKILL, and a fresh core checks the store
(tests/crashing.py). Prints a table and writes JSON (default
benchmarks/results/crash_consistency.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.crashing import crash_once  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/crash_consistency.json"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data = Path(tempfile.mkdtemp(prefix="bm-crash-")) / "data"
    began = time.monotonic()
    runs = [crash_once(data, run, rng, dict(os.environ)) for run in range(args.runs)]
    failed = [r for r in runs if r.problems]
    acknowledged = sum(len(r.acknowledged) for r in runs)
    print(
        f"{args.runs} kill -9 runs, {acknowledged} acknowledged enrolments, "
        f"{runs[-1].subjects_found} subjects stored, {len(failed)} runs with a problem"
    )
    for run in failed:
        print(f"  run {run.run}: {run.problems}")
    result = {
        "runs": args.runs,
        "failed_runs": len(failed),
        "acknowledged": acknowledged,
        "subjects_found": runs[-1].subjects_found,
        "problems": {r.run: r.problems for r in failed},
        "seconds": round(time.monotonic() - began, 1),
        "load_average": os.getloadavg(),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
