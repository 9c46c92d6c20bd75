"""Bearer API tokens: ``bm_<token id>_<secret>``; only a salted hash of the secret is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "bm"


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str
    salt: str
    secret_hash: str


def issue() -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return IssuedToken(token_id, f"{PREFIX}_{token_id}_{secret}", salt, _hash(salt, secret))


def parse(token: str) -> tuple[str, str] | None:
    """(token id, secret), or None where the token is not of BioMatch's form."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def matches(secret: str, salt: str, secret_hash: str) -> bool:
    return hmac.compare_digest(_hash(salt, secret), secret_hash)


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
