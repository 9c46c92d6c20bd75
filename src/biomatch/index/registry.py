"""In-memory indexes, one per (gallery, model), each labelled with the store revision it
reflects.

Locking: the registry-wide lock only guards the table of slots (a dict lookup). Each slot
has a build lock (one catch-up, load or in-place write at a time for that gallery and
model) and an entry lock (held while the index is searched or mutated). A full load builds
the new index under the build lock alone, so searches of other galleries never wait for it,
and searches of the same gallery only wait for the swap.

Revisions only move forward: ``sync`` does nothing when the index is at or beyond the
revision asked for (a stale read never rebuilds a newer index); an older index applies what
changed since its revision where a ``changes`` source can say, and is rebuilt only when the
source cannot cover the gap. Additions and removals are idempotent (an added id already
present is skipped, a removed id absent is ignored), so a snapshot that is newer than its
label and a replayed change never leave duplicates behind.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from biomatch.config import IndexConfig
from biomatch.index.base import (
    CAUGHT_UP,
    CURRENT,
    LOADED,
    ChangeSource,
    Loader,
    SearchHit,
    VectorIndex,
)
from biomatch.index.factory import create_index
from biomatch.index.subjects import search_subjects


@dataclass
class _GalleryIndex:
    index: VectorIndex
    revision: int
    subject_of: dict[int, int] = field(default_factory=dict)
    templates_per_subject: Counter[int] = field(default_factory=Counter)

    def add(self, rows: Sequence[tuple[int, int, np.ndarray]]) -> None:
        fresh: dict[int, tuple[int, np.ndarray]] = {}
        for template_id, subject_id, vector in rows:
            if template_id not in self.subject_of:
                fresh[template_id] = (subject_id, vector)
        if not fresh:
            return
        self.index.add(
            np.fromiter(fresh, dtype=np.int64, count=len(fresh)),
            np.stack([vector for _, vector in fresh.values()]),
        )
        for template_id, (subject_id, _) in fresh.items():
            self.subject_of[template_id] = subject_id
            self.templates_per_subject[subject_id] += 1

    def remove(self, template_ids: Sequence[int]) -> None:
        present = sorted({t for t in template_ids if t in self.subject_of})
        if not present:
            return
        self.index.remove(np.array(present, dtype=np.int64))
        for template_id in present:
            subject_id = self.subject_of.pop(template_id)
            self.templates_per_subject[subject_id] -= 1
            if self.templates_per_subject[subject_id] <= 0:
                del self.templates_per_subject[subject_id]


@dataclass
class _Slot:
    build: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.Lock = field(default_factory=threading.Lock)
    entry: _GalleryIndex | None = None


class IndexRegistry:
    shared = False  # each process holds its own indexes

    def __init__(self, config: IndexConfig) -> None:
        self._config = config
        self._slots: dict[tuple[int, str], _Slot] = {}
        self._lock = threading.Lock()

    def sync(
        self,
        gallery_id: int,
        model_key: str,
        dimensions: int,
        revision: int,
        load: Loader,
        changes: ChangeSource | None = None,
    ) -> str:
        """Bring the index to at least ``revision``: nothing if it is there already
        (``"current"``), the changes since its revision where ``changes`` covers them
        (``"caught_up"``), else a full load (``"loaded"``)."""
        slot = self._slot(gallery_id, model_key)
        if _at_least(slot.entry, revision):
            return CURRENT
        with slot.build:
            entry = slot.entry
            if _at_least(entry, revision):
                return CURRENT
            if entry is not None and changes is not None:
                delta = changes(entry.revision)
                if delta is not None:
                    with slot.lock:
                        entry.remove(delta.removed)
                        entry.add(delta.added)
                        entry.revision = max(entry.revision, delta.revision, revision)
                    return CAUGHT_UP
            template_ids, subject_ids, vectors = load()
            fresh = _GalleryIndex(create_index(dimensions, self._config), revision)
            fresh.add(list(zip(template_ids.tolist(), subject_ids.tolist(), vectors, strict=True)))
            with slot.lock:
                slot.entry = fresh
            return LOADED

    def apply_added(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        additions: list[tuple[int, int, np.ndarray]],
    ) -> bool:
        """Add (template id, subject id, vector) rows this process wrote at ``revision``,
        where the index is at ``revision - 1``. False otherwise (missing, behind: the next
        ``sync`` catches up; already there: nothing to do) or while the index is being
        caught up by another thread (which the next ``sync`` completes)."""
        return self._apply_in_step(
            gallery_id, model_key, revision, lambda entry: entry.add(additions)
        )

    def apply_removed(
        self, gallery_id: int, model_key: str, revision: int, template_ids: list[int]
    ) -> bool:
        return self._apply_in_step(
            gallery_id, model_key, revision, lambda entry: entry.remove(template_ids)
        )

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]:
        """Best hit of each of the top ``subjects`` subjects, as (subject id, hit)."""
        slot = self._existing(gallery_id, model_key)
        if slot is None:
            return []
        with slot.lock:
            entry = slot.entry
            if entry is None:
                return []
            return search_subjects(entry.index, entry.subject_of, vector, subjects)

    def subject_count(self, gallery_id: int, model_key: str) -> int:
        slot = self._existing(gallery_id, model_key)
        if slot is None:
            return 0
        with slot.lock:
            return 0 if slot.entry is None else len(slot.entry.templates_per_subject)

    def revision(self, gallery_id: int, model_key: str) -> int | None:
        """The store revision the index reflects; None where there is no index."""
        slot = self._existing(gallery_id, model_key)
        entry = None if slot is None else slot.entry
        return None if entry is None else entry.revision

    def template_ids(self, gallery_id: int, model_key: str) -> set[int] | None:
        slot = self._existing(gallery_id, model_key)
        if slot is None:
            return None
        with slot.lock:
            return None if slot.entry is None else set(slot.entry.subject_of)

    def reset(self, gallery_id: int, model_key: str) -> None:
        with self._lock:
            self._slots.pop((gallery_id, model_key), None)

    def drop_gallery(self, gallery_id: int) -> None:
        with self._lock:
            for key in [key for key in self._slots if key[0] == gallery_id]:
                del self._slots[key]

    def _apply_in_step(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        change: Callable[[_GalleryIndex], None],
    ) -> bool:
        slot = self._existing(gallery_id, model_key)
        if slot is None or not slot.build.acquire(blocking=False):
            return False
        try:
            entry = slot.entry
            if entry is None or entry.revision != revision - 1:
                return False
            with slot.lock:
                change(entry)
                entry.revision = revision
            return True
        finally:
            slot.build.release()

    def _slot(self, gallery_id: int, model_key: str) -> _Slot:
        with self._lock:
            return self._slots.setdefault((gallery_id, model_key), _Slot())

    def _existing(self, gallery_id: int, model_key: str) -> _Slot | None:
        with self._lock:
            return self._slots.get((gallery_id, model_key))


def _at_least(entry: _GalleryIndex | None, revision: int) -> bool:
    return entry is not None and entry.revision >= revision
