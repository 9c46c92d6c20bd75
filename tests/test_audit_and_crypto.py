"""Tamper-evidence of the audit log, and encryption at rest of templates and probe images."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from biomatch.accountability.crypto import MasterKey, write_key_file
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.cli import app
from biomatch.errors import CryptoError
from biomatch.results import SearchContext
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, settings_for_tests

CONTEXT = SearchContext(purpose="identity_check", legal_authority="Identity Checks Act s.4")


def populated(data_dir: Path, photo: bytes, **overrides: Any) -> tuple[BioMatch, Any]:
    """A core with a gallery that keeps probes, one enrolment and one search."""
    from biomatch.accountability.policy import GalleryPolicy

    settings = settings_for_tests(data_dir).model_copy(update=overrides)
    core = BioMatch(settings)
    enroller = core.authenticate(core.create_operator(SYSTEM, "eve", Role.ENROLLER).token)
    field = core.authenticate(core.create_operator(SYSTEM, "fay", Role.FIELD_OPERATOR).token)
    policy = GalleryPolicy.model_validate({**OPEN_POLICY, "probe_retention_hours": 24})
    core.create_gallery(SYSTEM, "g", policy=policy)
    core.enrol(enroller, "g", "hopper", [photo])
    core.identify(field, "g", photo, CONTEXT)
    return core, field


def sql(core: BioMatch, statements: str) -> None:
    with core.db.engine.begin() as connection:
        for statement in statements.split("; "):
            connection.execute(text(statement))


def audit_verify_cli(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.stderr


def test_intact_log_verifies(tmp_path: Path, grace_hopper: bytes) -> None:
    core, _ = populated(tmp_path, grace_hopper)
    report = core.verify_audit(SYSTEM.__class__(None, "a", Role.AUDITOR))
    assert report.intact and report.entries >= 5
    assert audit_verify_cli(tmp_path)[0] == 0


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("UPDATE audit_log SET details = '{\"samples\": []}' WHERE seq = 3", 3),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 3", 4),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; "
            "UPDATE audit_log SET seq = 2 WHERE seq = 3; "
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            2,
        ),
    ],
    ids=["altered-details", "altered-actor", "deleted-row", "reordered-rows"],
)
def test_tampering_is_detected_and_named(
    tmp_path: Path, grace_hopper: bytes, tamper: str, broken_at: int
) -> None:
    core, _ = populated(tmp_path, grace_hopper)
    sql(core, tamper)
    code, message = audit_verify_cli(tmp_path)
    assert code == 1
    assert f"broken at entry {broken_at}" in message


def test_truncating_the_tail_is_caught_by_the_witness(tmp_path: Path, grace_hopper: bytes) -> None:
    core, _ = populated(tmp_path, grace_hopper, audit_checkpoint_every=2)
    with core.db.engine.begin() as connection:
        last = connection.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
        checkpointed = connection.execute(text("SELECT max(seq) FROM audit_checkpoints")).scalar()
        connection.execute(text(f"DELETE FROM audit_log WHERE seq >= {checkpointed}"))
    assert last >= checkpointed
    code, message = audit_verify_cli(tmp_path)
    assert code == 1 and "were deleted" in message  # the witness holds the newest head


def test_forged_checkpoint_signature_is_detected(tmp_path: Path, grace_hopper: bytes) -> None:
    core, _ = populated(tmp_path, grace_hopper, audit_checkpoint_every=2)
    sql(core, "UPDATE audit_checkpoints SET signature = '00' || substr(signature, 3)")
    code, message = audit_verify_cli(tmp_path)
    assert code == 1 and "signature" in message


@pytest.mark.store("sqlite")  # reads the SQLite files on disk
def test_database_file_holds_no_plaintext_template_or_image(
    tmp_path: Path, grace_hopper: bytes
) -> None:
    core, _ = populated(tmp_path, grace_hopper)
    template = core.extract(grace_hopper).template
    core.close()
    dump = b"".join(p.read_bytes() for p in tmp_path.glob("biomatch.sqlite3*"))
    assert len(dump) > 10_000
    for start in range(0, len(template) - 16, 16):
        assert template[start : start + 16] not in dump
    for start in range(0, len(grace_hopper) - 64, 4096):
        assert grace_hopper[start : start + 64] not in dump
    assert b"hopper" in dump  # the dump is readable: what is absent was encrypted


def test_data_key_rotation_keeps_records_readable(tmp_path: Path, grace_hopper: bytes) -> None:
    core, field = populated(tmp_path, grace_hopper)
    before = core.identify(field, "g", grace_hopper, CONTEXT).candidates[0].score
    # one template, two kept probes, one kept reference image
    assert core.rotate_data_keys() == 1 + 2 + 1
    with core.db.engine.begin() as connection:
        versions = connection.execute(text("SELECT version FROM gallery_keys")).scalars().all()
    assert versions == [2]  # the old data key is destroyed
    core.rebuild_indexes()
    assert core.identify(field, "g", grace_hopper, CONTEXT).candidates[0].score == before
    reviewer = Principal(None, "rui", Role.REVIEWER)
    sample = core.get_subject(reviewer, "g", "hopper").samples[0].sample_id
    assert core.reference_image(reviewer, "g", "hopper", sample) == grace_hopper


def test_master_key_rotation_and_wrong_key(tmp_path: Path, grace_hopper: bytes) -> None:
    core, field = populated(tmp_path, grace_hopper)
    new_master, raw = MasterKey.generate()
    core.rotate_master_key(SYSTEM, new_master)
    core.close()
    with pytest.raises(CryptoError):
        BioMatch(settings_for_tests(tmp_path))  # the old key file no longer unwraps
    write_key_file(tmp_path / "keys" / "master.key", raw)
    reopened = BioMatch(settings_for_tests(tmp_path))
    field = reopened.authenticate(
        reopened.create_operator(SYSTEM, "fo2", Role.FIELD_OPERATOR).token
    )
    assert reopened.identify(field, "g", grace_hopper, CONTEXT).candidates[0].subject_id == "hopper"


def test_master_key_can_come_from_the_environment(
    tmp_path: Path, grace_hopper: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, raw = MasterKey.generate()
    monkeypatch.setenv("BIOMATCH_MASTER_KEY", base64.b64encode(raw).decode())
    populated(tmp_path, grace_hopper)
    assert not (tmp_path / "keys" / "master.key").exists()


def test_two_processes_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    """Two cores on one SQLite file (a service and a CLI command, say) append concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    first, second = BioMatch(settings_for_tests(tmp_path)), BioMatch(settings_for_tests(tmp_path))

    def append(core: BioMatch, name: str) -> None:
        for number in range(60):
            with core.db.write_transaction() as session:
                core.audit.append(session, SYSTEM, "test.event", details={name: number})

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(append, first, "a"), pool.submit(append, second, "b")]:
            future.result()
    report = first.verify_audit(SYSTEM.__class__(None, "a", Role.AUDITOR))
    assert report.intact and report.entries == 120
