"""The interfaces of 1:N indexes: one vector index (``VectorIndex``), and every index of a
backend (``IndexBackend``: FAISS in each process, or Milvus shared by the deployment)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# Loads (template ids, subject ids, vectors) of one gallery and model from the store.
Loader = Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Delta:
    """What changed after an index's revision, up to ``revision``: template ids removed in
    the gap (applied first) and (template id, subject id, vector) of those present at the end."""

    revision: int
    added: Sequence[tuple[int, int, np.ndarray]] = ()
    removed: Sequence[int] = ()


# changes(since revision) -> Delta, or None when the source cannot cover the gap.
ChangeSource = Callable[[int], Delta | None]

CURRENT, CAUGHT_UP, LOADED = "current", "caught_up", "loaded"


class IndexBackend(Protocol):
    """Every (gallery, model) index of one backend, each labelled with the store revision it
    reflects: in-process (``IndexRegistry``, FAISS) or shared by the deployment's processes
    (``MilvusRegistry``)."""

    # Whether the indexes outlive this process and are shared with the deployment's others.
    shared: bool

    def sync(
        self,
        gallery_id: int,
        model_key: str,
        dimensions: int,
        revision: int,
        load: Loader,
        changes: ChangeSource | None = None,
    ) -> str: ...

    def apply_added(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        additions: list[tuple[int, int, np.ndarray]],
    ) -> bool: ...

    def apply_removed(
        self, gallery_id: int, model_key: str, revision: int, template_ids: list[int]
    ) -> bool: ...

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]: ...

    def subject_count(self, gallery_id: int, model_key: str) -> int: ...

    def revision(self, gallery_id: int, model_key: str) -> int | None: ...

    def template_ids(self, gallery_id: int, model_key: str) -> set[int] | None:
        """Template ids the index holds; None where it has no index of (gallery, model)."""
        ...

    def reset(self, gallery_id: int, model_key: str) -> None:
        """Forget the index of (gallery, model): the next ``sync`` loads it in full."""
        ...

    def drop_gallery(self, gallery_id: int) -> None: ...
