"""Locks every process of a deployment shares, on the store under test (a SQLite file's lock
files, or PostgreSQL advisory locks): one retention job per deployment."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from biomatch.api.app import create_app
from biomatch.results import RetentionOut
from biomatch.service import BioMatch
from biomatch.store import Database
from tests.conftest import settings_for_tests


@pytest.fixture
def url(tmp_path: Path) -> str:
    return settings_for_tests(tmp_path).resolved_database_url


def test_a_lease_has_one_holder_until_released(url: str) -> None:
    first, second = Database(url), Database(url)  # as two processes would open it
    try:
        a, b = first.lease("job"), second.lease("job")
        assert a.try_acquire() and a.held
        assert a.try_acquire()  # a holder asking again keeps it
        assert not b.try_acquire() and not b.held
        assert second.lease("another job").try_acquire()  # names are independent
        a.release()
        assert b.try_acquire()
        assert not a.try_acquire()
        b.release()
    finally:
        first.dispose()
        second.dispose()


def test_a_lease_is_freed_when_its_holder_goes(url: str) -> None:
    first, second = Database(url), Database(url)
    try:
        lease = first.lease("job")
        assert lease.try_acquire()
        if first.engine.dialect.name == "postgresql":
            # The holder's connection ends (as when its process dies): the server frees it.
            assert lease._connection is not None
            lease._connection.invalidate()
            lease._connection = None
        else:
            assert lease._file is not None
            lease._file.close()  # what the kernel does at the holder's exit
            lease._file = None
        assert second.lease("job").try_acquire()
    finally:
        first.dispose()
        second.dispose()


def test_exclusive_sections_do_not_overlap(url: str) -> None:
    databases = [Database(url) for _ in range(3)]
    inside: list[int] = []
    overlaps: list[int] = []

    def work(db: Database) -> None:
        for _ in range(5):
            with db.exclusive("index:g"):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.002)
                inside.pop()

    threads = [threading.Thread(target=work, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert overlaps == []


def test_one_service_process_runs_retention_and_another_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_tests(tmp_path).model_copy(update={"retention_interval_s": 0.05})
    runs: dict[int, int] = {}

    def counting(self: BioMatch, *args: object, **kwargs: object) -> RetentionOut:
        runs[id(self)] = runs.get(id(self), 0) + 1
        return RetentionOut(probes_deleted=0, subjects_deleted=0)

    monkeypatch.setattr(BioMatch, "run_retention", counting)
    cores = [BioMatch(settings), BioMatch(settings)]  # two workers of one deployment
    clients = [TestClient(create_app(core=core)) for core in cores]
    for client in clients:
        client.__enter__()
    try:
        time.sleep(0.8)
        assert len(runs) == 1 and max(runs.values()) >= 3  # one holds the lease and runs
        holder = next(i for i, core in enumerate(cores) if id(core) in runs)
    except BaseException:
        for client in clients:
            client.__exit__(None, None, None)
        raise
    clients[holder].__exit__(None, None, None)  # the holder stops and releases the lease
    other = cores[1 - holder]
    try:
        time.sleep(0.8)
        assert runs.get(id(other), 0) >= 3  # the other takes over within a period or two
    finally:
        clients[1 - holder].__exit__(None, None, None)
