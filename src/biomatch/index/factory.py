"""Builds the configured 1:N index backend; the core only sees ``VectorIndex``."""

from __future__ import annotations

from biomatch.config import IndexConfig
from biomatch.index.base import VectorIndex


def create_index(dimensions: int, config: IndexConfig) -> VectorIndex:
    """A new, empty index of the backend named by ``config.backend``."""
    if config.backend == "faiss":
        from biomatch.index.faiss_index import FaissIndex

        return FaissIndex(dimensions, config)
    raise ValueError(f"Unknown index backend {config.backend!r}.")
