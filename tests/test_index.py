import threading

import numpy as np
import pytest

from biomatch.config import IndexConfig
from biomatch.index import Delta, FaissIndex, IndexRegistry, SearchHit, search_subjects


def unit_vectors(n: int, d: int = 128, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


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
    unit: np.ndarray = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return unit


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


def test_registry_best_hit_is_the_subjects_best_template() -> None:
    vectors = unit_vectors(6)
    registry = IndexRegistry(IndexConfig())
    subjects = np.array([1, 1, 1, 2, 3, 4])
    registry.sync(1, "m", 128, 1, lambda: (np.arange(6), subjects, vectors))
    found = registry.search_subjects(1, "m", vectors[1], 3)
    # Subject 1 has three templates; the one kept is the probe's own (score 1), not the
    # first of its templates nor a worse one.
    assert found[0][1].template_id == 1
    assert found[0][1].score > 0.999
    for subject, hit in found:
        own = [t for t in range(6) if subjects[t] == subject]
        assert hit.score == pytest.approx(
            max(float(vectors[t] @ vectors[1]) for t in own), abs=1e-5
        )
    assert [hit.score for _, hit in found] == sorted((h.score for _, h in found), reverse=True)


class CountingIndex:
    """A VectorIndex that records the k of every search."""

    def __init__(self, inner: FaissIndex) -> None:
        self.inner = inner
        self.searches: list[int] = []

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.inner.add(ids, vectors)

    def remove(self, ids: np.ndarray) -> None:
        self.inner.remove(ids)

    def search(self, vector: np.ndarray, k: int) -> list[SearchHit]:
        self.searches.append(k)
        return self.inner.search(vector, k)

    def __len__(self) -> int:
        return len(self.inner)


def test_search_subjects_widens_past_a_subject_with_many_templates() -> None:
    # Subject 7 has 40 templates all close to the probe; three others have one each, further
    # away. The first search (k=3) sees only subject 7: the loop must widen to find the rest.
    rng = np.random.default_rng(3)
    probe = unit_vectors(1, seed=9)[0]
    near = probe + 0.02 * rng.normal(size=(40, 128)).astype(np.float32)
    far = unit_vectors(3, seed=11) + 1.0 * probe
    vectors = np.vstack([near, far])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(100, 143)
    subject_of = {int(t): (7 if t < 140 else int(t) - 139) for t in ids}
    index = CountingIndex(FaissIndex(128, IndexConfig()))
    index.add(ids, vectors)

    found = search_subjects(index, subject_of, probe, 3)

    assert len(index.searches) >= 2, "the widening loop was not reached"
    assert index.searches[0] == 3 and index.searches[1] == 12
    assert found[0][0] == 7
    assert len({subject for subject, _ in found}) == 3
    scores = vectors @ probe
    for subject, hit in found:
        own = [i for i, t in enumerate(ids) if subject_of[int(t)] == subject]
        best = own[int(np.argmax(scores[own]))]
        assert hit.template_id == int(ids[best])
        assert hit.score == pytest.approx(float(scores[best]), abs=1e-5)
    # Asking for more subjects than exist stops at the whole index.
    everyone = search_subjects(index, subject_of, probe, 10)
    assert len(everyone) == 4 and index.searches[-1] >= len(index)


def test_stale_revision_never_rebuilds_a_newer_index() -> None:
    vectors = unit_vectors(3)
    registry = IndexRegistry(IndexConfig())
    calls = []

    def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        calls.append(1)
        return np.array([1, 2]), np.array([10, 20]), vectors[:2]

    assert registry.sync(1, "m", 128, revision=5, load=load) == "loaded"
    # A request that read the gallery before the last write arrives with an older revision.
    assert registry.sync(1, "m", 128, revision=3, load=load) == "current"
    assert registry.sync(1, "m", 128, revision=5, load=load) == "current"
    assert len(calls) == 1
    assert registry.revision(1, "m") == 5
    # A writer's own change that arrives after a catch-up already applied it is not re-applied.
    assert registry.apply_added(1, "m", 6, [(3, 30, vectors[2])])
    assert not registry.apply_added(1, "m", 6, [(3, 30, vectors[2])])
    assert not registry.apply_added(1, "m", 4, [(3, 30, vectors[2])])
    assert registry.subject_count(1, "m") == 3
    assert len(calls) == 1


def test_registry_catches_up_from_changes_instead_of_reloading() -> None:
    vectors = unit_vectors(5)
    registry = IndexRegistry(IndexConfig())
    loads: list[int] = []
    asked: list[int] = []

    def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        loads.append(1)
        return np.array([1, 2]), np.array([10, 20]), vectors[:2]

    def changes(since: int) -> Delta | None:
        asked.append(since)
        if since < 2:
            return None  # the feed no longer covers it
        # Template 2 removed, 3 and 4 added (4 for an existing subject); 1 replayed (no-op).
        return Delta(
            9, added=[(1, 10, vectors[0]), (3, 30, vectors[3]), (4, 10, vectors[4])], removed=[2]
        )

    registry.sync(1, "m", 128, 2, load, changes)
    assert registry.sync(1, "m", 128, 9, load, changes) == "caught_up"
    assert asked == [2] and len(loads) == 1
    assert registry.revision(1, "m") == 9
    assert registry.subject_count(1, "m") == 2  # subjects 10 and 30
    found = dict(registry.search_subjects(1, "m", vectors[4], 5))
    assert found[10].template_id == 4 and 20 not in found
    # Nothing duplicated by the replayed add of template 1.
    assert found[10].score > 0.999
    assert len(registry.search_subjects(1, "m", vectors[0], 5)) == 2

    # An index the feed cannot cover is rebuilt.
    other = IndexRegistry(IndexConfig())
    other.sync(1, "m", 128, 1, load, changes)
    assert other.sync(1, "m", 128, 9, load, changes) == "loaded"
    assert len(loads) == 3


def test_loading_one_gallery_does_not_block_searches_of_another() -> None:
    vectors = unit_vectors(4)
    registry = IndexRegistry(IndexConfig())
    registry.sync(2, "m", 128, 1, lambda: (np.arange(4), np.arange(4), vectors))
    started, release = threading.Event(), threading.Event()

    def slow_load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        started.set()
        assert release.wait(10)
        return np.arange(4), np.arange(4), vectors

    loader = threading.Thread(target=registry.sync, args=(1, "m", 128, 1, slow_load))
    loader.start()
    try:
        assert started.wait(10)
        # Gallery 1 is loading (and holds its own lock); gallery 2 answers meanwhile.
        done = threading.Event()

        def search_other() -> None:
            registry.search_subjects(2, "m", vectors[0], 1)
            done.set()

        searcher = threading.Thread(target=search_other)
        searcher.start()
        assert done.wait(5), "a search of another gallery waited for a load"
        assert registry.sync(2, "m", 128, 1, slow_load) == "current"
    finally:
        release.set()
        loader.join(10)
    assert registry.subject_count(1, "m") == 4
