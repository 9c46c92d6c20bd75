"""1:N shortlist indexes. Derived data: always caught up from the store, never the only copy."""

from biomatch.index.base import SearchHit, VectorIndex
from biomatch.index.factory import create_index
from biomatch.index.faiss_index import FaissIndex
from biomatch.index.registry import Delta, IndexRegistry
from biomatch.index.subjects import search_subjects

__all__ = [
    "Delta",
    "FaissIndex",
    "IndexRegistry",
    "SearchHit",
    "VectorIndex",
    "create_index",
    "search_subjects",
]
