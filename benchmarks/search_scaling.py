"""1:N search as the gallery grows: p50/p99 latency, QPS, memory, recall against exact.

    .venv/bin/python benchmarks/search_scaling.py [--sizes 1e3,1e4,1e5,1e6,1e7]
        [--queries 300] [--threads 2] [--lfw-cache data/cache/lfw.json] [--json FILE]

Galleries are synthetic unit vectors shaped like face templates: identities drawn from a
Gaussian fitted to the LFW templates (mean, between- and within-identity covariance) where
the template cache is given, else isotropic clusters. Each query is a fresh sample of an
enrolled identity (a mated search). The gallery is generated in chunks of 10^6 and never
held whole; exact top-k (the recall reference) is found by streaming over the chunks.
The index is BioMatch's FaissIndex with the configuration given on the command line.
Prints a table and writes JSON (default benchmarks/results/search_scaling.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW_DIR = ROOT.parent / "shared" / "data" / "face" / "lfw" / "lfw"
DIM = 128
CHUNK = 1_000_000
SAMPLES_PER_IDENTITY = 2


@dataclass(frozen=True)
class Shape:
    """Identity centres ~ N(mean, between); samples = centre + N(0, within); normalised."""

    mean: np.ndarray
    between_root: np.ndarray
    within_root: np.ndarray
    source: str

    def identities(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return self.mean + rng.standard_normal((count, DIM)) @ self.between_root.T

    def samples(self, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
        vectors = centres + rng.standard_normal(centres.shape) @ self.within_root.T
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32)


def _root(covariance: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _lfw_templates(cache: Path) -> tuple[list[str], np.ndarray]:
    """LFW image ids and face templates from the evaluation cache (keyed by image SHA-256),
    the ids found by hashing the LFW folder."""
    from biomatch.config import Settings
    from biomatch.evaluation import dataset, lfw

    plugin = dataset.load_modality("face", Settings())
    cached = dataset._load_cache(cache, plugin.info.key)
    ids, rows = [], []
    for image_id in lfw.all_image_ids(LFW_DIR):
        entry = cached.get(dataset.file_sha256(lfw.image_path(LFW_DIR, image_id)))
        if entry is not None:
            ids.append(image_id)
            rows.append(plugin.index_vector(entry.template).astype(np.float64))
    return ids, np.stack(rows)


def fitted_shape(cache: Path | None) -> Shape:
    if cache is None or not cache.exists():
        spread = 0.35 / np.sqrt(DIM)  # mated cosine about 0.9, like the face model
        return Shape(np.zeros(DIM), np.eye(DIM) / np.sqrt(DIM), spread * np.eye(DIM), "isotropic")
    ids, vectors = _lfw_templates(cache)
    people = np.array([i[:-5] for i in ids])
    _, person, counts = np.unique(people, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, DIM))
    np.add.at(sums, person, vectors)
    centres = sums / counts[:, None]
    repeated = counts[person] > 1
    deviations = (vectors - centres[person])[repeated]
    within = deviations.T @ deviations / max(len(deviations) - (counts > 1).sum(), 1)
    total = np.cov(vectors.T)
    return Shape(
        vectors.mean(axis=0),
        _root(total - within),
        _root(within),
        f"Gaussian fitted to {len(vectors)} LFW templates",
    )


def gallery_chunks(shape: Shape, size: int, seed: int) -> Any:
    """Yields (first id, vectors) chunks; identity i owns ids 2i and 2i+1."""
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        rng = np.random.default_rng([seed, start])
        centres = _centres(shape, seed, start // SAMPLES_PER_IDENTITY, count)
        yield start, shape.samples(rng, np.repeat(centres, SAMPLES_PER_IDENTITY, 0)[:count])


def _centres(shape: Shape, seed: int, first: int, count: int) -> np.ndarray:
    """Centres of identities first.. (deterministic per identity block of 500k)."""
    needed = -(-count // SAMPLES_PER_IDENTITY)
    return shape.identities(np.random.default_rng([seed, 10**9 + first]), needed)


def queries(shape: Shape, size: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, identity of each): fresh samples of enrolled identities (each chunk's
    centres regenerated once)."""
    rng = np.random.default_rng([seed, 7])
    ids = np.sort(rng.integers(0, size, count))
    out = np.empty((count, DIM), np.float32)
    for start in np.unique(ids // CHUNK * CHUNK).tolist():
        rows = np.flatnonzero(ids // CHUNK * CHUNK == start)
        block = _centres(shape, seed, start // SAMPLES_PER_IDENTITY, min(CHUNK, size - start))
        out[rows] = shape.samples(rng, block[(ids[rows] - start) // SAMPLES_PER_IDENTITY])
    return out, ids // SAMPLES_PER_IDENTITY


def exact_top(shape: Shape, size: int, probes: np.ndarray, k: int, seed: int) -> np.ndarray:
    import faiss

    best_scores = np.full((len(probes), k), -np.inf, np.float32)
    best_ids = np.full((len(probes), k), -1, np.int64)
    for start, vectors in gallery_chunks(shape, size, seed):
        scores, ids = faiss.knn(probes, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
        merged_scores = np.hstack([best_scores, scores])
        merged_ids = np.hstack([best_ids, ids + start])
        order = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, 1)
        best_ids = np.take_along_axis(merged_ids, order, 1)
    return best_ids


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(size: int, shape: Shape, args: argparse.Namespace) -> tuple[Any, float, float]:
    """(index, seconds to build, RSS growth in MiB)."""
    import faiss

    from biomatch.config import IndexConfig
    from biomatch.index import FaissIndex

    lists = args.lists or int(min(16384, max(64, 4 * np.sqrt(size))))
    config = IndexConfig(
        approximate_above=args.approximate_above,
        ivf_lists=lists,
        ivf_probe=1,
        shortlist_codes=args.codes,
        pq_bytes=args.pq_bytes,
        rerank_factor=args.rerank_factor,
        rerank_precision=args.precision,
    )
    before = rss_mib()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building may use every core
    started = time.perf_counter()
    index = FaissIndex(DIM, config)
    for start, vectors in gallery_chunks(shape, size, args.seed):
        index.add(np.arange(start, start + len(vectors)), vectors)
        del vectors
    faiss.omp_set_num_threads(args.threads)
    return index, time.perf_counter() - started, rss_mib() - before


def measure(size: int, shape: Shape, args: argparse.Namespace) -> list[dict[str, Any]]:
    probes, identities = queries(shape, size, args.queries, args.seed)
    truth = exact_top(shape, size, probes, args.k, args.seed)
    index, build_s, rss_growth = build(size, shape, args)
    rows = []
    for cells in args.probe if index.is_approximate else [0]:
        if cells:
            index.set_probe(cells)
        row = search_all(index, probes, identities, truth, args.k)
        lists = args.lists or int(min(16384, max(64, 4 * np.sqrt(size))))
        mode = f"IVF{lists},{args.codes} nprobe {cells} + {args.precision} re-rank x"
        row = {
            "gallery": size,
            "mode": mode + str(args.rerank_factor) if cells else "exact (flat)",
            **row,
            "index_mib": index.memory_bytes() / 2**20,
            "rss_growth_mib": rss_growth,
            "build_s": build_s,
            "load_avg_1m": os.getloadavg()[0],
        }
        rows.append(row)
    del index
    return rows


def search_all(
    index: Any, probes: np.ndarray, identities: np.ndarray, truth: np.ndarray, k: int
) -> dict[str, float]:
    index.search(probes[0], k)  # warm-up
    latencies, found_1, found_k, mates = [], 0, 0, 0
    for probe, identity, expected in zip(probes, identities, truth, strict=True):
        began = time.perf_counter()
        hits = index.search(probe, k)
        latencies.append((time.perf_counter() - began) * 1000)
        returned = [h.template_id for h in hits]
        found_1 += int(returned[:1] == expected[:1].tolist())
        found_k += len(set(returned) & set(expected.tolist()))
        mates += int(any(t // SAMPLES_PER_IDENTITY == identity for t in returned))
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "qps": len(latencies) / (sum(latencies) / 1000),
        "recall@1": found_1 / len(probes),
        f"recall@{k}": found_k / (k * len(probes)),
        f"mate_in_top{k}": mates / len(probes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="FAISS (OpenMP) threads")
    parser.add_argument("--approximate-above", type=int, default=200_000)
    parser.add_argument("--lists", type=int, default=0, help="IVF cells (0: 4 sqrt(N))")
    parser.add_argument("--probe", default="64,256,1024", help="IVF cells visited (a sweep)")
    parser.add_argument("--rerank-factor", type=int, default=20)
    parser.add_argument("--codes", choices=["SQ8", "PQ"], default="SQ8")
    parser.add_argument("--pq-bytes", type=int, default=32)
    parser.add_argument("--precision", choices=["float32", "float16"], default="float16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw-cache", type=Path, default=ROOT / "data/cache/lfw.json")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/search_scaling.json"
    )
    args = parser.parse_args()
    args.probe = [int(p) for p in args.probe.split(",")]
    shape = fitted_shape(args.lfw_cache)
    rows = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        rows.extend(measure(size, shape, args))
        print_table(rows, args.k)
    report = {
        "benchmark": "1:N search, one query at a time, top-k",
        "load_avg_at_end": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "faiss_threads": args.threads,
        "vectors": shape.source,
        "queries": args.queries,
        "k": args.k,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.json}")


def print_table(rows: list[dict[str, Any]], k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="1:N search (one query at a time)")
    columns = ["gallery", "mode", "p50_ms", "p99_ms", "qps", "recall@1", f"recall@{k}"]
    columns += [f"mate_in_top{k}"]
    columns += ["index_mib", "rss_growth_mib", "build_s", "load_avg_1m"]
    for column in columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in rows:
        table.add_row(
            *(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
