"""Engine, sessions and schema migration (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from biomatch.store import locks

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = _make_engine(url, immediate=True) if _is_sqlite(url) else self.engine
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)

    def migrate(self) -> None:
        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_current(self) -> bool:
        """Whether the schema is at the newest migration (one query, no migration run)."""
        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head

    def ensure_current(self) -> None:
        """Migrate where the schema is behind; ``biomatch db upgrade`` and ``serve`` (before
        it forks workers) migrate, so a running service's processes only check."""
        if not self.is_current():
            self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together, or not at all."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """Like ``transaction``, but on SQLite it takes the write lock when it begins, so two
        processes (the service and a CLI command) never interleave their writes."""
        with self._write_sessions() as session, session.begin():
            yield session

    def lease(self, name: str) -> locks.Lease:
        """A lock one process of the deployment holds while it lives (``store/locks``)."""
        return locks.Lease(self.engine, name)

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """A critical section one process of the deployment runs at a time."""
        return locks.exclusive(self.engine, name)

    def dispose(self) -> None:
        self.engine.dispose()
        self._write_engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _make_engine(url: str, *, immediate: bool = False) -> Engine:
    if not _is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        if immediate:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, so deletion is real deletion on disk.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    if immediate:

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
