"""Per-gallery data keys: created on first use, cached unwrapped in memory, rotated on demand."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability import crypto
from biomatch.errors import CryptoError
from biomatch.store.models import GalleryKey


class Vault:
    def __init__(self, master: crypto.MasterKey) -> None:
        self.master = master
        self._keys: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()

    def seal(self, session: Session, gallery_id: int, plaintext: bytes, context: str) -> bytes:
        version, key = self._active_key(session, gallery_id)
        return crypto.seal(key, version, plaintext, _context(gallery_id, context))

    def open(self, session: Session, gallery_id: int, blob: bytes, context: str) -> bytes:
        key = self._key(session, gallery_id, crypto.sealed_version(blob))
        return crypto.open_sealed(key, blob, _context(gallery_id, context))

    def new_version(self, session: Session, gallery_id: int) -> int:
        """Make a fresh data key the active one; the caller re-seals records, then retires
        the old versions with ``retire_inactive``."""
        for record in session.scalars(
            select(GalleryKey).where(GalleryKey.gallery_id == gallery_id)
        ):
            record.active = False
        latest = session.scalars(
            select(GalleryKey.version)
            .where(GalleryKey.gallery_id == gallery_id)
            .order_by(GalleryKey.version.desc())
        ).first()
        return self._create(session, gallery_id, (latest or 0) + 1)

    def retire_inactive(self, session: Session, gallery_id: int) -> int:
        """Destroy the wrapped old data keys: records sealed with them become unreadable."""
        retired = session.scalars(
            select(GalleryKey).where(GalleryKey.gallery_id == gallery_id, ~GalleryKey.active)
        ).all()
        for record in retired:
            session.delete(record)
            self._keys.pop((gallery_id, record.version), None)
        return len(retired)

    def destroy_gallery(self, session: Session, gallery_id: int) -> int:
        """Destroy every data key of the gallery: whatever was sealed with them is unreadable."""
        records = session.scalars(
            select(GalleryKey).where(GalleryKey.gallery_id == gallery_id)
        ).all()
        for record in records:
            session.delete(record)
        with self._lock:
            for key in [key for key in self._keys if key[0] == gallery_id]:
                del self._keys[key]
        return len(records)

    def rewrap_all(self, session: Session, new_master: crypto.MasterKey) -> int:
        records = session.scalars(select(GalleryKey)).all()
        for record in records:
            record.wrapped_key = new_master.wrap(self._unwrap(record))
            record.master_key_id = new_master.key_id
        self.master = new_master
        return len(records)

    def _active_key(self, session: Session, gallery_id: int) -> tuple[int, bytes]:
        record = session.scalars(
            select(GalleryKey).where(GalleryKey.gallery_id == gallery_id, GalleryKey.active)
        ).first()
        if record is None:
            version = self._create(session, gallery_id, 1)
            return version, self._keys[(gallery_id, version)]
        return record.version, self._key(session, gallery_id, record.version)

    def _key(self, session: Session, gallery_id: int, version: int) -> bytes:
        with self._lock:
            cached = self._keys.get((gallery_id, version))
        if cached is not None:
            return cached
        record = session.scalars(
            select(GalleryKey).where(
                GalleryKey.gallery_id == gallery_id, GalleryKey.version == version
            )
        ).first()
        if record is None:
            raise CryptoError(f"Data key {version} of gallery {gallery_id} no longer exists.")
        key = self._unwrap(record)
        with self._lock:
            self._keys[(gallery_id, version)] = key
        return key

    def _create(self, session: Session, gallery_id: int, version: int) -> int:
        key = crypto.new_data_key()
        session.add(
            GalleryKey(
                gallery_id=gallery_id,
                version=version,
                wrapped_key=self.master.wrap(key),
                master_key_id=self.master.key_id,
                active=True,
            )
        )
        session.flush()
        with self._lock:
            self._keys[(gallery_id, version)] = key
        return version

    def check_master(self, session: Session) -> None:
        """Fail fast (``CryptoError``) where the configured master key does not unwrap the
        stored data keys: one key is unwrapped, no record is decrypted."""
        record = session.scalars(select(GalleryKey).limit(1)).first()
        if record is not None:
            self._unwrap(record)

    def _unwrap(self, record: GalleryKey) -> bytes:
        if record.master_key_id != self.master.key_id:
            raise CryptoError(
                f"Gallery data keys were wrapped by master key {record.master_key_id}, "
                f"not by the configured key {self.master.key_id}."
            )
        return self.master.unwrap(record.wrapped_key)


def _context(gallery_id: int, context: str) -> bytes:
    return f"gallery:{gallery_id}:{context}".encode()
