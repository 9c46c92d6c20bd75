"""The interface a 1:N index implements (FAISS in-process now; a distributed engine later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SearchHit:
    template_id: int
    score: float


class VectorIndex(Protocol):
    """Inner-product search over unit vectors keyed by template id."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> list[SearchHit]: ...

    def __len__(self) -> int: ...
