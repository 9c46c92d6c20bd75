import numpy as np

from biomatch.config import IndexConfig
from biomatch.index import FaissIndex, IndexRegistry


def unit_vectors(n: int, d: int = 128, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_search_returns_the_nearest_ids_in_order() -> None:
    vectors = unit_vectors(500)
    index = FaissIndex(128, IndexConfig())
    index.add(np.arange(1000, 1500), vectors)
    hits = index.search(vectors[42], 5)
    assert hits[0].template_id == 1042
    assert hits[0].score > 0.999
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_removed_ids_are_never_returned() -> None:
    vectors = unit_vectors(100)
    index = FaissIndex(128, IndexConfig())
    index.add(np.arange(100), vectors)
    index.remove(np.array([7]))
    assert len(index) == 99
    assert all(hit.template_id != 7 for hit in index.search(vectors[7], 99))


def clustered(n: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors in clusters, shaped like face templates (several per identity)."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(clusters, seed=seed + 1)
    vectors = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, 128)) / 11
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_index_recalls_the_exact_top_10() -> None:
    gallery = clustered(4000, 400, 1.0, seed=0)
    probes = gallery[:50] + 0.05 * unit_vectors(50, seed=1)
    exact = FaissIndex(128, IndexConfig(approximate_above=10**9))
    approx = FaissIndex(128, IndexConfig(approximate_above=1000, ivf_lists=64, ivf_probe=24))
    for index in (exact, approx):
        index.add(np.arange(4000), gallery)
    assert approx.is_approximate and not exact.is_approximate
    found = 0
    for probe in probes:
        truth = {h.template_id for h in exact.search(probe, 10)}
        found += len(truth & {h.template_id for h in approx.search(probe, 10)})
    assert found / (10 * len(probes)) >= 0.95
    # Re-ranking makes the scores exact ones.
    top = approx.search(probes[0], 1)[0]
    assert abs(top.score - float(gallery[top.template_id] @ probes[0])) < 1e-5


def test_registry_rebuilds_when_another_writer_moved_the_revision() -> None:
    vectors = unit_vectors(3)
    registry = IndexRegistry(IndexConfig())
    calls = []

    def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        calls.append(1)
        return np.array([1, 2]), np.array([10, 20]), vectors[:2]

    registry.sync(1, "m", 128, revision=5, load=load)
    registry.sync(1, "m", 128, revision=5, load=load)
    assert len(calls) == 1
    assert registry.apply_added(1, "m", 6, [(3, 30, vectors[2])])
    assert registry.subject_count(1, "m") == 3
    # A change this process did not see (revision jumps): the entry is dropped, then rebuilt.
    assert not registry.apply_added(1, "m", 8, [(4, 40, vectors[2])])
    registry.sync(1, "m", 128, revision=8, load=load)
    assert len(calls) == 2


def test_registry_returns_each_subject_once_with_its_best_hit() -> None:
    vectors = unit_vectors(6)
    registry = IndexRegistry(IndexConfig())
    subjects = np.array([1, 1, 1, 2, 3, 4])
    registry.sync(1, "m", 128, 1, lambda: (np.arange(6), subjects, vectors))
    found = registry.search_subjects(1, "m", vectors[1], 3)
    assert found[0][0] == 1
    assert len({subject for subject, _ in found}) == 3
