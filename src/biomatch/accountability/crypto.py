"""Encryption at rest: AES-256-GCM data keys per gallery, wrapped by a master key that lives
outside the database (a key file, or an environment variable named in config)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from biomatch.errors import CryptoError

_FORMAT = 1
_HEADER = struct.Struct(">BI")  # format, data-key version
_NONCE = 12


class MasterKey:
    """Wraps and unwraps data keys; its id (a hash prefix) records which master wrapped what."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoError("The master key must be 32 bytes (AES-256).")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"biomatch-master" + key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> tuple[MasterKey, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        return cls(key), key

    def wrap(self, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, b"biomatch-data-key")

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], b"biomatch-data-key")
        except InvalidTag:
            raise CryptoError(
                "A data key does not unwrap with this master key: wrong key file or variable?"
            ) from None


def load_master_key(key_file: Path, env_var: str) -> MasterKey:
    """From the environment variable (base64) if set, else from the key file, created with
    mode 0600 on first use."""
    encoded = os.environ.get(env_var)
    if encoded:
        return MasterKey(base64.b64decode(encoded))
    if not key_file.exists():
        _, raw = MasterKey.generate()
        create_once(key_file, base64.b64encode(raw) + b"\n")
    return MasterKey(base64.b64decode(key_file.read_bytes().strip()))


def create_once(path: Path, content: bytes) -> None:
    """Create ``path`` (mode 0600, directory 0700) holding ``content``, unless another
    process created it first: then its file stands, so every worker loads the same key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)  # atomic, and refuses to replace an existing key
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


def write_key_file(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(base64.b64encode(raw) + b"\n")
    temporary.replace(path)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(data_key: bytes, version: int, plaintext: bytes, context: bytes) -> bytes:
    """AES-GCM with the record's context as associated data, so a ciphertext moved to
    another gallery or field does not decrypt."""
    nonce = secrets.token_bytes(_NONCE)
    header = _HEADER.pack(_FORMAT, version)
    return header + nonce + AESGCM(data_key).encrypt(nonce, plaintext, header + context)


def sealed_version(blob: bytes) -> int:
    form, version = _HEADER.unpack_from(blob)
    if form != _FORMAT:
        raise CryptoError(f"Unknown ciphertext format {form}.")
    return int(version)


def open_sealed(data_key: bytes, blob: bytes, context: bytes) -> bytes:
    header = blob[: _HEADER.size]
    nonce = blob[_HEADER.size : _HEADER.size + _NONCE]
    try:
        return AESGCM(data_key).decrypt(nonce, blob[_HEADER.size + _NONCE :], header + context)
    except InvalidTag:
        raise CryptoError(
            "A stored record failed authentication: it was altered or moved."
        ) from None
