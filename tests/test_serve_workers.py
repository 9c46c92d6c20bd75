"""`serve --workers 2` as a real process tree: a first start on an empty data directory,
repeated (one migration and one set of keys, then the workers), and an operator's limit and
failed-login throttling that hold across the workers through Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serving import Server

STARTS = 3
REDIS = "redis://127.0.0.1:6379/0"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biomatch.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("attempt", range(STARTS))
def test_a_first_start_with_two_workers_comes_up_whole(tmp_path: Path, attempt: int) -> None:
    data = tmp_path / "data"
    with Server(data, workers=2) as server:
        assert len(server.worker_pids()) >= 2
        assert httpx.get(f"{server.url}/v1/me").status_code == 401
        assert server.alive()
    log = server.text()
    assert "Traceback" not in log and "already exists" not in log, log
    keys = sorted(p.name for p in (data / "keys").iterdir())
    assert keys == ["audit_ed25519.pem", "master.key"], keys  # one of each, no stray copies
    verified = cli("audit", "verify", "--data-dir", str(data))
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["intact"] is True


def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS}: {exc}")
    return REDIS


def issue_token(data: Path, name: str, role: str) -> str:
    created = cli("operator", "create", name, "--role", role, "--data-dir", str(data))
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["token"])


def statuses(url: str, headers: dict[str, str], count: int) -> list[int]:
    """``count`` requests, 8 at a time, each on a connection of its own."""

    def one(_: int) -> int:
        return httpx.get(f"{url}/v1/me", headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def test_an_operators_limit_and_login_throttling_hold_across_workers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = issue_token(data, "fay", "field_operator")
    env = {
        "BIOMATCH_REDIS_URL": redis_url(),
        "BIOMATCH_REQUEST_RATE_PER_MINUTE": "12",
        "BIOMATCH_LOGIN_FAILURES_PER_MINUTE": "6",
    }
    with Server(data, workers=2, env=env) as server:
        answered = statuses(server.url, {"Authorization": f"Bearer {token}"}, 40)
        wrong = statuses(server.url, {"Authorization": "Bearer bm_0123456789ab_guess"}, 30)
    # 12 a minute, and at most one more refilled while the requests ran
    assert 12 <= answered.count(200) <= 13, answered
    assert answered.count(200) + answered.count(429) == 40
    assert 6 <= wrong.count(401) <= 7 and wrong.count(401) + wrong.count(429) == 30, wrong
