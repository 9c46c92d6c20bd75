"""FAISS index: exact inner product, and above a size an IVF shortlist (SQ8 or PQ codes)
re-ranked with a stored copy of the vectors (float32, or float16 to halve the memory)."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from biomatch.config import IndexConfig
from biomatch.index.base import SearchHit

# Vectors k-means trains the coarse cells on, per cell (FAISS warns below 39).
TRAINING_PER_LIST = 64


class FaissIndex:
    def __init__(self, dimensions: int, config: IndexConfig) -> None:
        self._dimensions = dimensions
        self._config = config
        # Exact mode searches the store; approximate mode re-ranks the shortlist with it.
        self._store: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
        self._approximate: Any = None
        self._quantiser: Any = None
        self._half_store = False

    def __len__(self) -> int:
        return int(self._store.ntotal)

    @property
    def is_approximate(self) -> bool:
        return self._approximate is not None

    def set_probe(self, cells: int) -> None:
        """Cells the approximate index visits per search (recall against latency)."""
        self._config = self._config.model_copy(update={"ivf_probe": cells})
        if self._approximate is not None:
            self._approximate.nprobe = cells

    def memory_bytes(self) -> int:
        """Bytes of vector codes held (store + shortlist codes), without FAISS overheads."""
        per_vector = self._dimensions * (2 if self._half_store else 4)
        if self._approximate is not None:
            per_vector += self._code_size() + 8  # codes and the id in the inverted list
        return len(self) * (per_vector + 8)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._as_matrix(vectors)
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        self._store.add_with_ids(vectors, ids)
        if self._approximate is not None:
            self._approximate.add_with_ids(vectors, ids)
        elif len(self) > self._config.approximate_above:
            self._build_approximate()

    def remove(self, ids: np.ndarray) -> None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        self._store.remove_ids(selector)
        if self._approximate is not None:
            self._approximate.remove_ids(selector)

    def search(self, vector: np.ndarray, k: int) -> list[SearchHit]:
        k = min(k, len(self))
        if k <= 0:
            return []
        query = self._as_matrix(vector)
        if self._approximate is None:
            scores, ids = self._store.search(query, k)
            return _hits(ids[0], scores[0])
        return self._search_reranked(query, k)

    def _search_reranked(self, query: np.ndarray, k: int) -> list[SearchHit]:
        shortlist = min(len(self), k * self._config.rerank_factor)
        _, ids = self._approximate.search(query, shortlist)
        candidates = ids[0][ids[0] >= 0]
        stored = self._store.reconstruct_batch(candidates)
        scores = stored @ query[0]
        order = np.argsort(-scores)[:k]
        return _hits(candidates[order], scores[order])

    def _build_approximate(self) -> None:
        count = len(self)
        ids = faiss.vector_to_array(self._store.id_map).astype(np.int64)
        vectors = self._store.index.reconstruct_n(0, count)
        lists = max(1, min(self._config.ivf_lists, count // 39))
        index = self._new_ivf(lists)
        training = vectors
        if count > TRAINING_PER_LIST * lists:
            rng = np.random.default_rng(0)
            training = vectors[np.sort(rng.choice(count, TRAINING_PER_LIST * lists, False))]
        index.train(training)
        index.nprobe = min(self._config.ivf_probe, lists)
        index.add_with_ids(vectors, ids)
        self._approximate = index
        if self._config.rerank_precision == "float16":
            half = faiss.IndexScalarQuantizer(
                self._dimensions, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            store = faiss.IndexIDMap2(half)
            store.add_with_ids(vectors, ids)
            self._store, self._half_store = store, True

    def _new_ivf(self, lists: int) -> Any:
        # The IVF index does not own its quantiser: keep the Python object alive with it.
        self._quantiser = quantiser = faiss.IndexFlatIP(self._dimensions)
        index: Any
        if self._config.shortlist_codes == "PQ":
            index = faiss.IndexIVFPQ(
                quantiser, self._dimensions, lists, self._config.pq_bytes, 8,
                faiss.METRIC_INNER_PRODUCT,
            )  # fmt: skip
        else:
            index = faiss.IndexIVFScalarQuantizer(
                quantiser, self._dimensions, lists, faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT,
            )  # fmt: skip
        return index

    def _code_size(self) -> int:
        return int(self._approximate.code_size) if self._approximate is not None else 0

    def _as_matrix(self, vectors: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if matrix.shape[1] != self._dimensions:
            raise ValueError(f"expected {self._dimensions}-d vectors, got {matrix.shape[1]}-d")
        return matrix


def _hits(ids: np.ndarray, scores: np.ndarray) -> list[SearchHit]:
    return [SearchHit(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]
