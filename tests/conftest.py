from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

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


# The dlib face model is an optional extra (compiled): its tests skip where it is absent.
needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None,
    reason="needs the optional dlib face model (make install-dlib); dlib is not installed here",
)
# Each face plug-in BioMatch ships, for tests every face model must pass.
FACE_PLUGINS = ["face-sface", pytest.param("face-dlib", marks=needs_dlib)]

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
    """Settings for tests: a private data directory, rate limits out of the way, and the
    store under test (``BIOMATCH_TEST_STORE``): the test's own PostgreSQL schema where it
    runs on PostgreSQL (one more for a fixture wider than one test)."""
    settings = Settings(
        data_dir=data_dir,
        search_rate_per_minute=100_000,
        request_rate_per_minute=100_000,
        login_failures_per_minute=100_000,
    )
    if TEST_STORE == "postgresql" and settings.database_url is None:
        settings = settings.model_copy(update={"database_url": _SCHEMAS.create()})
    return settings


def issue_tokens(core: BioMatch, prefix: str = "") -> dict[str, dict[str, str]]:
    """One operator per role (two reviewers); role -> Authorization header."""
    headers = {}
    for role in (*ROLES, "reviewer2"):
        issued = core.create_operator(SYSTEM, f"{prefix}{role}", Role(role.rstrip("2")))
        headers[role] = {"Authorization": f"Bearer {issued.token}"}
    return headers


# PostgreSQL: BIOMATCH_TEST_POSTGRES points the tests elsewhere. Every schema a run creates is
# named after the run (parallel runs on one server never meet) and dropped at its end.
SERVER = os.environ.get(
    "BIOMATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# The store the whole suite runs on: "sqlite" (a file in each test's data directory) or
# "postgresql" (the second pass of `make test`): each test a schema of its own, through
# BIOMATCH_DATABASE_URL, which every Settings() of the test and of the processes it starts
# reads. Tests of one store's own behaviour say so with a `store` marker.
TEST_STORE = os.environ.get("BIOMATCH_TEST_STORE", "sqlite")
if TEST_STORE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"BIOMATCH_TEST_STORE={TEST_STORE!r}: 'sqlite' or 'postgresql'")


class _Schemas:
    """PostgreSQL schemas of this test run, created on demand."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self._count = 0
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(SERVER, poolclass=NullPool)
        return self._engine

    def create(self) -> str:
        """A new empty schema; its URL (search_path set to it)."""
        self._count += 1
        schema = f"biomatch_test_{self.run}_{self._count}"
        with self.engine().begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        return f"{SERVER}?options=-csearch_path%3D{schema}"

    def drop(self, url: str) -> None:
        schema = url.rsplit("%3D", 1)[1]
        with self.engine().begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))

    def drop_all(self) -> None:
        """Every schema of this run still there (those of fixtures wider than a test)."""
        if self._engine is None:
            return
        with self._engine.begin() as connection:
            names = connection.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern"),
                {"pattern": f"biomatch_test_{self.run}_%"},
            ).all()
            for name in names:
                connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
        self._engine.dispose()


_SCHEMAS = _Schemas()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "store(name): a test of one store's own behaviour, run on that store only"
    )
    if TEST_STORE == "postgresql":
        try:
            _SCHEMAS.drop(_SCHEMAS.create())
        except OperationalError as exc:
            raise pytest.UsageError(
                f"BIOMATCH_TEST_STORE=postgresql: no server at {SERVER}: {exc.orig}"
            ) from exc


# Modules none of whose tests opens a store (models, metrics, evaluations in memory): the
# PostgreSQL pass leaves them to the SQLite pass, which fails any of their tests that opens a
# database in this process, so the list cannot go stale unnoticed.
STORE_FREE_MODULES = frozenset(
    {
        "test_calibration", "test_error_rates", "test_eval_commands", "test_eval_dataset",
        "test_face", "test_finger_leader_graph", "test_finger_units", "test_fusion",
        "test_fvc_failures", "test_imaging", "test_index", "test_index_compact",
        "test_lfw_report", "test_lfw_slice", "test_metrics",
    }
)  # fmt: skip
_databases_opened: list[str] = []


def _count_databases() -> None:
    """Note every Database this process opens (for the store-free check)."""
    from biomatch.store import database

    original = database.Database.__init__

    def counted(self: database.Database, url: str) -> None:
        _databases_opened.append(url)
        original(self, url)

    database.Database.__init__ = counted  # type: ignore[method-assign]


_count_databases()


def _store_free(item: pytest.Item) -> bool:
    return item.path.stem in STORE_FREE_MODULES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"a test of another store (this pass: {TEST_STORE})")
    for item in items:
        marker = item.get_closest_marker("store")
        if marker is not None and marker.args[0] != TEST_STORE:
            item.add_marker(skip)
    if TEST_STORE == "postgresql":
        config.hook.pytest_deselected(items=[item for item in items if _store_free(item)])
        items[:] = [item for item in items if not _store_free(item)]


def pytest_unconfigure(config: pytest.Config) -> None:
    _SCHEMAS.drop_all()


@pytest.fixture(autouse=True)
def test_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """On PostgreSQL, this test's own schema, for everything it opens; None on SQLite."""
    if TEST_STORE != "postgresql":
        opened = len(_databases_opened)
        yield None
        if _store_free(request.node) and len(_databases_opened) > opened:
            pytest.fail(f"{request.node.path.stem} opens a database: not in STORE_FREE_MODULES")
        return
    url = _SCHEMAS.create()
    monkeypatch.setenv("BIOMATCH_DATABASE_URL", url)
    yield url
    monkeypatch.delenv("BIOMATCH_DATABASE_URL", raising=False)
    _SCHEMAS.drop(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty schema of its own on PostgreSQL (skips where no server answers)."""
    try:
        url = _SCHEMAS.create()
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {SERVER}: {exc.orig}")
    yield url
    _SCHEMAS.drop(url)
