"""1:N shortlist indexes. Derived data: always caught up from the store, never the only copy.

Backends load when first built (``create_index``), so importing this package imports no
vector engine: ``FaissIndex`` is resolved on first access."""

from typing import TYPE_CHECKING, Any

from biomatch.index.base import SearchHit, VectorIndex
from biomatch.index.factory import create_index
from biomatch.index.registry import Delta, IndexRegistry
from biomatch.index.subjects import search_subjects

if TYPE_CHECKING:
    from biomatch.index.faiss_index import FaissIndex

__all__ = [
    "Delta",
    "FaissIndex",
    "IndexRegistry",
    "SearchHit",
    "VectorIndex",
    "create_index",
    "search_subjects",
]


def __getattr__(name: str) -> Any:
    if name == "FaissIndex":
        from biomatch.index.faiss_index import FaissIndex

        return FaissIndex
    raise AttributeError(name)
