"""Signed heads of the audit log kept outside the database, so its end cannot move silently.

After every commit that appended audit entries, the new head (sequence number and keyed hash)
is signed with the audit key and appended, fsync'd, to a JSON-lines witness file beside that
key; optionally also to Redis. ``audit verify`` then knows the newest head that was ever
committed: a log that ends earlier was truncated; one whose entry there differs was rewritten.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

if TYPE_CHECKING:
    import redis

log = logging.getLogger("biomatch.audit")

_DOMAIN = b"biomatch-audit-witness-v1:"


@dataclass(frozen=True)
class SignedHead:
    seq: int
    head: str
    checkpoint: bool
    at: str


@dataclass(frozen=True)
class WitnessState:
    """What the witness holds: its heads, or the problem that made it unreadable."""

    heads: list[SignedHead]
    present: bool = True
    problem: str | None = None

    @property
    def newest(self) -> SignedHead | None:
        return max(self.heads, key=lambda head: head.seq, default=None)


class HeadStore(Protocol):
    """A second place to keep the newest signed head (Redis, say)."""

    def record_if_newer(self, seq: int, line: str) -> None: ...

    def newest_line(self) -> str | None: ...


def _message(fields: dict[str, Any]) -> bytes:
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def head_line(head: SignedHead, sign: Callable[[bytes], str]) -> str:
    fields = {"seq": head.seq, "head": head.head, "checkpoint": head.checkpoint, "at": head.at}
    return json.dumps({**fields, "sig": sign(_message(fields))}, sort_keys=True)


def parse_line(line: str, public_key: Ed25519PublicKey) -> SignedHead | None:
    """The head a line holds, or None where it is malformed or not signed by the audit key."""
    try:
        record = json.loads(line)
        fields = {key: record[key] for key in ("seq", "head", "checkpoint", "at")}
        public_key.verify(bytes.fromhex(record["sig"]), _message(fields))
        return SignedHead(
            int(fields["seq"]), str(fields["head"]), bool(fields["checkpoint"]), str(fields["at"])
        )
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return None


class Witness:
    def __init__(
        self,
        path: Path,
        sign: Callable[[bytes], str],
        public_key: Ed25519PublicKey,
        extra: HeadStore | None = None,
    ) -> None:
        self.path = path
        self._sign = sign
        self._public_key = public_key
        self._extra = extra

    def record(self, seq: int, head: str, *, checkpoint: bool) -> None:
        """Append and fsync one signed head (several processes may append at once)."""
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        line = head_line(SignedHead(seq, head, checkpoint, now), self._sign)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.write(descriptor, (line + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if self._extra is not None:
            try:
                self._extra.record_if_newer(seq, line)
            except Exception:  # the file holds the head; a second witness is best effort
                log.exception("could not record the audit head in the second witness")

    def read(self) -> WitnessState:
        if not self.path.exists():
            return WitnessState([], present=False)
        heads: list[SignedHead] = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            head = parse_line(line, self._public_key)
            if head is None:
                problem = f"line {number} of the witness file is not signed by the audit key"
                return WitnessState(heads, problem=problem)
            heads.append(head)
        return WitnessState(heads)

    def read_extra(self) -> tuple[SignedHead | None, str | None]:
        """(the second witness's head, a problem), both None where there is none."""
        if self._extra is None:
            return None, None
        line = self._extra.newest_line()
        if line is None:
            return None, None
        head = parse_line(line, self._public_key)
        if head is None:
            return None, "the second witness holds a head not signed by the audit key"
        return head, None


# KEYS[1] hash; ARGV seq, line: keep the line of the highest sequence number.
_KEEP_NEWEST = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'line', ARGV[2])
end
return 1
"""


class RedisHeads:
    """The newest signed head in Redis, beside the witness file."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._key = f"biomatch:{namespace}:audit:head"
        self._keep_newest = client.register_script(_KEEP_NEWEST)

    def record_if_newer(self, seq: int, line: str) -> None:
        self._keep_newest(keys=[self._key], args=[seq, line])

    def newest_line(self) -> str | None:
        value = self._client.hget(self._key, "line")
        return value.decode() if isinstance(value, bytes) else None
