"""One in-memory index per (gallery, model), kept in step with the store's revision."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from biomatch.config import IndexConfig
from biomatch.index.base import SearchHit, VectorIndex
from biomatch.index.factory import create_index
from biomatch.index.subjects import search_subjects

# Loads (template ids, subject ids, vectors) of one gallery and model from the store.
Loader = Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class _GalleryIndex:
    index: VectorIndex
    revision: int
    subject_of: dict[int, int] = field(default_factory=dict)
    templates_per_subject: Counter[int] = field(default_factory=Counter)

    def track(self, template_id: int, subject_id: int) -> None:
        self.subject_of[template_id] = subject_id
        self.templates_per_subject[subject_id] += 1

    def forget(self, template_id: int) -> None:
        subject_id = self.subject_of.pop(template_id, None)
        if subject_id is not None:
            self.templates_per_subject[subject_id] -= 1
            if self.templates_per_subject[subject_id] <= 0:
                del self.templates_per_subject[subject_id]


class IndexRegistry:
    def __init__(self, config: IndexConfig) -> None:
        self._config = config
        self._indexes: dict[tuple[int, str], _GalleryIndex] = {}
        self._lock = threading.RLock()

    def sync(
        self, gallery_id: int, model_key: str, dimensions: int, revision: int, load: Loader
    ) -> None:
        """Rebuild the index from the store unless it is already at ``revision``."""
        with self._lock:
            current = self._indexes.get((gallery_id, model_key))
            if current is not None and current.revision == revision:
                return
            template_ids, subject_ids, vectors = load()
            index = create_index(dimensions, self._config)
            if len(template_ids):
                index.add(template_ids, vectors)
            entry = _GalleryIndex(index, revision)
            for template_id, subject_id in zip(
                template_ids.tolist(), subject_ids.tolist(), strict=True
            ):
                entry.track(template_id, subject_id)
            self._indexes[(gallery_id, model_key)] = entry

    def apply_added(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        additions: list[tuple[int, int, np.ndarray]],
    ) -> bool:
        """Add (template id, subject id, vector) rows made at ``revision``; False if the
        index is missing or was not at ``revision - 1`` (then the next ``sync`` rebuilds)."""
        with self._lock:
            entry = self._in_step(gallery_id, model_key, revision)
            if entry is None:
                return False
            entry.index.add(
                np.array([row[0] for row in additions]), np.stack([row[2] for row in additions])
            )
            for template_id, subject_id, _ in additions:
                entry.track(template_id, subject_id)
            entry.revision = revision
            return True

    def apply_removed(
        self, gallery_id: int, model_key: str, revision: int, template_ids: list[int]
    ) -> bool:
        with self._lock:
            entry = self._in_step(gallery_id, model_key, revision)
            if entry is None:
                return False
            entry.index.remove(np.array(template_ids, dtype=np.int64))
            for template_id in template_ids:
                entry.forget(template_id)
            entry.revision = revision
            return True

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]:
        """Best hit of each of the top ``subjects`` subjects, as (subject id, hit)."""
        with self._lock:
            entry = self._indexes.get((gallery_id, model_key))
            if entry is None:
                return []
            return search_subjects(entry.index, entry.subject_of, vector, subjects)

    def subject_count(self, gallery_id: int, model_key: str) -> int:
        with self._lock:
            entry = self._indexes.get((gallery_id, model_key))
            return 0 if entry is None else len(entry.templates_per_subject)

    def drop_gallery(self, gallery_id: int) -> None:
        with self._lock:
            for key in [key for key in self._indexes if key[0] == gallery_id]:
                del self._indexes[key]

    def _in_step(self, gallery_id: int, model_key: str, revision: int) -> _GalleryIndex | None:
        entry = self._indexes.get((gallery_id, model_key))
        if entry is None or entry.revision != revision - 1:
            self._indexes.pop((gallery_id, model_key), None)
            return None
        return entry
