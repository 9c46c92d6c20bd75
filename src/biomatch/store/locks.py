"""Locks shared by every process of a deployment, kept where its processes already meet.

On PostgreSQL a lock is a session-level advisory lock on a connection of its own (the server
frees it when that connection ends, so a crashed holder never keeps it). On a SQLite file,
whose processes share one machine, it is ``flock`` on a file beside the database (the kernel
frees it when the holder exits). An in-memory SQLite database lives in one process: a thread
lock.

``Lease`` is held for as long as its holder lives (one retention job per deployment: the
first process to take it runs the job, the others try again each period and take over when
the holder is gone). ``exclusive`` is held for one critical section (bringing a shared
index up to date, one process at a time).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


# Advisory locks are the server's, not a schema's: the key names the database and schema too,
# so deployments (and test runs) in other schemas of one server never share a lock.
_KEY = "hashtextextended(current_database() || '/' || current_schema() || '/' || :name, 0)"


def lock_file_of(url: str, name: str) -> Path | None:
    """The lock file of ``name`` beside a SQLite database file; None for an in-memory one."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(f"{database}.{safe}.lock")


class Lease:
    """A named lock one process of the deployment holds until it releases it or ends."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self.name = name
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None
        self._thread_lock: threading.Lock | None = None

    @property
    def held(self) -> bool:
        return (
            self._connection is not None
            or self._file is not None
            or (self._thread_lock is not None)
        )

    def try_acquire(self) -> bool:
        """Take the lease where nobody holds it; True where this process holds it (already,
        or now). A holder whose database connection was lost has lost the lease."""
        if self._connection is not None and not _alive(self._connection):
            self._drop_connection()
        if self.held:
            return True
        if self._engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        path = lock_file_of(str(self._engine.url), self.name)
        if path is None:
            return self._acquire_thread_lock()
        return self._acquire_file(path)

    def release(self) -> None:
        if self._connection is not None:
            with suppress(DBAPIError):  # where the connection is gone, the lock went with it
                self._connection.execute(
                    text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": self.name}
                )
            self._drop_connection()
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._thread_lock is not None:
            self._thread_lock.release()
            self._thread_lock = None

    def _acquire_advisory(self) -> bool:
        connection = self._engine.connect()
        got = connection.scalar(text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": self.name})
        connection.commit()
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def _acquire_file(self, path: Path) -> bool:
        handle = open(path, "ab")  # noqa: SIM115 (held open for as long as the lease)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        os.chmod(path, 0o600)
        self._file = handle
        return True

    def _acquire_thread_lock(self) -> bool:
        lock = _thread_lock(f"{self._engine.url}:{self.name}")
        if not lock.acquire(blocking=False):
            return False
        self._thread_lock = lock
        return True

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with suppress(DBAPIError):
                self._connection.close()
            self._connection = None


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Held by one process (and thread) of the deployment at a time, until the block ends."""
    with _thread_lock(f"{engine.url}:{name}"):
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                connection.execute(text(f"SELECT pg_advisory_lock({_KEY})"), {"name": name})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": name})
                    connection.commit()
            return
        path = lock_file_of(str(engine.url), name)
        if path is None:
            yield
            return
        with open(path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _thread_lock(key: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


def _alive(connection: Connection) -> bool:
    try:
        connection.execute(text("SELECT 1"))
        connection.commit()
        return True
    except DBAPIError:
        return False
