"""End to end through HTTP: verify and identify latency p50/p95/p99 and errors under 1, 4
and 16 concurrent clients, against a uvicorn server on 127.0.0.1 (started and stopped here).

    .venv/bin/python benchmarks/http_load.py [--clients 1,4,16] [--seconds 20]
        [--subjects 50] [--json FILE]

The gallery enrols the first image of LFW people with two or more images (from
../shared/data; matplotlib's Grace Hopper photo alone where LFW is absent), and each
client alternates verify (claiming the probe's own subject) and identify (top 5) with the
people's second images (people whose reference or probe the quality gate rejects are left
out at set-up). Each level runs for a bounded time; a request still in flight at
the end is waited for (30 s timeout, counted as an error). Prints a table and writes JSON
(default benchmarks/results/http_load.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/face/lfw/lfw"
GALLERY = "bench"


@dataclass
class Person:
    subject_id: str
    reference: bytes
    probe: bytes


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"verify": [], "identify": []}
    )
    # Answers by HTTP status (0: no answer); 4xx (e.g. a probe failing the quality gate) are
    # answers, 5xx and no answer are errors.
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: {"verify": {}, "identify": {}}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)


def people(count: int) -> list[Person]:
    if not LFW.exists():
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            photo: bytes = handle.read()
        return [Person("grace_hopper", photo, photo)]
    chosen = []
    for folder in sorted(LFW.iterdir()):
        images = sorted(folder.glob("*.jpg"))
        if len(images) >= 2:
            chosen.append(Person(folder.name, images[0].read_bytes(), images[1].read_bytes()))
        if len(chosen) == count:
            break
    return chosen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


SEARCH = {"purpose": "identity_check", "legal_authority": "load benchmark on loopback"}
# The per-operator rate limits would otherwise refuse a load test's traffic.
UNLIMITED = {
    "BIOMATCH_SEARCH_RATE_PER_MINUTE": "10000000",
    "BIOMATCH_REQUEST_RATE_PER_MINUTE": "10000000",
}


def issue_tokens(data_dir: Path) -> dict[str, dict[str, str]]:
    """An admin, an enroller and a field operator; role -> Authorization header."""
    from biomatch.accountability.principal import SYSTEM
    from biomatch.accountability.roles import Role
    from biomatch.config import Settings
    from biomatch.service import BioMatch

    core = BioMatch(Settings(data_dir=data_dir))
    headers = {}
    for role in ("admin", "enroller", "field_operator"):
        token = core.create_operator(SYSTEM, f"bench-{role}", Role(role)).token
        headers[role] = {"Authorization": f"Bearer {token}"}
    core.close()
    return headers


def start_server(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    import httpx

    command = [sys.executable, "-m", "biomatch.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **UNLIMITED},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the server did not answer /v1/health within 120 s")


def enrol(base: str, persons: list[Person], headers: dict[str, dict[str, str]]) -> list[Person]:
    import httpx

    enrolled = []
    policy = {"modes": ["verify", "identify"]}
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post(
            "/v1/galleries", json={"name": GALLERY, "policy": policy}, headers=headers["admin"]
        ).raise_for_status()
        for person in persons:
            files = {"images": ("reference.jpg", person.reference, "image/jpeg")}
            answer = client.post(
                f"/v1/galleries/{GALLERY}/subjects",
                data={"subject_id": person.subject_id},
                files=files,
                headers=headers["enroller"],
            )
            if answer.status_code in (200, 201) and _probe_accepted(
                client, person, headers["field_operator"]
            ):
                enrolled.append(person)
    return enrolled


def _probe_accepted(client: Any, person: Person, headers: dict[str, str]) -> bool:
    """Probes the quality gate rejects (422) would time a different, cheaper path."""
    files = {"image": ("probe.jpg", person.probe, "image/jpeg")}
    answer = client.post(
        f"/v1/galleries/{GALLERY}/identify",
        data={"top_k": "5", **SEARCH},
        files=files,
        headers=headers,
    )
    return bool(answer.status_code == 200)


def client_loop(
    base: str,
    persons: list[Person],
    stop_at: float,
    tally: Tally,
    seed: int,
    headers: dict[str, str],
) -> None:
    import httpx

    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        turn = 0
        while time.monotonic() < stop_at:
            person = persons[int(rng.integers(len(persons)))]
            kind = "verify" if turn % 2 == 0 else "identify"
            turn += 1
            files = {"image": ("probe.jpg", person.probe, "image/jpeg")}
            data = {"subject_id": person.subject_id} if kind == "verify" else {"top_k": "5"}
            data.update(SEARCH)
            began = time.perf_counter()
            try:
                answer = client.post(f"/v1/galleries/{GALLERY}/{kind}", data=data, files=files)
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            elapsed = (time.perf_counter() - began) * 1000
            with tally.lock:
                tally.latencies[kind].append(elapsed)
                counts = tally.statuses[kind]
                counts[status] = counts.get(status, 0) + 1


def run_level(
    base: str, persons: list[Person], clients: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    tally = Tally()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(base, persons, stop_at, tally, seed, headers))
        for seed in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    row: dict[str, Any] = {
        "clients": clients,
        "seconds": elapsed,
        "load_avg_1m": os.getloadavg()[0],
    }
    for kind, latencies in tally.latencies.items():
        values = np.array(latencies) if latencies else np.array([np.nan])
        statuses = tally.statuses[kind]
        row[kind] = {
            "requests": len(latencies),
            "errors": sum(n for status, n in statuses.items() if status == 0 or status >= 500),
            "rejected_4xx": sum(n for status, n in statuses.items() if 400 <= status < 500),
            "statuses": {str(status): n for status, n in sorted(statuses.items())},
            "per_second": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(values, 50)),
            "p95_ms": float(np.percentile(values, 95)),
            "p99_ms": float(np.percentile(values, 99)),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/http_load.json")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="biomatch-load-") as data_dir:
        headers = issue_tokens(Path(data_dir))
        server = start_server(Path(data_dir), port, args.workers)
        try:
            candidates = people(args.subjects)
            persons = enrol(base, candidates, headers)
            rows = [
                run_level(base, persons, int(clients), args.seconds, headers["field_operator"])
                for clients in args.clients.split(",")
            ]
        finally:
            server.terminate()
            server.wait(timeout=30)
    report = {
        "benchmark": "HTTP verify and identify on 127.0.0.1, authenticated, each search "
        "recorded as an encounter and audited",
        "server_workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "gallery_subjects": len(persons),
        "people_left_out_at_set_up": len(candidates) - len(persons),
        "seconds_per_level": args.seconds,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print_table(rows)
    print(f"written: {args.json}")


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="HTTP end to end (ms)")
    columns = ("clients", "call", "requests", "errors", "4xx", "req/s", "p50", "p95", "p99", "load")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        for kind in ("verify", "identify"):
            cell = row[kind]
            table.add_row(
                str(row["clients"]),
                kind,
                str(cell["requests"]),
                str(cell["errors"]),
                str(cell["rejected_4xx"]),
                f"{cell['per_second']:.1f}",
                f"{cell['p50_ms']:.0f}",
                f"{cell['p95_ms']:.0f}",
                f"{cell['p99_ms']:.0f}",
                f"{row['load_avg_1m']:.1f}",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
