"""The compact approximate index (PQ shortlist, float16 re-rank store) for large galleries."""

import numpy as np
import pytest

from biomatch.config import IndexConfig
from biomatch.index import FaissIndex
from tests.test_index import clustered, unit_vectors


@pytest.mark.parametrize("codes", ["SQ8", "PQ"])
def test_compact_index_recalls_the_exact_top_10_in_less_memory(codes: str) -> None:
    gallery = clustered(6000, 600, 1.0, seed=3)
    probes = gallery[:40] + 0.05 * unit_vectors(40, seed=4)
    exact = FaissIndex(128, IndexConfig(approximate_above=10**9))
    compact = FaissIndex(
        128,
        IndexConfig(
            approximate_above=1000,
            ivf_lists=64,
            ivf_probe=24,
            rerank_factor=20,
            shortlist_codes=codes,
            pq_bytes=16,
            rerank_precision="float16",
        ),
    )
    for index in (exact, compact):
        index.add(np.arange(6000), gallery)
    found = 0
    for probe in probes:
        truth = {h.template_id for h in exact.search(probe, 10)}
        found += len(truth & {h.template_id for h in compact.search(probe, 10)})
    assert found / (10 * len(probes)) >= 0.95
    assert compact.memory_bytes() < 0.8 * exact.memory_bytes()
    top = compact.search(probes[0], 1)[0]
    assert abs(top.score - float(gallery[top.template_id] @ probes[0])) < 2e-3


def test_compact_index_forgets_removed_ids() -> None:
    gallery = clustered(3000, 300, 1.0, seed=5)
    config = IndexConfig(approximate_above=1000, ivf_lists=32, rerank_precision="float16")
    index = FaissIndex(128, config)
    index.add(np.arange(3000), gallery)
    index.remove(np.array([11, 12]))
    assert len(index) == 2998
    assert all(h.template_id not in (11, 12) for h in index.search(gallery[11], 50))
    index.add(np.array([5000]), gallery[11:12])
    assert index.search(gallery[11], 1)[0].template_id == 5000
