"""The tamper suite: each way of moving, cutting or forging the audit log that an attacker
with write access to the database (not to the keys) has, and what `audit verify` names it.

No face model runs here: the log is filled by operator and gallery changes and direct appends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from biomatch.accountability.audit import GENESIS, entry_hash
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.accountability.witness import SignedHead, head_line
from biomatch.cli import app
from biomatch.service import BioMatch
from biomatch.store.models import AuditEntry
from tests.conftest import settings_for_tests

AUDITOR = Principal(None, "auditor", Role.AUDITOR)
CHECKPOINT_EVERY = 4
ENTRIES = 14  # checkpoints at 4, 8, 12; entries 13-14 after the last one


def filled(data_dir: Path) -> BioMatch:
    settings = settings_for_tests(data_dir).model_copy(
        update={"audit_checkpoint_every": CHECKPOINT_EVERY}
    )
    core = BioMatch(settings)
    core.create_operator(SYSTEM, "ada", Role.ADMIN)
    core.create_gallery(SYSTEM, "g")
    for number in range(ENTRIES - 2):
        with core.db.write_transaction() as session:
            core.audit.append(session, SYSTEM, "test.event", gallery="g", details={"n": number})
    return core


def sql(core: BioMatch, *statements: str) -> None:
    with core.db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def rows(core: BioMatch) -> list[AuditEntry]:
    with core.db.transaction() as session:
        return list(session.query(AuditEntry).order_by(AuditEntry.seq))


def store_hash(core: BioMatch, entry: AuditEntry) -> None:
    sql(
        core,
        f"UPDATE audit_log SET details = '{json.dumps(entry.details)}', "
        f"prev_hash = '{entry.prev_hash}', hash = '{entry.hash}' WHERE seq = {entry.seq}",
    )


def rewrite_unkeyed(core: BioMatch, start: int, end: int | None = None) -> None:
    """Alter entries ``start``..``end`` and recompute their (unkeyed) hashes and links."""
    entries = rows(core)
    previous = entries[start - 2].hash if start > 1 else GENESIS
    for entry in entries[start - 1 : end]:
        entry.details = {"n": -1}
        entry.prev_hash = previous
        entry.hash = entry_hash(entry)
        store_hash(core, entry)
        previous = entry.hash


def forge_append(core: BioMatch, make_hash: Callable[[AuditEntry], str]) -> None:
    last = rows(core)[-1]
    forged = AuditEntry(
        seq=last.seq + 1,
        at=last.at,
        actor="system",
        role="admin",
        action="operator.create",
        gallery=None,
        subject=None,
        encounter=None,
        details={"operator": "mallory", "role": "admin"},
        prev_hash=last.hash,
    )
    forged.hash = make_hash(forged)
    with core.db.transaction() as session:
        session.add(forged)


def witness_lines(core: BioMatch) -> list[str]:
    return core.audit.witness.path.read_text().splitlines()


def write_witness(core: BioMatch, lines: list[str]) -> None:
    core.audit.witness.path.write_text("".join(line + "\n" for line in lines))


def other_key_line(core: BioMatch) -> str:
    stranger = Ed25519PrivateKey.generate()
    return head_line(
        SignedHead(ENTRIES + 5, "f" * 64, False, "now"), lambda m: stranger.sign(m).hex()
    )


def last_checkpoint_seq() -> int:
    return (ENTRIES // CHECKPOINT_EVERY) * CHECKPOINT_EVERY


TAMPERS: dict[str, tuple[Callable[[BioMatch], None], str]] = {
    "altered-details": (
        lambda c: sql(c, "UPDATE audit_log SET details = '{\"n\": 99}' WHERE seq = 5"),
        "altered",
    ),
    "altered-actor": (
        lambda c: sql(c, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"),
        "altered",
    ),
    "altered-stored-hash": (
        lambda c: sql(c, f"UPDATE audit_log SET hash = '{'a' * 64}' WHERE seq = 6"),
        "altered",
    ),
    "deleted-middle-entry": (
        lambda c: sql(c, "DELETE FROM audit_log WHERE seq = 7"),
        "missing_entry",
    ),
    "reordered-entries": (
        lambda c: sql(
            c,
            "UPDATE audit_log SET seq = -1 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
        ),
        "broken_link",
    ),
    "truncated-after-last-checkpoint": (
        lambda c: sql(c, f"DELETE FROM audit_log WHERE seq > {last_checkpoint_seq()}"),
        "truncated",
    ),
    "truncated-last-entry": (
        lambda c: sql(c, f"DELETE FROM audit_log WHERE seq = {ENTRIES}"),
        "truncated",
    ),
    "truncated-with-its-checkpoints": (
        lambda c: sql(
            c, "DELETE FROM audit_log WHERE seq > 6", "DELETE FROM audit_checkpoints WHERE seq > 6"
        ),
        "truncated",
    ),
    "all-entries-deleted": (
        lambda c: sql(c, "DELETE FROM audit_log", "DELETE FROM audit_checkpoints"),
        "truncated",
    ),
    "tail-rewritten-after-last-checkpoint": (
        lambda c: rewrite_unkeyed(c, last_checkpoint_seq() + 1),
        "altered",
    ),
    "whole-log-rewritten-unkeyed": (lambda c: rewrite_unkeyed(c, 1), "altered"),
    "forged-append-sha256": (lambda c: forge_append(c, entry_hash), "forged_append"),
    "forged-append-wrong-key": (
        lambda c: forge_append(
            c, lambda e: hmac.new(b"guess", entry_hash(e).encode(), hashlib.sha256).hexdigest()
        ),
        "forged_append",
    ),
    "checkpoints-deleted": (
        lambda c: sql(c, "DELETE FROM audit_checkpoints"),
        "checkpoint_deleted",
    ),
    "last-checkpoint-deleted": (
        lambda c: sql(c, f"DELETE FROM audit_checkpoints WHERE seq = {last_checkpoint_seq()}"),
        "checkpoint_deleted",
    ),
    "checkpoint-signature-forged": (
        lambda c: sql(c, "UPDATE audit_checkpoints SET signature = '00' || substr(signature, 3)"),
        "checkpoint_forged",
    ),
    "checkpoint-moved": (
        lambda c: sql(c, "UPDATE audit_checkpoints SET seq = 5 WHERE seq = 4"),
        "checkpoint_forged",
    ),
    "witness-file-deleted": (lambda c: c.audit.witness.path.unlink(), "witness_missing"),
    "witness-line-edited": (
        lambda c: write_witness(
            c, [*witness_lines(c)[:-1], witness_lines(c)[-1].replace('"seq": ', '"seq": 1')]
        ),
        "witness_forged",
    ),
    "witness-line-from-another-key": (
        lambda c: write_witness(c, [*witness_lines(c), other_key_line(c)]),
        "witness_forged",
    ),
    "action-renamed-to-chain-keyed": (
        lambda c: sql(c, "UPDATE audit_log SET action = 'audit.chain_keyed' WHERE seq = 9"),
        "altered",
    ),
}


def verify_cli(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout + result.stderr


def test_an_untouched_log_verifies_with_its_witness(tmp_path: Path) -> None:
    core = filled(tmp_path)
    report = core.verify_audit(AUDITOR)
    assert report.intact, report.problem
    assert report.entries == ENTRIES and report.checkpoints == ENTRIES // CHECKPOINT_EVERY
    assert report.witnessed_seq == ENTRIES
    assert verify_cli(tmp_path)[0] == 0


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampering_is_detected_and_named(tmp_path: Path, case: str) -> None:
    core = filled(tmp_path)
    tamper, finding = TAMPERS[case]
    tamper(core)
    report = core.verify_audit(AUDITOR)
    assert not report.intact
    assert report.finding == finding, report.problem
    code, output = verify_cli(tmp_path)
    assert code == 1 and "audit log broken" in output


def test_the_suite_has_at_least_fifteen_cases() -> None:
    assert len(TAMPERS) >= 15


def test_a_rolled_back_transaction_leaves_no_witnessed_head(tmp_path: Path) -> None:
    core = filled(tmp_path)
    with pytest.raises(RuntimeError), core.db.write_transaction() as session:
        core.audit.append(session, SYSTEM, "test.event")
        raise RuntimeError("the change the entry records failed")
    assert core.verify_audit(AUDITOR).intact


def test_a_crash_between_commit_and_witness_still_verifies(tmp_path: Path) -> None:
    """The witness trails the database by at most one commit; that is not tampering."""
    core = filled(tmp_path)
    lines = witness_lines(core)
    write_witness(core, lines[:-1])
    report = core.verify_audit(AUDITOR)
    assert report.intact and report.witnessed_seq == ENTRIES - 1


def test_the_head_survives_a_restart_and_a_second_process(tmp_path: Path) -> None:
    core = filled(tmp_path)
    second = BioMatch(core.settings)
    second.create_operator(SYSTEM, "bob", Role.ENROLLER)
    assert core.verify_audit(AUDITOR).witnessed_seq == ENTRIES + 1
    assert BioMatch(core.settings).verify_audit(AUDITOR).intact


def unkeyed_log(core: BioMatch, count: int) -> None:
    """Rewrite the log as a pre-key release wrote it: SHA-256 entries, no witness."""
    sql(core, "DELETE FROM audit_log", "DELETE FROM audit_checkpoints")
    previous = GENESIS
    with core.db.transaction() as session:
        for seq in range(1, count + 1):
            entry = AuditEntry(
                seq=seq, at="2026-01-01T00:00:00+00:00", actor="system", role="admin",
                action="test.event", gallery=None, subject=None, encounter=None,
                details={"n": seq}, prev_hash=previous,
            )  # fmt: skip
            entry.hash = entry_hash(entry)
            session.add(entry)
            previous = entry.hash
    core.audit.witness.path.unlink()


def test_a_log_from_before_the_key_is_anchored_on_upgrade(tmp_path: Path) -> None:
    core = filled(tmp_path)
    unkeyed_log(core, 5)
    upgraded = BioMatch(core.settings)
    entries = rows(upgraded)
    assert entries[-1].action == "audit.chain_keyed" and entries[-1].seq == 6
    assert entries[-1].details == {"legacy_entries": 5, "legacy_head": entries[4].hash}
    report = upgraded.verify_audit(AUDITOR)
    assert report.intact and report.witnessed_seq == 6
    BioMatch(core.settings)  # a second start anchors nothing more
    assert len(rows(upgraded)) == 6


def test_a_legacy_entry_rewritten_after_the_upgrade_is_detected(tmp_path: Path) -> None:
    core = filled(tmp_path)
    unkeyed_log(core, 5)
    upgraded = BioMatch(core.settings)
    rewrite_unkeyed(upgraded, 3, 5)  # legacy entries 3-5, hashes recomputed
    report = upgraded.verify_audit(AUDITOR)
    assert not report.intact and report.first_broken_seq == 6
    assert report.finding == "broken_link"  # the keyed entry 6 anchors them


def redis_url() -> str:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    return url


def test_a_witness_file_rolled_back_with_the_log_is_caught_by_redis(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path).model_copy(
        update={"redis_url": redis_url(), "audit_witness_redis": True}
    )
    core = BioMatch(settings)
    core.create_operator(SYSTEM, "ada", Role.ADMIN)
    saved = witness_lines(core)
    core.create_operator(SYSTEM, "bob", Role.ADMIN)
    sql(core, "DELETE FROM audit_log WHERE seq = 2")
    write_witness(core, saved)  # the attacker restores the file as it was
    report = core.verify_audit(AUDITOR)
    assert not report.intact and report.finding == "truncated" and report.witnessed_seq == 2
