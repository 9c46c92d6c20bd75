"""Two processes' indexes over one store: catching up applies the change feed, decrypting
only what was added since, never rebuilding an index that is already newer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy.orm import Session

from biomatch.accountability.crypto import MasterKey
from biomatch.accountability.vault import Vault
from biomatch.config import IndexConfig
from biomatch.core.indexing import GalleryIndexes, IndexedTemplate
from biomatch.store import Database, Gallery, Sample, Subject, Template
from biomatch.store.changes import changes_since, prune_changes, record_changes
from biomatch.store.models import Base
from tests.test_index import unit_vectors

KEY = "test/vec@1"
DIMENSIONS = 128


class CountingVault:
    """The vault, recording every template it is asked to open."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self.opened: list[bytes] = []

    def open(self, session: Session, gallery_id: int, blob: bytes, context: str) -> bytes:
        self.opened.append(blob)
        return self._vault.open(session, gallery_id, blob, context)


class VectorPlugin:
    """A plug-in whose template is its index vector (float32 bytes)."""

    info = SimpleNamespace(dimensions=DIMENSIONS, key=KEY)

    def index_vector(self, template: bytes) -> np.ndarray:
        return np.frombuffer(template, dtype=np.float32)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Database, Vault, int]]:
    db = Database(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    Base.metadata.create_all(db.engine)
    vault = Vault(MasterKey.generate()[0])
    with db.write_transaction() as session:
        gallery = Gallery(name="g", policy={})
        session.add(gallery)
        session.flush()
        gallery_id = gallery.id
    yield db, vault, gallery_id
    db.dispose()


def enrol(
    db: Database, vault: Vault, gallery_id: int, name: str, vectors: np.ndarray
) -> tuple[int, list[IndexedTemplate], dict[int, bytes]]:
    """What another process's enrolment writes: the subject, its templates (sealed) and the
    change rows, in one transaction."""
    with db.write_transaction() as session:
        subject = Subject(gallery_id=gallery_id, external_id=name)
        session.add(subject)
        session.flush()
        templates = []
        for vector in vectors:
            sample = Sample(
                subject_id=subject.id, modality="test", image_sha256="0" * 64,
                width=1, height=1, quality={},
            )  # fmt: skip
            session.add(sample)
            session.flush()
            data = vault.seal(session, gallery_id, vector.tobytes(), f"template:{KEY}")
            template = Template(
                sample_id=sample.id, subject_id=subject.id, gallery_id=gallery_id,
                model_key=KEY, data=data,
            )  # fmt: skip
            session.add(template)
            session.flush()
            templates.append(template)
        revision = record_changes(
            session, gallery_id, added=[(t.id, subject.id, KEY) for t in templates]
        )
        rows = [
            IndexedTemplate(t.id, subject.id, KEY, v)
            for t, v in zip(templates, vectors, strict=True)
        ]
        return revision, rows, {t.id: t.data for t in templates}


def erase(db: Database, gallery_id: int, name: str) -> tuple[int, list[tuple[int, str]]]:
    with db.write_transaction() as session:
        subject = session.query(Subject).filter_by(gallery_id=gallery_id, external_id=name).one()
        removed = [(t.id, t.model_key) for s in subject.samples for t in s.templates]
        subject_id = subject.id
        session.delete(subject)
        session.flush()
        revision = record_changes(
            session, gallery_id, removed=[(t, subject_id, key) for t, key in removed]
        )
        return revision, removed


def top_subjects(indexes: GalleryIndexes, gallery_id: int, probe: np.ndarray) -> list[int]:
    return [subject for subject, _ in indexes.search_subjects(gallery_id, KEY, probe, 10)]


def test_catch_up_applies_only_what_another_process_wrote(
    store: tuple[Database, Vault, int],
) -> None:
    db, vault, gallery_id = store
    plugin = VectorPlugin()
    vectors = unit_vectors(8, seed=21)
    revision, _, old_blobs = enrol(db, vault, gallery_id, "alice", vectors[:3])
    revision, _, more = enrol(db, vault, gallery_id, "bob", vectors[3:5])
    old_blobs.update(more)

    reader_vault = CountingVault(vault)
    reader = GalleryIndexes(db, reader_vault, IndexConfig())  # type: ignore[arg-type]
    assert reader.catch_up(gallery_id, revision, KEY, plugin) == "loaded"  # type: ignore[arg-type]
    assert sorted(reader_vault.opened) == sorted(old_blobs.values())
    assert reader.subject_count(gallery_id, KEY) == 2

    # Another process (its own GalleryIndexes, over the same database) enrols carol.
    writer = GalleryIndexes(db, Vault(vault.master), IndexConfig())
    new_revision, rows, new_blobs = enrol(db, vault, gallery_id, "carol", vectors[5:7])
    writer.added(gallery_id, new_revision, rows)  # the writer holds no index: nothing to do
    assert writer.revision(gallery_id, KEY) is None

    reader_vault.opened.clear()
    assert reader.catch_up(gallery_id, new_revision, KEY, plugin) == "caught_up"  # type: ignore[arg-type]
    # Only carol's two templates were decrypted: none of the five already indexed.
    assert sorted(reader_vault.opened) == sorted(new_blobs.values())
    assert not set(reader_vault.opened) & set(old_blobs.values())
    assert reader.revision(gallery_id, KEY) == new_revision
    assert reader.subject_count(gallery_id, KEY) == 3
    carol = rows[0].subject_id
    assert top_subjects(reader, gallery_id, vectors[6])[0] == carol

    # An erasure elsewhere: the reader drops the templates and decrypts nothing.
    reader_vault.opened.clear()
    erased_revision, _ = erase(db, gallery_id, "alice")
    assert reader.catch_up(gallery_id, erased_revision, KEY, plugin) == "caught_up"  # type: ignore[arg-type]
    assert reader_vault.opened == []
    assert reader.subject_count(gallery_id, KEY) == 2
    assert len(reader.search_subjects(gallery_id, KEY, vectors[0], 10)) == 2


def test_a_stale_revision_does_not_rebuild_a_newer_index(
    store: tuple[Database, Vault, int],
) -> None:
    db, vault, gallery_id = store
    plugin = VectorPlugin()
    vectors = unit_vectors(4, seed=5)
    first, _, _ = enrol(db, vault, gallery_id, "alice", vectors[:2])
    second, _, _ = enrol(db, vault, gallery_id, "bob", vectors[2:])
    counting = CountingVault(vault)
    indexes = GalleryIndexes(db, counting, IndexConfig())  # type: ignore[arg-type]
    indexes.catch_up(gallery_id, second, KEY, plugin)  # type: ignore[arg-type]
    counting.opened.clear()
    # A request that read the gallery at the first revision, after the index moved on.
    assert indexes.catch_up(gallery_id, first, KEY, plugin) == "current"  # type: ignore[arg-type]
    assert indexes.catch_up(gallery_id, second, KEY, plugin) == "current"  # type: ignore[arg-type]
    assert counting.opened == []
    assert indexes.revision(gallery_id, KEY) == second
    assert indexes.subject_count(gallery_id, KEY) == 2


def test_own_writes_apply_in_place_and_a_gap_is_caught_up(
    store: tuple[Database, Vault, int],
) -> None:
    db, vault, gallery_id = store
    plugin = VectorPlugin()
    vectors = unit_vectors(6, seed=8)
    revision, _, _ = enrol(db, vault, gallery_id, "alice", vectors[:1])
    counting = CountingVault(vault)
    indexes = GalleryIndexes(db, counting, IndexConfig())  # type: ignore[arg-type]
    indexes.catch_up(gallery_id, revision, KEY, plugin)  # type: ignore[arg-type]

    # This process's own write, in step: applied in place, nothing decrypted.
    counting.opened.clear()
    revision, rows, _ = enrol(db, vault, gallery_id, "bob", vectors[1:2])
    indexes.added(gallery_id, revision, rows)
    assert indexes.revision(gallery_id, KEY) == revision
    assert indexes.catch_up(gallery_id, revision, KEY, plugin) == "current"  # type: ignore[arg-type]
    assert counting.opened == []

    # Another process wrote in between: the in-place write is left to catch_up.
    other, _, other_blobs = enrol(db, vault, gallery_id, "carol", vectors[2:3])
    revision, rows, own_blobs = enrol(db, vault, gallery_id, "dave", vectors[3:4])
    indexes.added(gallery_id, revision, rows)
    assert indexes.revision(gallery_id, KEY) == other - 1
    assert indexes.catch_up(gallery_id, revision, KEY, plugin) == "caught_up"  # type: ignore[arg-type]
    assert sorted(counting.opened) == sorted([*other_blobs.values(), *own_blobs.values()])
    assert indexes.subject_count(gallery_id, KEY) == 4

    # Own erasure in step.
    revision, removed = erase(db, gallery_id, "bob")
    indexes.removed(gallery_id, revision, removed)
    assert indexes.revision(gallery_id, KEY) == revision
    assert indexes.subject_count(gallery_id, KEY) == 3


def test_a_gap_the_feed_no_longer_covers_is_rebuilt(
    store: tuple[Database, Vault, int],
) -> None:
    db, vault, gallery_id = store
    plugin = VectorPlugin()
    vectors = unit_vectors(4, seed=13)
    revision, _, _ = enrol(db, vault, gallery_id, "alice", vectors[:2])
    counting = CountingVault(vault)
    indexes = GalleryIndexes(db, counting, IndexConfig())  # type: ignore[arg-type]
    indexes.catch_up(gallery_id, revision, KEY, plugin)  # type: ignore[arg-type]
    later, _, _ = enrol(db, vault, gallery_id, "bob", vectors[2:])
    with db.write_transaction() as session:
        assert prune_changes(session, gallery_id, later) == 4
        assert not changes_since(session, gallery_id, revision, KEY).complete
    counting.opened.clear()
    assert indexes.catch_up(gallery_id, later, KEY, plugin) == "loaded"  # type: ignore[arg-type]
    assert len(counting.opened) == 4
    assert indexes.subject_count(gallery_id, KEY) == 2


def test_record_changes_bumps_the_revision_with_its_rows(
    store: tuple[Database, Vault, int],
) -> None:
    db, _, gallery_id = store
    with db.write_transaction() as session:
        first = record_changes(session, gallery_id, added=[(1, 10, KEY), (2, 10, "other/m@1")])
        second = record_changes(session, gallery_id, removed=[(1, 10, KEY)])
    assert (first, second) == (1, 2)
    with db.transaction() as session:
        feed = changes_since(session, gallery_id, 0, KEY)
        assert feed.complete and feed.revision == 2
        assert [(c.revision, c.template_id, c.op) for c in feed.changes] == [
            (1, 1, "add"), (2, 1, "remove"),
        ]  # fmt: skip
        assert changes_since(session, gallery_id, 2, KEY).changes == ()
        assert [
            c.template_id for c in changes_since(session, gallery_id, 0, "other/m@1").changes
        ] == [2]
