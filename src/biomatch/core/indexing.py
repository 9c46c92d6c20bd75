"""The core's 1:N indexes, kept in step with the store (one per gallery and model).

Each index is labelled with the gallery revision it reflects. ``catch_up`` brings it to the
revision a search read: a missing index loads in full, an older one applies the change feed
(``store/changes``) since its revision, decrypting only the templates added in the gap, and
one at or beyond the revision is left alone. Only where the feed cannot cover the gap
(pruned, or a write that bypassed it) is the index rebuilt. No lock wider than one
(gallery, model) is held while loading, so other galleries' searches never wait.

The backend (``index.backend``) is FAISS in this process or Milvus, shared by the
deployment. A writer's own change reaches the index after its commit; where that fails (an
external index unreachable, a crash), the change feed still holds it and the next search
of any process replays it: the feed is the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from biomatch.accountability.vault import Vault
from biomatch.config import IndexConfig
from biomatch.index import Delta, SearchHit, create_backend
from biomatch.modalities import Modality
from biomatch.store import Database
from biomatch.store import repository as repo
from biomatch.store.changes import ADD, REMOVE, changes_since, templates_by_id

log = logging.getLogger("biomatch.index")

# progress(templates done, templates in all) while an index loads in full.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IndexedTemplate:
    template_id: int
    subject_id: int
    model_key: str
    vector: np.ndarray


@dataclass(frozen=True)
class IndexCheck:
    """How the index of (gallery, model) compares with the store: templates the store holds
    that the index lacks, and ids the index holds that the store no longer does."""

    gallery_id: int
    model_key: str
    store_revision: int
    index_revision: int | None
    templates: int
    missing: list[int]
    orphaned: list[int]

    @property
    def built(self) -> bool:
        """False where no index of (gallery, model) exists yet: it is built in full by its
        first search, or by ``index rebuild``; nothing is out of step."""
        return self.index_revision is not None

    @property
    def in_step(self) -> bool:
        return self.built and not self.missing and not self.orphaned


class GalleryIndexes:
    def __init__(self, db: Database, vault: Vault, config: IndexConfig) -> None:
        self._db = db
        self._vault = vault
        self._registry = create_backend(config, db.exclusive)

    def catch_up(
        self,
        gallery_id: int,
        revision: int,
        model_key: str,
        plugin: Modality,
        progress: Progress | None = None,
    ) -> str:
        """Bring the index of (gallery, model) to at least the store's ``revision``; returns
        what it took: ``"current"``, ``"caught_up"`` (change feed) or ``"loaded"`` (full)."""
        context = f"template:{model_key}"

        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # Read after ``revision`` was: the data is at least that new, and the feed
            # replays idempotently over anything newer.
            with self._db.transaction() as session:
                rows = repo.gallery_templates(session, gallery_id, model_key)
                vectors = []
                for done, (_, _, data) in enumerate(rows, 1):
                    opened = self._vault.open(session, gallery_id, data, context)
                    vectors.append(plugin.index_vector(opened))
                    if progress is not None and (done % 1000 == 0 or done == len(rows)):
                        progress(done, len(rows))
            return (
                np.array([row[0] for row in rows], dtype=np.int64),
                np.array([row[1] for row in rows], dtype=np.int64),
                np.stack(vectors) if vectors else np.empty((0, plugin.info.dimensions)),
            )

        def changes(since: int) -> Delta | None:
            with self._db.transaction() as session:
                feed = changes_since(session, gallery_id, since, model_key)
                if not feed.complete:
                    return None
                removed = sorted({c.template_id for c in feed.changes if c.op == REMOVE})
                last: dict[int, str] = {}
                for change in feed.changes:
                    last[change.template_id] = change.op
                wanted = [t for t, op in last.items() if op == ADD]
                # A template removed after the feed was read is gone: its removal comes
                # with the next catch-up.
                added = [
                    (t, s, plugin.index_vector(self._vault.open(session, gallery_id, d, context)))
                    for t, s, d in templates_by_id(session, gallery_id, model_key, wanted)
                ]
            return Delta(feed.revision, added, removed)

        return self._registry.sync(
            gallery_id, model_key, plugin.info.dimensions, revision, load, changes
        )

    def added(self, gallery_id: int, revision: int, rows: list[IndexedTemplate]) -> None:
        """Templates this process wrote at ``revision``: applied in place where the index is
        in step, otherwise left to the next ``catch_up``."""
        for model_key in {row.model_key for row in rows}:
            additions = [
                (r.template_id, r.subject_id, r.vector) for r in rows if r.model_key == model_key
            ]
            self._in_step(
                partial(self._registry.apply_added, gallery_id, model_key, revision, additions)
            )

    def removed(self, gallery_id: int, revision: int, rows: list[tuple[int, str]]) -> None:
        """(template id, model key) of templates this process deleted at ``revision``."""
        for model_key in {key for _, key in rows}:
            ids = [template_id for template_id, key in rows if key == model_key]
            self._in_step(
                partial(self._registry.apply_removed, gallery_id, model_key, revision, ids)
            )

    def rebuild(
        self, gallery_id: int, revision: int, model_key: str, plugin: Modality, progress: Progress
    ) -> None:
        """Build the index of (gallery, model) anew from the store."""
        self._registry.reset(gallery_id, model_key)
        self.catch_up(gallery_id, revision, model_key, plugin, progress)

    @property
    def shared(self) -> bool:
        """Whether the indexes are the deployment's (Milvus), not this process's own."""
        return self._registry.shared

    def check(self, gallery_id: int, revision: int, model_key: str) -> IndexCheck:
        """Compare the index as it stands (nothing caught up here) with the store."""
        index_revision = self._registry.revision(gallery_id, model_key)
        indexed = self._registry.template_ids(gallery_id, model_key)
        with self._db.transaction() as session:
            stored = set(repo.gallery_template_ids(session, gallery_id, model_key))
        if index_revision is None or indexed is None:
            return IndexCheck(gallery_id, model_key, revision, None, len(stored), [], [])
        return IndexCheck(
            gallery_id,
            model_key,
            revision,
            index_revision,
            len(stored),
            sorted(stored - indexed),
            sorted(indexed - stored),
        )

    def _in_step(self, apply: Callable[[], bool]) -> None:
        """The writer's own change, after its commit; where it cannot be applied now, the
        change feed holds it for the next catch-up (of this process or another)."""
        try:
            apply()
        except Exception:
            log.exception("index update deferred to the next catch-up")

    def forget(self, gallery_id: int) -> None:
        """Drop this process's indexes of the gallery (deleted, or to reload from the store)."""
        self._registry.drop_gallery(gallery_id)

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]:
        return self._registry.search_subjects(gallery_id, model_key, vector, subjects)

    def subject_count(self, gallery_id: int, model_key: str) -> int:
        return self._registry.subject_count(gallery_id, model_key)

    def revision(self, gallery_id: int, model_key: str) -> int | None:
        """The revision the index of (gallery, model) reflects; None where none is loaded."""
        return self._registry.revision(gallery_id, model_key)
