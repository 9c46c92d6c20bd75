"""Hardening through the HTTP API: failed-login throttling, shared limits, revocation rules,
bounded and validated input, timestamps. No face model runs here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.ratelimit import LocalBuckets, RateLimiter, RedisBuckets, redis_client
from biomatch.accountability.roles import Role
from biomatch.api import create_app
from biomatch.errors import RateLimited
from tests.conftest import settings_for_tests

AUDITOR = Principal(None, "auditor", Role.AUDITOR)
REDIS = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> str:
    import redis

    try:
        redis_client(REDIS).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS}: {exc}")
    return REDIS


def make_client(data_dir: Path, **overrides: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = settings_for_tests(data_dir).model_copy(update=overrides)
    with TestClient(create_app(settings)) as client:
        core = client.app.state.core  # type: ignore[attr-defined]
        admin = core.create_operator(SYSTEM, "root", Role.ADMIN).token
        yield client, {"Authorization": f"Bearer {admin}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    yield from make_client(tmp_path, login_failures_per_minute=5)


def audit_actions(client: TestClient, admin: dict[str, str]) -> list[str]:
    core = client.app.state.core  # type: ignore[attr-defined]
    return [e.action for e in core.audit_entries(AUDITOR, 0, 10_000)]


def test_failed_logins_are_throttled_per_address_and_audited(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    wrong = {"Authorization": "Bearer bm_0123456789ab_wrong-secret"}
    codes = [client.get("/v1/me", headers=wrong).status_code for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3
    refused = client.get("/v1/me", headers=wrong)
    assert refused.json()["error"]["code"] == "login_throttled"
    assert int(refused.headers["Retry-After"]) >= 1
    actions = audit_actions(client, admin)
    assert actions.count("auth.failed") == 4 and actions.count("auth.throttled") == 1
    # the address is throttled, whatever the token: a right one too, until the bucket refills
    assert client.get("/v1/me", headers=admin).status_code == 429


def test_a_token_id_is_throttled_from_every_address(tmp_path: Path) -> None:
    from biomatch.errors import LoginThrottled, Unauthenticated
    from biomatch.service import BioMatch

    core = BioMatch(
        settings_for_tests(tmp_path).model_copy(update={"login_failures_per_minute": 3})
    )
    token_id = core.create_operator(SYSTEM, "ada", Role.ADMIN).token.split("_")[1]
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        with pytest.raises(Unauthenticated):
            core.authenticate(f"bm_{token_id}_guess", address)
    with pytest.raises(LoginThrottled):
        core.authenticate(f"bm_{token_id}_guess", "10.0.0.4")


def test_no_token_at_all_is_not_a_failed_login(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    assert [client.get("/v1/me").status_code for _ in range(8)] == [401] * 8
    assert client.get("/v1/me", headers=admin).status_code == 200


@pytest.mark.parametrize("backend", ["local", "redis"])
def test_buckets_refuse_past_the_limit_and_say_when(backend: str, tmp_path: Path) -> None:
    buckets = (
        LocalBuckets()
        if backend == "local"
        else RedisBuckets(redis_client(redis_or_skip()), tmp_path.name)
    )
    limit = RateLimiter(3, "searches", buckets)
    for _ in range(3):
        limit.take("fay")
    with pytest.raises(RateLimited) as refused:
        limit.take("fay")
    assert 0 < refused.value.details["retry_after_s"] <= 20
    limit.take("gus")  # another operator's bucket is full


def test_two_cores_share_a_limit_through_redis(tmp_path: Path) -> None:
    from biomatch.service import BioMatch

    settings = settings_for_tests(tmp_path).model_copy(
        update={"redis_url": redis_or_skip(), "request_rate_per_minute": 4}
    )
    first, second = BioMatch(settings), BioMatch(settings)
    token = first.create_operator(SYSTEM, "fay", Role.FIELD_OPERATOR).token
    for core in (first, second, first, second):
        core.authenticate(token)
    with pytest.raises(RateLimited):
        second.authenticate(token)


def test_own_token_and_last_admin_cannot_be_revoked(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    own = client.delete("/v1/operators/root", headers=admin)
    assert own.status_code == 409 and own.json()["error"]["code"] == "revocation_refused"
    second = client.post("/v1/operators", json={"name": "ada", "role": "admin"}, headers=admin)
    ada = {"Authorization": f"Bearer {second.json()['token']}"}
    assert client.delete("/v1/operators/root", headers=ada).status_code == 200
    last = client.delete("/v1/operators/ada", headers=admin)
    assert last.status_code == 401  # root is revoked now
    core = client.app.state.core  # type: ignore[attr-defined]
    from biomatch.errors import RevocationRefused

    with pytest.raises(RevocationRefused):
        core.revoke_operator(SYSTEM, "ada")  # the last active admin


def test_data_files_are_private(tmp_path: Path) -> None:
    from biomatch.service import BioMatch

    data = tmp_path / "data"
    core = BioMatch(settings_for_tests(data))
    core.create_operator(SYSTEM, "ada", Role.ADMIN)
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "keys").stat().st_mode & 0o777 == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "biomatch.sqlite3",
        "master.key",
        "audit_ed25519.pem",
        "audit_witness.jsonl",
    }
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: 0o600 for p in files}


def test_a_key_file_is_created_once(tmp_path: Path) -> None:
    from biomatch.accountability.crypto import create_once

    create_once(tmp_path / "k", b"first")
    create_once(tmp_path / "k", b"second")  # a worker that lost the race
    assert (tmp_path / "k").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_serve_warns_at_start_when_the_master_key_is_in_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from biomatch.accountability.crypto import MasterKey
    from biomatch.cli.serve import prepare

    prepare(settings_for_tests(tmp_path))
    assert "master key" in capsys.readouterr().err
    _, raw = MasterKey.generate()
    monkeypatch.setenv("BIOMATCH_MASTER_KEY", base64.b64encode(raw).decode())
    prepare(settings_for_tests(tmp_path / "elsewhere"))
    assert "master key" not in capsys.readouterr().err
