"""1:N shortlist indexes. Derived data: always caught up from the store, never the only copy.

Backends load when first built (``create_index``, ``create_backend``), so importing this
package imports no vector engine: ``FaissIndex`` is resolved on first access."""

from typing import TYPE_CHECKING, Any

from biomatch.index.base import Delta, IndexBackend, SearchHit, VectorIndex
from biomatch.index.factory import create_backend, create_index
from biomatch.index.registry import IndexRegistry
from biomatch.index.subjects import search_subjects

if TYPE_CHECKING:
    from biomatch.index.faiss_index import FaissIndex

__all__ = [
    "Delta",
    "FaissIndex",
    "IndexBackend",
    "IndexRegistry",
    "SearchHit",
    "VectorIndex",
    "create_backend",
    "create_index",
    "search_subjects",
]


def __getattr__(name: str) -> Any:
    if name == "FaissIndex":
        from biomatch.index.faiss_index import FaissIndex

        return FaissIndex
    raise AttributeError(name)
