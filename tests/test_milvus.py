"""The Milvus index backend (Milvus Lite, the embedded build, in a file of the test's data
directory): one index shared by every process, kept in step through the change feed (the
outbox), so neither a crash after a commit nor one between Milvus's rows and its revision
label leaves it out of step; ``index check`` and ``index rebuild`` over it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from biomatch.accountability.crypto import MasterKey
from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM
from biomatch.accountability.roles import Role
from biomatch.accountability.vault import Vault
from biomatch.config import IndexConfig
from biomatch.core.indexing import GalleryIndexes
from biomatch.index.milvus_index import MilvusRegistry
from biomatch.results import SearchContext
from biomatch.service import BioMatch
from biomatch.store import Database, Gallery
from biomatch.store.models import Base
from tests.conftest import OPEN_POLICY, settings_for_tests
from tests.test_index import unit_vectors
from tests.test_index_catch_up import KEY, CountingVault, VectorPlugin, enrol, erase, top_subjects

pytest.importorskip("pymilvus", reason="the Milvus backend needs pymilvus (the 'scale' extra)")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Database, Vault, int, IndexConfig]]:
    url = settings_for_tests(tmp_path).resolved_database_url
    db = Database(url)
    Base.metadata.create_all(db.engine)
    vault = Vault(MasterKey.generate()[0])
    with db.write_transaction() as session:
        gallery = Gallery(name="g", policy={})
        session.add(gallery)
        session.flush()
        gallery_id = gallery.id
    config = IndexConfig(backend="milvus", milvus_uri=str(tmp_path / "milvus.db"))
    yield db, vault, gallery_id, config
    db.dispose()


def test_one_shared_index_caught_up_from_the_feed_by_any_process(
    store: tuple[Database, Vault, int, IndexConfig],
) -> None:
    db, vault, gallery_id, config = store
    plugin = VectorPlugin()
    vectors = unit_vectors(8, seed=3)
    enrol(db, vault, gallery_id, "alice", vectors[:2])
    revision, _, _ = enrol(db, vault, gallery_id, "bob", vectors[2:4])
    writer = GalleryIndexes(db, Vault(vault.master), config)
    assert writer.catch_up(gallery_id, revision, KEY, plugin) == "loaded"  # type: ignore[arg-type]

    # Another process: the index is already there and current; it decrypts nothing.
    counting = CountingVault(vault)
    reader = GalleryIndexes(db, counting, config)  # type: ignore[arg-type]
    assert reader.catch_up(gallery_id, revision, KEY, plugin) == "current"  # type: ignore[arg-type]
    assert counting.opened == []
    assert reader.subject_count(gallery_id, KEY) == 2

    # The writer's own enrolment goes to Milvus in step; the reader sees it at once.
    revision, rows, _ = enrol(db, vault, gallery_id, "carol", vectors[4:6])
    writer.added(gallery_id, revision, rows)
    assert reader.catch_up(gallery_id, revision, KEY, plugin) == "current"  # type: ignore[arg-type]
    carol = rows[0].subject_id
    assert top_subjects(reader, gallery_id, vectors[5])[0] == carol
    hits = reader.search_subjects(gallery_id, KEY, vectors[5], 10)
    assert hits[0][1].template_id == rows[1].template_id
    assert hits[0][1].score == pytest.approx(1.0, abs=1e-5)
    assert len({subject for subject, _ in hits}) == len(hits) == 3  # one hit per subject

    # An erasure: gone for every process.
    revision, removed = erase(db, gallery_id, "alice")
    writer.removed(gallery_id, revision, removed)
    assert reader.catch_up(gallery_id, revision, KEY, plugin) == "current"  # type: ignore[arg-type]
    assert reader.subject_count(gallery_id, KEY) == 2
    assert reader.check(gallery_id, revision, KEY).in_step


def test_the_feed_repairs_a_crash_after_the_commit_or_before_the_label(
    store: tuple[Database, Vault, int, IndexConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, vault, gallery_id, config = store
    plugin = VectorPlugin()
    vectors = unit_vectors(6, seed=4)
    revision, _, _ = enrol(db, vault, gallery_id, "alice", vectors[:2])
    indexes = GalleryIndexes(db, Vault(vault.master), config)
    indexes.catch_up(gallery_id, revision, KEY, plugin)  # type: ignore[arg-type]

    # The writer dies after its commit, before Milvus heard of it.
    revision, rows, _ = enrol(db, vault, gallery_id, "bob", vectors[2:4])
    check = indexes.check(gallery_id, revision, KEY)
    assert check.missing == sorted(r.template_id for r in rows) and check.orphaned == []

    # Another writer's rows reach Milvus, then it dies before the revision label.
    later, more, _ = enrol(db, vault, gallery_id, "carol", vectors[4:6])

    def crash(self: MilvusRegistry, name: str, revision: int) -> None:
        raise ConnectionError("killed between the rows and the label")

    with monkeypatch.context() as patched:
        patched.setattr(MilvusRegistry, "_label", crash)
        indexes.added(gallery_id, later, more)  # logged, not raised: the feed holds it
    assert indexes.revision(gallery_id, KEY) == revision - 1  # the label is behind its rows

    # The next search of any process replays the feed since the label, idempotently.
    counting = CountingVault(vault)
    other = GalleryIndexes(db, counting, config)  # type: ignore[arg-type]
    assert other.catch_up(gallery_id, later, KEY, plugin) == "caught_up"  # type: ignore[arg-type]
    assert len(counting.opened) == 4  # bob's and carol's templates, nobody else's
    check = other.check(gallery_id, later, KEY)
    assert check.in_step and check.index_revision == later and check.templates == 6
    assert other.subject_count(gallery_id, KEY) == 3


def test_the_service_on_milvus_searches_erases_checks_and_rebuilds(
    tmp_path: Path, grace_hopper: bytes
) -> None:
    settings = settings_for_tests(tmp_path).model_copy(
        update={"index": IndexConfig(backend="milvus", milvus_uri=str(tmp_path / "m.db"))}
    )
    core = BioMatch(settings)
    enroller = core.authenticate(core.create_operator(SYSTEM, "eve", Role.ENROLLER).token)
    field = core.authenticate(core.create_operator(SYSTEM, "fay", Role.FIELD_OPERATOR).token)
    admin = core.authenticate(core.create_operator(SYSTEM, "ada", Role.ADMIN).token)
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    core.enrol(enroller, "g", "hopper", [grace_hopper])
    core.enrol(enroller, "g", "hopper-flipped", [grace_hopper[:]])  # same photo, second subject
    context = SearchContext(purpose="identity_check", legal_authority="Identity Checks Act s.4")
    found = core.identify(field, "g", grace_hopper, context)
    assert {c.subject_id for c in found.candidates} == {"hopper", "hopper-flipped"}
    [(name, check)] = core.check_indexes()
    assert name == "g" and check.in_step and check.templates == 2

    core.erase_subject(admin, "g", "hopper-flipped", "erasure request")
    assert [c.subject_id for c in core.identify(field, "g", grace_hopper, context).candidates] == [
        "hopper"
    ]
    progress: list[tuple[int, int]] = []
    assert core.rebuild_index(None, lambda g, m: lambda d, t: progress.append((d, t))) == [
        f"g/{core.modality('face').info.key}"
    ]
    assert progress[-1] == (1, 1)
    [(_, check)] = core.check_indexes("g")
    assert check.in_step and check.templates == 1
    again = core.identify(field, "g", grace_hopper, context)
    assert again.candidates[0].score == pytest.approx(found.candidates[0].score, abs=1e-5)
    core.close()


def test_collections_hold_only_what_search_needs(
    store: tuple[Database, Vault, int, IndexConfig],
) -> None:
    db, vault, gallery_id, config = store
    revision, _, _ = enrol(db, vault, gallery_id, "alice", unit_vectors(1, seed=9))
    indexes = GalleryIndexes(db, Vault(vault.master), config)
    indexes.catch_up(gallery_id, revision, KEY, VectorPlugin())  # type: ignore[arg-type]
    registry = MilvusRegistry(config, db.exclusive)
    client = registry._milvus()
    described = client.describe_collection(registry.collection(gallery_id, KEY))
    assert [f["name"] for f in described["fields"]] == ["template_id", "subject_id", "vector"]
    assert np.isclose(revision, int(described["properties"]["biomatch.revision"]))


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_index_check_and_rebuild_from_the_cli(
    backend: str, tmp_path: Path, grace_hopper: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_cli import run, token

    monkeypatch.setenv("BIOMATCH_INDEX__BACKEND", backend)
    data_dir = str(tmp_path / "data")
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    assert run("gallery", "create", "g", "--token", admin, "--data-dir", data_dir)[0] == 0
    photo = tmp_path / "hopper.jpg"
    photo.write_bytes(grace_hopper)
    code, _, err = run(
        "enrol", "g", "hopper", str(photo), "--token", enroller, "--data-dir", data_dir
    )
    assert code == 0, err
    code, out, err = run("index", "check", "--data-dir", data_dir)
    assert code == 0, err
    [entry] = json.loads(out)
    assert (entry["gallery"], entry["templates"], entry["missing"], entry["orphaned"]) == (
        "g", 1, [], []
    )  # fmt: skip
    # FAISS: the index this process builds; Milvus: none yet (no search has built it).
    assert entry["built"] == (backend == "faiss")
    assert "1 index(es) checked, 0 out of step" in err
    code, _, err = run("index", "rebuild", "g", "--data-dir", data_dir)
    assert code == 0, err
    assert f"rebuilt 1 index(es) ({backend}" in err
    code, out, err = run("index", "check", "g", "--data-dir", data_dir)
    assert code == 0 and json.loads(out)[0]["built"], err
    assert run("index", "check", "nosuch", "--data-dir", data_dir)[0] == 2


def test_dedup_from_the_cli_reports_pairs_as_json(tmp_path: Path, grace_hopper: bytes) -> None:
    from tests.test_cli import run, token

    data_dir = str(tmp_path / "data")
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    reviewer = token(data_dir, "rex", "reviewer")
    assert run("gallery", "create", "g", "--token", admin, "--data-dir", data_dir)[0] == 0
    photo = tmp_path / "hopper.jpg"
    photo.write_bytes(grace_hopper)
    for subject in ("hopper", "hopper-again"):
        enrolled = run(
            "enrol", "g", subject, str(photo), "--token", enroller, "--data-dir", data_dir
        )
        assert enrolled[0] == 0, enrolled[2]
    code, out, err = run("dedup", "g", "--token", reviewer, "--data-dir", data_dir)
    assert code == 0, err
    report = json.loads(out)
    assert [(d["subject_a"], d["subject_b"]) for d in report["duplicates"]] == [
        ("hopper", "hopper-again")
    ]
    assert report["subjects"] == 2 and report["duplicates"][0]["score"] > 0.99
    field = token(data_dir, "fay", "field_operator")
    code, _, err = run("dedup", "g", "--token", field, "--data-dir", data_dir)
    assert code == 2 and "forbidden" in err


def test_a_milvus_that_does_not_answer_is_a_503_not_a_500(
    store: tuple[Database, Vault, int, IndexConfig],
) -> None:
    from biomatch.errors import IndexUnavailable

    db, vault, gallery_id, _ = store
    revision, _, _ = enrol(db, vault, gallery_id, "alice", unit_vectors(1, seed=2))
    gone = IndexConfig(backend="milvus", milvus_uri="http://127.0.0.1:9")  # nothing listens
    indexes = GalleryIndexes(db, Vault(vault.master), gone)
    with pytest.raises(IndexUnavailable) as caught:
        indexes.catch_up(gallery_id, revision, KEY, VectorPlugin())  # type: ignore[arg-type]
    assert caught.value.http_status == 503 and caught.value.code == "index_unavailable"
