"""1:N shortlist indexes. Derived data: always rebuilt from the store, never the only copy."""

from biomatch.index.base import SearchHit, VectorIndex
from biomatch.index.faiss_index import FaissIndex
from biomatch.index.registry import IndexRegistry

__all__ = ["FaissIndex", "IndexRegistry", "SearchHit", "VectorIndex"]
