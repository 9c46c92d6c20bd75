"""FAISS (in each process) against Milvus Lite (embedded Milvus) on the same template-shaped
data, through BioMatch's own index backends (``IndexRegistry``, ``MilvusRegistry``): build
time, memory, p50/p99 latency of one subject search (top 10 subjects), recall@10 against
exact, and the mate in the top 10.

    .venv/bin/python benchmarks/index_backends.py [--sizes 1e5,1e6] [--queries 200]
        [--backends faiss,faiss-exact,milvus-flat,milvus-hnsw] [--json FILE]

The gallery is search_scaling.py's: identities from a Gaussian fitted to the LFW templates
(where data/cache/lfw.json exists; isotropic clusters otherwise), two templates each;
queries are fresh samples of enrolled identities. "faiss" is the embedded default (exact up
to index.approximate_above = 200,000 templates, then IVF + SQ8 with re-ranking), "faiss-exact"
is exact at any size. Memory: RSS growth of this process and its children (Milvus Lite
serves from threads of the process that opens it; a Milvus server holds the vectors
itself). Run it under the heavy lock on a shared machine. Prints a table and writes JSON
(default benchmarks/results/index_backends.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_scaling as scaling  # the same gallery generator

from biomatch.config import IndexConfig
from biomatch.index.base import IndexBackend

ROOT = Path(__file__).resolve().parents[1]
K = 10


def backend(name: str, folder: Path) -> tuple[IndexBackend, str]:
    from contextlib import nullcontext

    if name.startswith("milvus"):
        from biomatch.index.milvus_index import MilvusRegistry

        index_type = {"milvus-flat": "FLAT", "milvus-hnsw": "HNSW", "milvus-ivf": "IVF_FLAT"}
        kind = index_type[name]
        params = {"HNSW": {"M": 16, "efConstruction": 128}, "IVF_FLAT": {"nlist": 1024}}
        search = {"HNSW": {"ef": 128}, "IVF_FLAT": {"nprobe": 32}}
        config = IndexConfig(
            backend="milvus",
            milvus_uri=str(folder / "milvus.db"),
            milvus_index_type=kind,  # type: ignore[arg-type]
            milvus_index_params=params.get(kind, {}),
            milvus_search_params=search.get(kind, {}),
        )
        described = f"Milvus Lite {kind} {params.get(kind, '')} {search.get(kind, '')}".strip()
        return MilvusRegistry(config, lambda _: nullcontext()), described
    from biomatch.index.registry import IndexRegistry

    if name == "faiss-exact":
        return IndexRegistry(IndexConfig(approximate_above=10**12)), "FAISS flat (exact)"
    config = IndexConfig()
    return IndexRegistry(config), (
        f"FAISS, BioMatch default (exact <= {config.approximate_above:,}, then IVF "
        f"{config.ivf_lists} {config.shortlist_codes} nprobe {config.ivf_probe} + re-rank)"
    )


def server_rss_mib() -> float:
    """RSS of this process's child processes (Milvus Lite's server), MiB."""
    total = 0
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def subject_truth(shape: Any, size: int, probes: np.ndarray, seed: int) -> list[list[int]]:
    """The exact top 10 subjects (best template each) of every probe."""
    templates = scaling.exact_top(shape, size, probes, 4 * K, seed)
    truth = []
    for row in templates:
        subjects: list[int] = []
        for template in row.tolist():
            subject = template // scaling.SAMPLES_PER_IDENTITY
            if subject not in subjects:
                subjects.append(subject)
        truth.append(subjects[:K])
    return truth


def measure(name: str, size: int, shape: Any, args: argparse.Namespace) -> dict[str, Any]:
    probes, identities = scaling.queries(shape, size, args.queries, args.seed)
    truth = subject_truth(shape, size, probes, args.seed)
    with tempfile.TemporaryDirectory(prefix="biomatch-bench-") as folder:
        registry, described = backend(name, Path(folder))

        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            chunks = list(scaling.gallery_chunks(shape, size, args.seed))
            vectors = np.concatenate([v for _, v in chunks])
            ids = np.arange(size, dtype=np.int64)
            return ids, ids // scaling.SAMPLES_PER_IDENTITY, vectors

        before = scaling.rss_mib()
        started = time.perf_counter()
        registry.sync(1, "bench", scaling.DIM, 1, load)
        build_s = time.perf_counter() - started
        # Milvus Lite serves from this process (its own threads); Milvus proper from its own.
        memory = scaling.rss_mib() - before + server_rss_mib()
        registry.search_subjects(1, "bench", probes[0], K)  # warm-up
        latencies, recall, mates = [], 0, 0
        for probe, identity, expected in zip(probes, identities, truth, strict=True):
            began = time.perf_counter()
            hits = registry.search_subjects(1, "bench", probe, K)
            latencies.append((time.perf_counter() - began) * 1000)
            returned = [subject for subject, _ in hits]
            recall += len(set(returned) & set(expected))
            mates += int(identity in returned)
        registry.reset(1, "bench")
    return {
        "backend": name,
        "index": described,
        "gallery_templates": size,
        "build_s": round(build_s, 1),
        "memory_mib": round(memory),
        "memory_is": "RSS growth of this process and its children",
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        f"recall@{K}": round(recall / (K * len(probes)), 4),
        f"mate_in_top{K}": round(mates / len(probes), 4),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", default="faiss,faiss-exact,milvus-flat,milvus-hnsw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw-cache", type=Path, default=ROOT / "data/cache/lfw.json")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/index_backends.json"
    )
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time, as a service request
    shape = scaling.fitted_shape(args.lfw_cache)
    rows = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        for name in args.backends.split(","):
            rows.append(measure(name, size, shape, args))
            print(json.dumps(rows[-1]), flush=True)
    report = {
        "benchmark": "1:N subject search through BioMatch's index backends, one query at a "
        "time, top 10 subjects",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "vectors": shape.source,
        "queries": args.queries,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print_table(rows)
    print(f"written: {args.json}")


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Index backends")
    for column in ("backend", "gallery", "build s", "MiB", "p50 ms", "p99 ms", "R@10", "mate@10"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["backend"],
            f"{row['gallery_templates']:,}",
            str(row["build_s"]),
            str(row["memory_mib"]),
            str(row["p50_ms"]),
            str(row["p99_ms"]),
            str(row[f"recall@{K}"]),
            str(row[f"mate_in_top{K}"]),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
