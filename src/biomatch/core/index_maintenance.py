"""The 1:N indexes are derived data: rebuilt from the record store, and checked against it.

A shared index (Milvus) is checked as it stands: templates it misses or ids it holds that the
store no longer does are drift. An in-process index (FAISS) lives in each service process;
here it is the one this process builds from the store and its change feed, so a check shows
that the feed reproduces the store."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from biomatch.core.indexing import IndexCheck, Progress
from biomatch.core.state import CoreState, GalleryRef, gallery_ref_of
from biomatch.store import Gallery
from biomatch.store import repository as repo

# progress_for(gallery name, model key) -> the progress callback of that index's load.
ProgressFor = Callable[[str, str], Progress]


class IndexMaintenanceAPI(CoreState):
    def rebuild_index(self, gallery: str | None, progress_for: ProgressFor) -> list[str]:
        """Rebuild the index of every model of the gallery (every gallery where None) from
        the store; returns "gallery/model key" of each index rebuilt."""
        rebuilt = []
        for ref, model_key in self._indexed_models(gallery):
            plugin = self.plugin_for_key(model_key)
            if plugin is None:
                continue  # no installed plug-in computes this model's index vectors
            progress = progress_for(ref.name, model_key)
            self.indexes.rebuild(ref.id, ref.revision, model_key, plugin, progress)
            rebuilt.append(f"{ref.name}/{model_key}")
        return rebuilt

    def check_indexes(self, gallery: str | None = None) -> list[tuple[str, IndexCheck]]:
        """(gallery name, check) of the index of every model of the gallery (or all)."""
        found = []
        for ref, model_key in self._indexed_models(gallery):
            plugin = self.plugin_for_key(model_key)
            if not self.indexes.shared and plugin is not None:
                self._sync_index(ref, model_key, plugin)
            found.append((ref.name, self.indexes.check(ref.id, ref.revision, model_key)))
        return found

    def _indexed_models(self, gallery: str | None) -> list[tuple[GalleryRef, str]]:
        with self.db.transaction() as session:
            if gallery is not None:
                records = [repo.gallery_by_name(session, gallery)]
            else:
                records = list(session.scalars(select(Gallery).order_by(Gallery.name)))
            return [
                (gallery_ref_of(record), key)
                for record in records
                for key in sorted(repo.gallery_model_keys(session, record.id))
            ]
