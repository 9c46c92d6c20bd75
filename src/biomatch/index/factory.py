"""Builds the configured 1:N index backend; the core only sees ``IndexBackend`` (every index
of a backend) and ``VectorIndex`` (one in-process index)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from biomatch.config import IndexConfig
from biomatch.index.base import IndexBackend, VectorIndex

# exclusive(name): a critical section one process of the deployment runs at a time.
Exclusive = Callable[[str], AbstractContextManager[None]]


def create_index(dimensions: int, config: IndexConfig) -> VectorIndex:
    """A new, empty in-process index (FAISS)."""
    from biomatch.index.faiss_index import FaissIndex

    return FaissIndex(dimensions, config)


def create_backend(config: IndexConfig, exclusive: Exclusive) -> IndexBackend:
    """The indexes of the backend named by ``config.backend``: FAISS in this process, or
    Milvus, shared by the deployment (``exclusive`` orders its writers)."""
    if config.backend == "faiss":
        from biomatch.index.registry import IndexRegistry

        return IndexRegistry(config)
    if config.backend == "milvus":
        from biomatch.index.milvus_index import MilvusRegistry

        return MilvusRegistry(config, exclusive)
    raise ValueError(f"Unknown index backend {config.backend!r}.")
