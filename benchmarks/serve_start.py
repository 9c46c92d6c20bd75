"""First starts of `serve --workers 2` on an empty data directory, repeated: how many come
up whole (every worker started, no traceback, one master key, audit log intact).

    .venv/bin/python benchmarks/serve_start.py [--repeats 12] [--workers 2]
        [--pythonpath OTHER/src] [--label after] [--json FILE]

With --pythonpath the server runs another checkout's code (e.g. main's, for "before").
Prints a table and writes JSON (default benchmarks/results/serve_start_<label>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import Server  # noqa: E402


def one_start(workers: int, pythonpath: str | None) -> tuple[bool, float, str]:
    data = Path(tempfile.mkdtemp(prefix="bm-start-")) / "data"
    server = Server(data, workers=workers, pythonpath=pythonpath, timeout_s=60)
    try:
        seconds = server.start()
    except RuntimeError as exc:
        return False, 0.0, str(exc).splitlines()[-1][:200]
    finally:
        server.stop()
    if "Traceback" in server.text():
        return False, seconds, "a traceback in the log"
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    verified = subprocess.run(
        [sys.executable, "-m", "biomatch.cli", "audit", "verify", "--data-dir", str(data)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if verified.returncode != 0:
        return False, seconds, f"audit verify: {verified.stderr.strip()[:200]}"
    return True, seconds, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pythonpath", default=None)
    parser.add_argument("--label", default="after")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    began = time.monotonic()
    starts = [one_start(args.workers, args.pythonpath) for _ in range(args.repeats)]
    failures = [why for ok, _, why in starts if not ok]
    times = [seconds for ok, seconds, _ in starts if ok]
    print(
        f"{args.label}: {args.repeats} first starts with --workers {args.workers}: "
        f"{len(failures)} failed; start {min(times, default=0):.1f}-{max(times, default=0):.1f} s"
    )
    for why in failures:
        print(f"  {why}")
    result = {
        "label": args.label,
        "code": args.pythonpath or "this checkout",
        "repeats": args.repeats,
        "failed": len(failures),
        "failures": failures,
        "start_seconds": [round(t, 2) for t in times],
        "seconds": round(time.monotonic() - began, 1),
        "load_average": os.getloadavg(),
    }
    out = args.json or ROOT / f"benchmarks/results/serve_start_{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
