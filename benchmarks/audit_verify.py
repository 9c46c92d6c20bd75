"""Wall time of `biomatch audit verify` over a data directory with one gallery of N subjects.

    .venv/bin/python benchmarks/audit_verify.py [--data-dir /tmp/bm_audit] [--subjects 1000]
        [--repeats 3] [--label after] [--json FILE]

Builds the data directory when it holds no gallery yet (one gallery ``bench``, the first image
of the first N LFW people whose image passes the quality gate, enrolled through the Python
core API by an enroller that an admin-created operator set-up issues), then runs
``python -m biomatch.cli audit verify --data-dir D`` as a subprocess ``--repeats`` times and
reports the median wall time. A built directory is reused, so the same data can be timed
against two checkouts: put the other checkout's ``src`` first on ``PYTHONPATH`` (the
subprocess inherits it; the script prints which ``biomatch`` it timed). Prints a table and
writes JSON (default benchmarks/results/audit_verify_<label>.json).
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/face/lfw/lfw"
GALLERY = "bench"


def build(data_dir: Path, subjects: int) -> dict[str, Any]:
    from biomatch.accountability.principal import SYSTEM
    from biomatch.accountability.roles import Role
    from biomatch.config import Settings
    from biomatch.errors import BioMatchError
    from biomatch.service import BioMatch

    core = BioMatch(
        Settings(
            data_dir=data_dir, search_rate_per_minute=10_000_000, request_rate_per_minute=10_000_000
        )
    )
    try:
        admin = core.authenticate(core.create_operator(SYSTEM, "bench-admin", Role.ADMIN).token)
        enroller = core.authenticate(
            core.create_operator(admin, "bench-enroller", Role.ENROLLER).token
        )
        core.create_gallery(admin, GALLERY, "audit verify benchmark")
        enrolled = rejected = 0
        started = time.perf_counter()
        for folder in sorted(LFW.iterdir()):
            if enrolled == subjects:
                break
            images = sorted(folder.glob("*.jpg"))
            if not images:
                continue
            try:
                core.enrol(
                    enroller, GALLERY, folder.name, [images[0].read_bytes()], primary_only=True
                )
                enrolled += 1
            except BioMatchError:
                rejected += 1
            if (enrolled + rejected) % 100 == 0:
                print(
                    f"  {enrolled} enrolled, {rejected} rejected, "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )
        return {
            "enrolled": enrolled,
            "rejected": rejected,
            "build_s": round(time.perf_counter() - started, 1),
        }
    finally:
        core.close()


def built(data_dir: Path) -> bool:
    return any(data_dir.glob("*.db")) or any(data_dir.glob("*.sqlite*"))


def time_verify(data_dir: Path, repeats: int) -> tuple[list[float], str]:
    command = [sys.executable, "-m", "biomatch.cli", "audit", "verify", "--data-dir", str(data_dir)]
    times, output = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        times.append(time.perf_counter() - started)
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise RuntimeError(f"audit verify exited {done.returncode}: {output}")
    return times, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/bm_audit"))
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import biomatch

    args.data_dir.mkdir(parents=True, exist_ok=True)
    build_info: dict[str, Any] = {}
    if not built(args.data_dir):
        print(f"building {args.data_dir} ({args.subjects} subjects) with {biomatch.__file__}")
        build_info = build(args.data_dir, args.subjects)
    times, output = time_verify(args.data_dir, args.repeats)
    median = statistics.median(times)
    print(f"\nbiomatch: {biomatch.__file__}")
    try:
        said = json.loads(output)
        summary = f"intact={said.get('intact')} entries={said.get('entries')}"
    except ValueError:
        summary = output.splitlines()[-1] if output else ""
    print(f"data dir: {args.data_dir}   audit verify: {summary}")
    print(f"{'label':<10} {'runs':>5} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{args.label:<10} {len(times):>5} {median:>9.2f} {min(times):>7.2f} {max(times):>7.2f}")
    report = {
        "benchmark": "audit_verify",
        "label": args.label,
        "biomatch": biomatch.__file__,
        "data_dir": str(args.data_dir),
        "subjects": args.subjects,
        "build": build_info,
        "times_s": [round(t, 3) for t in times],
        "median_s": round(median, 3),
        "output": output,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    path = args.json or ROOT / f"benchmarks/results/audit_verify_{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
