"""1:N indexes in Milvus, shared by every process of a deployment (pymilvus; Milvus Lite, the
embedded build, where ``milvus_uri`` is a file path).

One collection per (gallery, model). A collection holds what search needs and nothing more:
the template id (primary key), the subject's internal id (search returns the best template of
each subject) and the index vector. Templates, images and subject names stay encrypted in the
record store.

The collection carries, as a property, the store revision it reflects. The store's change
feed (``store/changes``), written in the same transaction as the records, is the outbox: a
writer applies its change to Milvus after the commit, and the rows always before the
revision label. A crash between the commit and Milvus, or between the rows and the label,
leaves the label older than the store, and the next ``sync`` (any process) replays the feed
since the label; removals and upserts by primary key replay idempotently. Writers of one
collection take turns (``exclusive``, an advisory lock on PostgreSQL), so two processes never
interleave two replays."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from biomatch.config import IndexConfig
from biomatch.errors import IndexUnavailable
from biomatch.index.base import (
    CAUGHT_UP,
    CURRENT,
    LOADED,
    ChangeSource,
    Loader,
    SearchHit,
)
from biomatch.index.factory import Exclusive

REVISION = "biomatch.revision"
MODEL_KEY = "biomatch.model_key"
GALLERY = "biomatch.gallery_id"
BATCH = 5_000  # rows per insert call

# One client per Milvus (URI and token) per process: Milvus Lite lets one process open a file.
_CLIENTS: dict[tuple[str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


class MilvusRegistry:
    shared = True  # one index per (gallery, model) for the whole deployment

    def __init__(self, config: IndexConfig, exclusive: Exclusive) -> None:
        if not config.milvus_uri:
            raise ValueError("index.backend 'milvus' needs index.milvus_uri")
        self._config = config
        self._exclusive = exclusive
        # Revision each collection was last seen at, and collections loaded for search.
        self._seen: dict[str, int] = {}
        self._loaded: set[str] = set()

    def collection(self, gallery_id: int, model_key: str) -> str:
        digest = hashlib.sha256(model_key.encode()).hexdigest()[:16]
        return f"{self._config.milvus_collection_prefix}_g{gallery_id}_{digest}"

    def sync(
        self,
        gallery_id: int,
        model_key: str,
        dimensions: int,
        revision: int,
        load: Loader,
        changes: ChangeSource | None = None,
    ) -> str:
        name = self.collection(gallery_id, model_key)
        if self._seen.get(name, -1) >= revision:
            return CURRENT
        with self._answering(), self._exclusive(f"milvus:{name}"):
            stored = self._stored_revision(name)
            if stored is not None and stored >= revision:
                self._seen[name] = stored
                return CURRENT
            if stored is not None and changes is not None:
                delta = changes(stored)
                if delta is not None:
                    self._write(name, delta.removed, delta.added)
                    if len(delta.added) >= BATCH:
                        self._milvus().flush(name)
                    self._label(name, max(stored, delta.revision, revision))
                    return CAUGHT_UP
            template_ids, subject_ids, vectors = load()
            self._create(name, gallery_id, model_key, dimensions)
            rows = zip(template_ids.tolist(), subject_ids.tolist(), vectors, strict=True)
            self._write(name, (), list(rows))
            # Sealed segments are indexed; searching a large growing one is slow.
            self._milvus().flush(name)
            self._label(name, revision)
            return LOADED

    def apply_added(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        additions: list[tuple[int, int, np.ndarray]],
    ) -> bool:
        return self._apply_in_step(gallery_id, model_key, revision, (), additions)

    def apply_removed(
        self, gallery_id: int, model_key: str, revision: int, template_ids: list[int]
    ) -> bool:
        return self._apply_in_step(gallery_id, model_key, revision, template_ids, ())

    def search_subjects(
        self, gallery_id: int, model_key: str, vector: np.ndarray, subjects: int
    ) -> list[tuple[int, SearchHit]]:
        """Best hit of each of the top ``subjects`` subjects (Milvus groups by subject)."""
        name = self.collection(gallery_id, model_key)
        with self._answering():
            return self._search(name, vector, subjects)

    def _search(self, name: str, vector: np.ndarray, subjects: int) -> list[tuple[int, SearchHit]]:
        if subjects <= 0 or not self._ready(name):
            return []
        found = self._milvus().search(
            name,
            data=[np.asarray(vector, dtype=np.float32).ravel().tolist()],
            limit=subjects,
            group_by_field="subject_id",
            output_fields=["subject_id"],
            search_params={"metric_type": "IP", "params": self._config.milvus_search_params},
            consistency_level="Strong",
        )
        return [
            (
                int(hit["entity"]["subject_id"]),
                SearchHit(int(hit["template_id"]), float(hit["distance"])),
            )
            for hit in found[0]
        ]

    def subject_count(self, gallery_id: int, model_key: str) -> int:
        """Subjects with a template in the index (reads every row: a check, not a hot path)."""
        name = self.collection(gallery_id, model_key)
        if not self._ready(name):
            return 0
        return len({int(row["subject_id"]) for row in self._rows(name, "subject_id")})

    def revision(self, gallery_id: int, model_key: str) -> int | None:
        return self._stored_revision(self.collection(gallery_id, model_key))

    def template_ids(self, gallery_id: int, model_key: str) -> set[int] | None:
        name = self.collection(gallery_id, model_key)
        if not self._ready(name):
            return None
        return {int(row["template_id"]) for row in self._rows(name, "template_id")}

    def reset(self, gallery_id: int, model_key: str) -> None:
        name = self.collection(gallery_id, model_key)
        with self._exclusive(f"milvus:{name}"):
            self._drop(name)

    def drop_gallery(self, gallery_id: int) -> None:
        prefix = f"{self._config.milvus_collection_prefix}_g{gallery_id}_"
        for name in self._milvus().list_collections():
            if name.startswith(prefix):
                with self._exclusive(f"milvus:{name}"):
                    self._drop(name)

    def _apply_in_step(
        self,
        gallery_id: int,
        model_key: str,
        revision: int,
        removed: Sequence[int],
        added: Sequence[tuple[int, int, np.ndarray]],
    ) -> bool:
        """Apply a change this process wrote at ``revision`` where the collection is at
        ``revision - 1``; otherwise the next ``sync`` replays it from the feed."""
        name = self.collection(gallery_id, model_key)
        with self._exclusive(f"milvus:{name}"):
            if self._stored_revision(name) != revision - 1:
                return False
            self._write(name, removed, added)
            self._label(name, revision)
            return True

    def _write(
        self, name: str, removed: Sequence[int], added: Sequence[tuple[int, int, np.ndarray]]
    ) -> None:
        client = self._milvus()
        if removed:
            client.delete(name, ids=[int(t) for t in removed])
        for start in range(0, len(added), BATCH):
            batch = added[start : start + BATCH]
            client.upsert(
                name,
                [
                    {
                        "template_id": int(t),
                        "subject_id": int(s),
                        "vector": np.asarray(v, dtype=np.float32).ravel().tolist(),
                    }
                    for t, s, v in batch
                ],
            )

    def _label(self, name: str, revision: int) -> None:
        """Written after the rows it labels (see the module's docstring)."""
        self._milvus().alter_collection_properties(name, properties={REVISION: str(revision)})
        self._seen[name] = revision

    def _stored_revision(self, name: str) -> int | None:
        client = self._milvus()
        if not client.has_collection(name):
            self._seen.pop(name, None)
            self._loaded.discard(name)
            return None
        value = client.describe_collection(name).get("properties", {}).get(REVISION)
        return int(value) if value is not None else -1

    def _create(self, name: str, gallery_id: int, model_key: str, dimensions: int) -> None:
        from pymilvus import DataType

        client = self._milvus()
        self._drop(name)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("template_id", DataType.INT64, is_primary=True)
        schema.add_field("subject_id", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimensions)
        index = client.prepare_index_params()
        index.add_index(
            "vector",
            index_type=self._config.milvus_index_type,
            metric_type="IP",
            params=self._config.milvus_index_params,
        )
        client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Strong"
        )
        client.alter_collection_properties(
            name, properties={MODEL_KEY: model_key, GALLERY: str(gallery_id)}
        )
        self._loaded.add(name)

    def _drop(self, name: str) -> None:
        client = self._milvus()
        if client.has_collection(name):
            client.drop_collection(name)
        self._seen.pop(name, None)
        self._loaded.discard(name)

    def _ready(self, name: str) -> bool:
        """Whether the collection exists, loaded for search in this process."""
        if name in self._loaded:
            return True
        client = self._milvus()
        if not client.has_collection(name):
            return False
        client.load_collection(name)
        self._loaded.add(name)
        return True

    def _rows(self, name: str, field: str) -> Iterator[dict[str, Any]]:
        iterator = self._milvus().query_iterator(
            name, batch_size=10_000, output_fields=[field], consistency_level="Strong"
        )
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Milvus not answering is a 503 ``index_unavailable``, never a 500."""
        from pymilvus.exceptions import MilvusException

        try:
            yield
        except MilvusException as exc:
            raise IndexUnavailable(
                "The 1:N index (Milvus) did not answer; try again later.",
                reason=str(getattr(exc, "message", exc))[:200],
            ) from exc

    def _milvus(self) -> Any:
        return milvus_client(str(self._config.milvus_uri), self._config.milvus_token or "")


def milvus_client(uri: str, token: str = "") -> Any:
    """This process's client of the Milvus at ``uri`` (opened on first use)."""
    with _CLIENTS_LOCK:
        if (uri, token) not in _CLIENTS:
            from pymilvus import MilvusClient

            _CLIENTS[uri, token] = MilvusClient(uri=uri, token=token)
        return _CLIENTS[uri, token]
