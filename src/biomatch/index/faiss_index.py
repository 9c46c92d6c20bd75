"""FAISS index: exact inner product, and above a size an IVF-SQ8 shortlist re-ranked exactly."""

from __future__ import annotations

import faiss
import numpy as np

from biomatch.config import IndexConfig
from biomatch.index.base import SearchHit


class FaissIndex:
    def __init__(self, dimensions: int, config: IndexConfig) -> None:
        self._dimensions = dimensions
        self._config = config
        self._exact = faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
        self._approximate: faiss.IndexIVFScalarQuantizer | None = None

    def __len__(self) -> int:
        return int(self._exact.ntotal)

    @property
    def is_approximate(self) -> bool:
        return self._approximate is not None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._as_matrix(vectors)
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        self._exact.add_with_ids(vectors, ids)
        if self._approximate is not None:
            self._approximate.add_with_ids(vectors, ids)
        elif len(self) > self._config.approximate_above:
            self._build_approximate()

    def remove(self, ids: np.ndarray) -> None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        self._exact.remove_ids(selector)
        if self._approximate is not None:
            self._approximate.remove_ids(selector)

    def search(self, vector: np.ndarray, k: int) -> list[SearchHit]:
        k = min(k, len(self))
        if k <= 0:
            return []
        query = self._as_matrix(vector)
        if self._approximate is None:
            scores, ids = self._exact.search(query, k)
            return _hits(ids[0], scores[0])
        return self._search_reranked(query, k)

    def _search_reranked(self, query: np.ndarray, k: int) -> list[SearchHit]:
        assert self._approximate is not None
        shortlist = min(len(self), k * self._config.rerank_factor)
        _, ids = self._approximate.search(query, shortlist)
        candidates = ids[0][ids[0] >= 0]
        exact = np.stack([self._exact.reconstruct(int(i)) for i in candidates])
        scores = exact @ query[0]
        order = np.argsort(-scores)[:k]
        return _hits(candidates[order], scores[order])

    def _build_approximate(self) -> None:
        count = len(self)
        ids = faiss.vector_to_array(self._exact.id_map).astype(np.int64)
        vectors = self._exact.index.reconstruct_n(0, count)
        lists = max(1, min(self._config.ivf_lists, count // 39))
        quantiser = faiss.IndexFlatIP(self._dimensions)
        index = faiss.IndexIVFScalarQuantizer(
            quantiser,
            self._dimensions,
            lists,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.train(vectors)
        index.nprobe = min(self._config.ivf_probe, lists)
        index.add_with_ids(vectors, ids)
        self._approximate = index

    def _as_matrix(self, vectors: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if matrix.shape[1] != self._dimensions:
            raise ValueError(f"expected {self._dimensions}-d vectors, got {matrix.shape[1]}-d")
        return matrix


def _hits(ids: np.ndarray, scores: np.ndarray) -> list[SearchHit]:
    return [SearchHit(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]
