"""The core's 1:N indexes, kept in step with the store (one per gallery and model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biomatch.accountability.vault import Vault
from biomatch.config import IndexConfig
from biomatch.index import IndexRegistry, SearchHit
from biomatch.modalities import Modality
from biomatch.store import Database
from biomatch.store import repository as repo


@dataclass(frozen=True)
class IndexedTemplate:
    template_id: int
    subject_id: int
    model_key: str
    vector: np.ndarray


class GalleryIndexes:
    def __init__(self, db: Database, vault: Vault, config: IndexConfig) -> None:
        self._db = db
        self._vault = vault
        self._registry = IndexRegistry(config)

    def catch_up(self, gallery_id: int, revision: int, model_key: str, plugin: Modality) -> None:
        """Bring the index of (gallery, model) to the store's ``revision``."""

        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with self._db.transaction() as session:
                rows = repo.gallery_templates(session, gallery_id, model_key)
                vectors = [
                    plugin.index_vector(
                        self._vault.open(session, gallery_id, data, f"template:{model_key}")
                    )
                    for _, _, data in rows
                ]
            return (
                np.array([row[0] for row in rows], dtype=np.int64),
                np.array([row[1] for row in rows], dtype=np.int64),
                np.stack(vectors) if vectors else np.empty((0, plugin.info.dimensions)),
            )

        self._registry.sync(gallery_id, model_key, plugin.info.dimensions, revision, load)

    def added(self, gallery_id: int, revision: int, rows: list[IndexedTemplate]) -> None:
        """Templates written at ``revision``."""
        for model_key in {row.model_key for row in rows}:
            self._registry.apply_added(
                gallery_id,
                model_key,
                revision,
                [(r.template_id, r.subject_id, r.vector) for r in rows if r.model_key == model_key],
            )

    def removed(self, gallery_id: int, revision: int, rows: list[tuple[int, str]]) -> None:
        """(template id, model key) of templates deleted at ``revision``."""
        for model_key in {key for _, key in rows}:
            ids = [template_id for template_id, key in rows if key == model_key]
            self._registry.apply_removed(gallery_id, model_key, revision, ids)

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]:
        return self._registry.search_subjects(gallery_id, model_key, vector, subjects)

    def subject_count(self, gallery_id: int, model_key: str) -> int:
        return self._registry.subject_count(gallery_id, model_key)
