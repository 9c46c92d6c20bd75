"""The append-only audit log: a keyed hash chain, signed checkpoints, and a witness outside
the database.

Each entry's hash is an HMAC (key derived from the audit signing key, which lives outside the
database) over its content and the previous entry's hash, so a change, deletion, reordering or
appended entry cannot be made to verify without that key. After each commit the new head is
signed into the witness (``witness.py``), so deleting or rewriting the newest entries is
caught too. Logs written before the chain was keyed keep their SHA-256 entries up to an
``audit.chain_keyed`` entry, which anchors them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from biomatch.accountability.crypto import create_once
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.witness import HeadStore, SignedHead, Witness, WitnessState
from biomatch.store.models import AuditCheckpoint, AuditEntry

GENESIS = "0" * 64
CHAIN_KEYED = "audit.chain_keyed"
_PENDING = "biomatch.audit.pending_heads"


def _canonical(entry: AuditEntry) -> bytes:
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
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: AuditEntry) -> str:
    """The unkeyed SHA-256 of entries written before the chain was keyed."""
    return hashlib.sha256(_canonical(entry)).hexdigest()


def entry_mac(chain_key: bytes, entry: AuditEntry) -> str:
    return hmac.new(chain_key, _canonical(entry), hashlib.sha256).hexdigest()


class CheckpointSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()

    @classmethod
    def from_file(cls, path: Path) -> CheckpointSigner:
        """Load the Ed25519 key, creating it (mode 0600) on first use; where processes start
        at once, the first one's key is the one they all load."""
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            create_once(path, pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key.")
        return cls(key)

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()

    def chain_key(self) -> bytes:
        """The HMAC key of the hash chain, derived from (and kept as safe as) this key."""
        raw = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"biomatch-audit-chain")
        return kdf.derive(raw)


def _checkpoint_message(seq: int, head_hash: str, signed_at: str) -> bytes:
    return f"biomatch-audit-checkpoint:{seq}:{head_hash}:{signed_at}".encode()


def _last_entry(session: Session) -> AuditEntry | None:
    return session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()


class AuditLog:
    def __init__(
        self,
        signer: CheckpointSigner,
        checkpoint_every: int,
        witness_file: Path,
        second_witness: HeadStore | None = None,
    ) -> None:
        self._signer = signer
        self._chain_key = signer.chain_key()
        self._checkpoint_every = checkpoint_every
        self.witness = Witness(witness_file, signer.sign, signer.public_key, second_witness)

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
        """Append in the caller's transaction: the entry commits with the change it records,
        and its head goes to the witness once that commit succeeded."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(7270151)"))
        last = _last_entry(session)
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
        entry.hash = entry_mac(self._chain_key, entry)
        session.add(entry)
        checkpointed = entry.seq % self._checkpoint_every == 0
        if checkpointed:
            self._add_checkpoint(session, entry)
        self._witness_after_commit(session, SignedHead(entry.seq, entry.hash, checkpointed, ""))
        return entry

    def checkpoint(self, session: Session) -> AuditCheckpoint | None:
        last = _last_entry(session)
        if last is None:
            return None
        self._witness_after_commit(session, SignedHead(last.seq, last.hash, True, ""))
        return self._add_checkpoint(session, last)

    def key_legacy_log(self, session: Session) -> AuditEntry | None:
        """Anchor a log written before the chain was keyed: one keyed entry after its
        SHA-256 entries (once; the caller holds the write transaction)."""
        last = _last_entry(session)
        if last is None or last.hash != entry_hash(last) or _keyed_from(session) != 1:
            return None
        return self.append(
            session,
            SYSTEM,
            CHAIN_KEYED,
            details={"legacy_entries": last.seq, "legacy_head": last.hash},
        )

    def verify(self, session: Session) -> ChainReport:
        state = self.witness.read()
        second, problem = self.witness.read_extra()
        if second is not None:
            state = WitnessState([*state.heads, second], state.present, state.problem)
        elif problem is not None:
            state = WitnessState(state.heads, state.present, state.problem or problem)
        return _Verifier(session, self._chain_key, self.public_key, state).run()

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

    def _witness_after_commit(self, session: Session, head: SignedHead) -> None:
        pending: list[SignedHead] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            event.listen(session, "after_commit", self._record_heads, once=True)
            event.listen(session, "after_rollback", _forget_heads, once=True)
        pending.append(head)

    def _record_heads(self, session: Session) -> None:
        pending: list[SignedHead] = session.info.pop(_PENDING, [])
        if not pending:
            return
        newest = max(pending, key=lambda head: head.seq)
        for head in pending:
            if head.checkpoint or head is newest:
                self.witness.record(head.seq, head.head, checkpoint=head.checkpoint)


def _forget_heads(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _keyed_from(session: Session) -> int:
    """The first keyed entry: the ``audit.chain_keyed`` entry of an upgraded log, else 1."""
    first = session.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.action == CHAIN_KEYED))
    return int(first) if first is not None else 1


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries: int
    checkpoints: int
    first_broken_seq: int | None = None
    problem: str | None = None
    finding: str | None = None
    witnessed_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "checkpoints_verified": self.checkpoints,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "finding": self.finding,
            "witnessed_seq": self.witnessed_seq,
        }


class _Broken(Exception):
    def __init__(self, finding: str, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.finding, self.seq, self.problem = finding, seq, problem


class _Verifier:
    """Every entry's link and keyed hash, every checkpoint's signature, then the log's end
    against the witness's newest signed head."""

    def __init__(
        self, session: Session, chain_key: bytes, public_key: Ed25519PublicKey, w: WitnessState
    ) -> None:
        self._session = session
        self._chain_key = chain_key
        self._public_key = public_key
        self._witness = w
        self._witnessed = w.newest.seq if w.newest else 0
        self._hashes: dict[int, str] = {}
        self._checkpoints = 0

    def run(self) -> ChainReport:
        try:
            self._check_entries()
            self._check_witness()
            self._check_checkpoints()
        except _Broken as broken:
            return ChainReport(
                False,
                len(self._hashes),
                self._checkpoints,
                broken.seq,
                broken.problem,
                broken.finding,
                self._witnessed or None,
            )
        witnessed = self._witnessed or None
        return ChainReport(True, len(self._hashes), self._checkpoints, witnessed_seq=witnessed)

    def _check_entries(self) -> None:
        keyed_from = _keyed_from(self._session)
        previous, expected = GENESIS, 1
        for entry in self._session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            if entry.seq != expected:
                raise _Broken(
                    "missing_entry",
                    entry.seq,
                    f"entry {expected} is missing (next entry is {entry.seq})",
                )
            if entry.prev_hash != previous:
                raise _Broken(
                    "broken_link",
                    entry.seq,
                    f"entry {entry.seq} does not link to entry {expected - 1}",
                )
            keyed = entry.seq >= keyed_from
            computed = entry_mac(self._chain_key, entry) if keyed else entry_hash(entry)
            if not hmac.compare_digest(computed, entry.hash):
                raise self._not_authentic(entry.seq, keyed)
            self._hashes[entry.seq] = entry.hash
            previous, expected = entry.hash, entry.seq + 1

    def _not_authentic(self, seq: int, keyed: bool) -> _Broken:
        if keyed and seq > self._witnessed:
            return _Broken(
                "forged_append",
                seq,
                f"entry {seq} comes after the newest witnessed head ({self._witnessed}) and its "
                "keyed hash does not match: an entry appended without the audit key",
            )
        what = "keyed hash" if keyed else "hash"
        return _Broken("altered", seq, f"entry {seq} was altered (its {what} does not match)")

    def _check_checkpoints(self) -> None:
        rows = self._session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        present = set()
        for checkpoint in rows:
            message = _checkpoint_message(
                checkpoint.seq, checkpoint.head_hash, checkpoint.signed_at
            )
            try:
                self._public_key.verify(bytes.fromhex(checkpoint.signature), message)
            except (InvalidSignature, ValueError):
                raise _Broken(
                    "checkpoint_forged",
                    checkpoint.seq,
                    f"checkpoint at entry {checkpoint.seq} has an invalid signature",
                ) from None
            if self._hashes.get(checkpoint.seq) != checkpoint.head_hash:
                raise _Broken(
                    "checkpoint_mismatch",
                    checkpoint.seq,
                    f"entries up to {checkpoint.seq} differ from what the signed checkpoint covers",
                )
            present.add((checkpoint.seq, checkpoint.head_hash))
            self._checkpoints += 1
        for head in self._witness.heads:
            if head.checkpoint and (head.seq, head.head) not in present:
                raise _Broken(
                    "checkpoint_deleted",
                    head.seq,
                    f"the signed checkpoint at entry {head.seq} was deleted (the witness holds it)",
                )

    def _check_witness(self) -> None:
        witness = self._witness
        if witness.problem:
            raise _Broken("witness_forged", None, witness.problem)
        if not witness.present:
            if self._hashes:
                raise _Broken(
                    "witness_missing",
                    None,
                    "the witness file is missing: the end of the log cannot be checked",
                )
            return
        last = max(self._hashes, default=0)
        for head in sorted(witness.heads, key=lambda h: h.seq):
            if head.seq > last:
                raise _Broken(
                    "truncated",
                    last + 1,
                    f"the log ends at entry {last} but the witness holds a signed head at entry "
                    f"{self._witnessed}: entries {last + 1}-{self._witnessed} were deleted",
                )
            if self._hashes[head.seq] != head.head:
                raise _Broken(
                    "rewritten",
                    head.seq,
                    f"entry {head.seq} differs from the head the witness signed: the log was "
                    "rewritten from there",
                )


def verify_chain(session: Session, audit: AuditLog) -> ChainReport:
    return audit.verify(session)
