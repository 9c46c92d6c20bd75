"""Memory and time of 16 concurrent 36-megapixel uploads against `serve --workers 2`.

    .venv/bin/python benchmarks/decode_memory.py [--clients 16] [--side 6000] [--format PNG]
        [--pythonpath OTHER/src] [--label after] [--json FILE]

After 8 small searches (the face model loaded in both workers), each client posts one
6000x6000 image (a flat PNG: about 35 KB on the wire, 108 MB as RGB)
to /identify at the same moment. The workers' resident memory (RSS, psutil) is sampled every
20 ms from before the burst until 3 s after it; the table gives each worker's RSS before, at
its peak and after, the answers (status: count) and the time to each answer. With
--pythonpath the server runs another checkout's code (e.g. main's, for "before").
Prints a table and writes JSON (default benchmarks/results/decode_memory_<label>.json).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import Server  # noqa: E402


def big_image(side: int, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (128, 120, 110)).save(buffer, fmt)
    return buffer.getvalue()


def field_token(data_dir: Path, env: dict[str, str]) -> str:
    import subprocess

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "biomatch.cli", *args, "--data-dir", str(data_dir)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        return done.stdout

    created = json.loads(cli("operator", "create", "fay", "--role", "field_operator"))
    return str(created["token"])


def make_gallery(data_dir: Path) -> None:
    from biomatch.accountability.policy import GalleryPolicy
    from biomatch.accountability.principal import SYSTEM
    from biomatch.config import Settings
    from biomatch.service import BioMatch

    core = BioMatch(Settings(data_dir=data_dir))
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy(modes=["verify", "identify"]))
    core.close()


def warm_up(url: str, headers: dict[str, str], fields: dict[str, str]) -> None:
    """Load the face model in both workers first (8 small searches at once), so that what
    the burst measures is the big images, not the model."""
    import httpx
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = handle.read()

    def search(_: int) -> int:
        files = {"image": ("p.jpg", photo, "image/jpeg")}
        post = httpx.post(f"{url}/v1/galleries/g/identify", data=fields, files=files,
                          headers=headers, timeout=300)  # fmt: skip
        return post.status_code

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(search, range(8)))


class RssSampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.samples: dict[int, list[tuple[float, int]]] = {p.pid: [] for p in self.processes}
        self.running = True

    def run(self) -> None:
        while self.running:
            now = time.monotonic()
            for process in self.processes:
                with contextlib.suppress(Exception):  # a worker that exited
                    self.samples[process.pid].append((now, process.memory_info().rss))
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--format", default="PNG")
    parser.add_argument("--pythonpath", default=None)
    parser.add_argument("--label", default="after")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import httpx

    image = big_image(args.side, args.format)
    data_dir = Path(tempfile.mkdtemp(prefix="bm-decode-")) / "data"
    env = {
        **os.environ,
        "BIOMATCH_SEARCH_RATE_PER_MINUTE": "100000",
        "BIOMATCH_REQUEST_RATE_PER_MINUTE": "100000",
    }
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    os.environ.update({k: v for k, v in env.items() if k.startswith("BIOMATCH_")})
    make_gallery(data_dir)
    token = field_token(data_dir, env)
    server = Server(data_dir, workers=2, env=env, pythonpath=args.pythonpath)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        fields = {"purpose": "identity_check", "legal_authority": "Identity Checks Act s.4"}
        warm_up(server.url, headers, fields)
        sampler = RssSampler(server.worker_pids())
        sampler.start()
        time.sleep(1.0)
        burst = time.monotonic()

        def post(_: int) -> tuple[int, float]:
            began = time.monotonic()
            response = httpx.post(
                f"{server.url}/v1/galleries/g/identify",
                data=fields,
                files={"image": ("big.png", image, "image/png")},
                headers=headers,
                timeout=300,
            )
            return response.status_code, time.monotonic() - began

        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(post, range(args.clients)))
        done = time.monotonic()
        time.sleep(3.0)
        sampler.running = False
        sampler.join()
    finally:
        server.stop()
    workers = []
    for pid, samples in sampler.samples.items():
        before = [rss for t, rss in samples if t < burst] or [samples[0][1]]
        workers.append(
            {
                "pid": pid,
                "rss_before_mb": round(before[-1] / 2**20, 1),
                "rss_peak_mb": round(max(rss for _, rss in samples) / 2**20, 1),
                "rss_after_mb": round(samples[-1][1] / 2**20, 1),
            }
        )
    seconds = sorted(s for _, s in answers)
    result: dict[str, Any] = {
        "label": args.label,
        "code": args.pythonpath or "this checkout",
        "clients": args.clients,
        "image": f"{args.side}x{args.side} {args.format}, {len(image)} bytes",
        "answers": dict(Counter(str(code) for code, _ in answers)),
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_max": round(seconds[-1], 3),
        "burst_seconds": round(done - burst, 3),
        "workers": workers,
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
    }
    print(f"{args.label}: {result['image']}, {args.clients} clients; answers {result['answers']}")
    print(f"  time to answer: median {result['seconds_median']} s, max {result['seconds_max']} s")
    for worker in workers:
        print(
            f"  worker {worker['pid']}: RSS {worker['rss_before_mb']} MB before, "
            f"{worker['rss_peak_mb']} MB peak, {worker['rss_after_mb']} MB 3 s after"
        )
    print(f"  load average {result['load_average']}")
    out = args.json or ROOT / f"benchmarks/results/decode_memory_{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
