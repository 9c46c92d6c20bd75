"""Migrations carry data written under an older schema: a database at revision 0001 with a
sample, its template and two encounters (one fused) is upgraded to head, on SQLite and, where
one answers, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from biomatch.store.database import Database, alembic_config

OLD_ROWS = [
    "INSERT INTO galleries (id, name, description, created_at, revision, policy) "
    "VALUES (1, 'g', '', '2026-11-30 10:00:00', 1, '{}')",
    "INSERT INTO subjects (id, gallery_id, external_id, created_at) "
    "VALUES (1, 1, 's', '2026-11-30 10:00:00')",
    "INSERT INTO samples (id, subject_id, modality, image_sha256, width, height, quality, "
    "capture, created_at) VALUES (1, 1, 'face', 'ab', 10, 10, '{}', '{}', '2026-11-30 10:00:00')",
    "INSERT INTO templates (sample_id, subject_id, gallery_id, model_key, data, created_at) "
    "VALUES (1, 1, 1, 'face/a@1', 'x', '2026-11-30 10:00:00')",
]


def _encounter(id_: str, model: str, threshold: float, target: float) -> str:
    return (
        "INSERT INTO encounters (id, kind, operator, gallery_id, started_at, ended_at, purpose, "
        "legal_authority, model_key, threshold, target_fmr, probe_sha256, probe_quality, result) "
        f"VALUES ('{id_}', 'verify', 'fay', 1, '2026-11-30 10:00:00', '2026-11-30 10:00:01', "
        f"'identity_check', 'Act s.4', '{model}', {threshold}, {target}, 'ab', '{{}}', '{{}}')"
    )


def upgrade_old_database(url: str) -> Database:
    database = Database(url)
    with database.engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with database.engine.begin() as connection:
        for statement in [
            *OLD_ROWS,
            _encounter("e-single", "face/a@1", 0.93, 0.001),
            _encounter("e-fused", "face/a@1+finger/b@1", 0.001, 0.001),
        ]:
            connection.execute(text(statement))
    assert not database.is_current()
    database.ensure_current()
    assert database.is_current()
    return database


def check_upgraded(database: Database) -> None:
    with database.engine.begin() as connection:
        thresholds = dict(
            connection.execute(text("SELECT id, score_threshold FROM encounters")).all()
        )
        assert thresholds == {"e-single": pytest.approx(0.93), "e-fused": None}
        image = connection.execute(text("SELECT image FROM samples")).scalar_one()
        assert image is None  # kept images start with new enrolments
        connection.execute(
            text(
                "INSERT INTO templates (sample_id, subject_id, gallery_id, model_key, data, "
                "created_at) VALUES (1, 1, 1, 'face/b@2', 'y', '2026-12-01 10:00:00')"
            )
        )  # a second model's template of the same sample
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO templates (sample_id, subject_id, gallery_id, model_key, data, "
                "created_at) VALUES (1, 1, 1, 'face/b@2', 'z', '2026-12-01 10:00:00')"
            )
        )
    database.dispose()


def test_sqlite_database_of_0001_upgrades_with_its_data(tmp_path: Path) -> None:
    check_upgraded(upgrade_old_database(f"sqlite:///{tmp_path / 'old.sqlite3'}"))


def test_postgresql_database_of_0001_upgrades_with_its_data(postgres_url: str) -> None:
    check_upgraded(upgrade_old_database(postgres_url))
