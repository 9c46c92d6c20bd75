from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from biomatch.accountability.principal import SYSTEM
from biomatch.accountability.roles import Role
from biomatch.config import Settings
from biomatch.service import BioMatch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FACE_FIXTURES = SHARED / "face" / "fixtures"
EXAMPLES = FACE_FIXTURES / "face_recognition_repo" / "examples"
LFW = SHARED / "face" / "lfw"


def shared_file(path: Path) -> Path:
    """The path, or a skip with a clear message where ../shared/data is absent."""
    if not path.exists():
        pytest.skip(f"needs the evaluation data at {path} (../shared/data); absent here")
    return path


ReadExample = Callable[[str], bytes]


@pytest.fixture
def example() -> ReadExample:
    """example('obama.jpg') -> bytes of a face_recognition example photo."""

    def read(name: str) -> bytes:
        return shared_file(EXAMPLES / name).read_bytes()

    return read


@pytest.fixture
def grace_hopper() -> bytes:
    """A real face photo that matplotlib ships: unit tests need no shared data for it."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        data: bytes = handle.read()
    return data


ROLES = ("admin", "enroller", "field_operator", "reviewer", "auditor")
SEARCH = {"purpose": "identity_check", "legal_authority": "Identity Checks Act s.4"}
OPEN_POLICY = {"modes": ["verify", "identify"], "search_roles": ["field_operator"]}


def settings_for_tests(data_dir: Path) -> Settings:
    """Settings for tests: a private data directory, rate limits out of the way."""
    return Settings(
        data_dir=data_dir, search_rate_per_minute=100_000, request_rate_per_minute=100_000
    )


def issue_tokens(core: BioMatch, prefix: str = "") -> dict[str, dict[str, str]]:
    """One operator per role (two reviewers); role -> Authorization header."""
    headers = {}
    for role in (*ROLES, "reviewer2"):
        issued = core.create_operator(SYSTEM, f"{prefix}{role}", Role(role.rstrip("2")))
        headers[role] = {"Authorization": f"Bearer {issued.token}"}
    return headers


# PostgreSQL tests: BIOMATCH_TEST_POSTGRES points them elsewhere; each gets a schema of its
# own, dropped afterwards, and skips where no server answers.
SERVER = os.environ.get(
    "BIOMATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    schema = f"biomatch_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(SERVER)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {SERVER}: {exc.orig}")
    yield f"{SERVER}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
