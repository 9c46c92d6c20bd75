"""The append-only, hash-chained audit log, with checkpoints signed by a key kept outside
the database. Each entry's hash covers its content and the previous entry's hash, so any
change, deletion or reordering breaks the chain from that entry on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from biomatch.accountability.principal import Principal
from biomatch.store.models import AuditCheckpoint, AuditEntry

GENESIS = "0" * 64


def entry_hash(entry: AuditEntry) -> str:
    content = {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "gallery": entry.gallery,
        "subject": entry.subject,
        "encounter": entry.encounter,
        "details": entry.details,
        "prev": entry.prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CheckpointSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()

    @classmethod
    def from_file(cls, path: Path) -> CheckpointSigner:
        """Load the Ed25519 key, creating it (mode 0600) on first use."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key.")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return cls(key)

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def _checkpoint_message(seq: int, head_hash: str, signed_at: str) -> bytes:
    return f"biomatch-audit-checkpoint:{seq}:{head_hash}:{signed_at}".encode()


class AuditLog:
    def __init__(self, signer: CheckpointSigner, checkpoint_every: int) -> None:
        self._signer = signer
        self._checkpoint_every = checkpoint_every

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._signer.public_key

    def append(
        self,
        session: Session,
        actor: Principal,
        action: str,
        *,
        gallery: str | None = None,
        subject: str | None = None,
        encounter: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append in the caller's transaction: the entry commits with the change it records."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(7270151)"))
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
        entry = AuditEntry(
            seq=(last.seq + 1) if last else 1,
            at=datetime.now(UTC).isoformat(timespec="microseconds"),
            actor=actor.name,
            role=actor.role.value,
            action=action,
            gallery=gallery,
            subject=subject,
            encounter=encounter,
            details=json.loads(json.dumps(details or {}, default=str)),
            prev_hash=last.hash if last else GENESIS,
        )
        entry.hash = entry_hash(entry)
        session.add(entry)
        if entry.seq % self._checkpoint_every == 0:
            self._add_checkpoint(session, entry)
        return entry

    def checkpoint(self, session: Session) -> AuditCheckpoint | None:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
        return None if last is None else self._add_checkpoint(session, last)

    def _add_checkpoint(self, session: Session, entry: AuditEntry) -> AuditCheckpoint:
        signed_at = datetime.now(UTC).isoformat(timespec="seconds")
        checkpoint = AuditCheckpoint(
            seq=entry.seq,
            head_hash=entry.hash,
            signed_at=signed_at,
            signature=self._signer.sign(_checkpoint_message(entry.seq, entry.hash, signed_at)),
        )
        session.add(checkpoint)
        return checkpoint


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries: int
    checkpoints: int
    first_broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "checkpoints_verified": self.checkpoints,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
        }


def verify_chain(session: Session, public_key: Ed25519PublicKey) -> ChainReport:
    """Recompute every hash and link, then check each signed checkpoint against the chain."""
    hashes: dict[int, str] = {}
    previous_hash, expected_seq, count = GENESIS, 1, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        count += 1
        problem = _entry_problem(entry, expected_seq, previous_hash)
        if problem:
            return ChainReport(False, count, 0, entry.seq, problem)
        hashes[entry.seq] = entry.hash
        previous_hash, expected_seq = entry.hash, entry.seq + 1
    verified = 0
    for checkpoint in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)):
        problem = _checkpoint_problem(checkpoint, hashes, public_key)
        if problem:
            return ChainReport(False, count, verified, checkpoint.seq, problem)
        verified += 1
    return ChainReport(True, count, verified)


def _entry_problem(entry: AuditEntry, expected_seq: int, previous_hash: str) -> str | None:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (next entry is {entry.seq})"
    if entry.prev_hash != previous_hash:
        return f"entry {entry.seq} does not link to entry {entry.seq - 1}"
    if entry_hash(entry) != entry.hash:
        return f"entry {entry.seq} was altered (its hash does not match its content)"
    return None


def _checkpoint_problem(
    checkpoint: AuditCheckpoint, hashes: dict[int, str], public_key: Ed25519PublicKey
) -> str | None:
    message = _checkpoint_message(checkpoint.seq, checkpoint.head_hash, checkpoint.signed_at)
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), message)
    except (InvalidSignature, ValueError):
        return f"checkpoint at entry {checkpoint.seq} has an invalid signature"
    if hashes.get(checkpoint.seq) != checkpoint.head_hash:
        return f"entries up to {checkpoint.seq} differ from what the signed checkpoint covers"
    return None
