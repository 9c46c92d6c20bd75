"""Data files readable by the service's user only: the data directory 0700, its files 0600."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("biomatch.store")

SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def secure_data_dir(data_dir: Path, database_url: str) -> None:
    """Create the data directory (0700) and the SQLite file (0600) before SQLite does, so
    neither is ever readable by others; tighten existing ones that are."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(data_dir, 0o700)
    database = sqlite_file(database_url)
    if database is None:
        return
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite copies its mode
    for suffix in SQLITE_SUFFIXES:
        _tighten(database.with_name(database.name + suffix), 0o600)


def _tighten(path: Path, mode: int) -> None:
    try:
        if path.exists() and path.stat().st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except PermissionError:
        log.warning("cannot restrict %s to mode %o: it is not ours", path, mode)


def key_in_data_dir_warning(key_file: Path, data_dir: Path, from_environment: bool) -> str | None:
    """A master key kept inside the data directory travels with every copy of it."""
    if from_environment or not key_file.resolve().is_relative_to(data_dir.resolve()):
        return None
    return (
        f"warning: the master key {key_file} sits inside the data directory {data_dir}: a "
        "copy or backup of the directory then holds the key to everything in it; keep it "
        "elsewhere (BIOMATCH_MASTER_KEY_FILE) or in the environment (BIOMATCH_MASTER_KEY)"
    )
