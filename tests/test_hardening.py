"""Hardening through the HTTP API: failed-login throttling, shared limits, revocation rules,
bounded and validated input, timestamps. No face model runs here."""

from __future__ import annotations

import uuid
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
        else RedisBuckets(redis_client(redis_or_skip()), uuid.uuid4().hex)
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


@pytest.mark.store("sqlite")
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


# -- bounded, validated input --------------------------------------------------------------


def auditor_headers(client: TestClient) -> dict[str, str]:
    core = client.app.state.core  # type: ignore[attr-defined]
    token = core.create_operator(SYSTEM, "aud", Role.AUDITOR).token
    return {"Authorization": f"Bearer {token}"}


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_query_integers_are_bounded(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    auditor = auditor_headers(client)
    assert client.get("/v1/audit", params={"after_seq": 2**31 - 1}, headers=auditor).json() == []
    refused = client.get("/v1/audit", params={"after_seq": 2**31}, headers=auditor)
    assert error_of(refused) == (422, "invalid_request")


def test_policy_retention_has_a_maximum(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    for field, value in (("enrolment_retention_days", 10**12), ("probe_retention_hours", 10**9)):
        body = {"name": "g", "policy": {field: value}}
        assert error_of(client.post("/v1/galleries", json=body, headers=admin)) == (
            422,
            "invalid_request",
        )
    body = {"name": "g", "policy": {"enrolment_retention_days": 36_500}}
    assert client.post("/v1/galleries", json=body, headers=admin).status_code == 201


def test_a_stored_policy_beyond_the_bounds_is_read_as_the_maximum() -> None:
    from biomatch.accountability.policy import stored_policy

    policy = stored_policy(
        {"enrolment_retention_days": 10**12, "probe_retention_hours": 10**9}, "g"
    )
    assert (policy.enrolment_retention_days, policy.probe_retention_hours) == (36_500, 87_600)


@pytest.mark.parametrize(
    "subject_id",
    ["a\x00b", "line\nbreak", "bell\x07", "evil\u202etxt", "zero\u200bwidth", " padded", "a/b"],
    ids=["nul", "newline", "bel", "rtl-override", "zero-width", "padded", "slash"],
)
def test_identifiers_must_print(api: tuple[TestClient, dict[str, str]], subject_id: str) -> None:
    client, admin = api
    core = client.app.state.core  # type: ignore[attr-defined]
    client.post("/v1/galleries", json={"name": "g"}, headers=admin)
    enroller = {
        "Authorization": f"Bearer {core.create_operator(SYSTEM, 'en', Role.ENROLLER).token}"
    }
    response = client.post(
        "/v1/galleries/g/subjects",
        data={"subject_id": subject_id},
        files=[("images", ("p.jpg", b"not decoded: refused first", "image/jpeg"))],
        headers=enroller,
    )
    assert error_of(response) == (422, "invalid_identifier")


def test_identifiers_are_nfc_normalised() -> None:
    from biomatch.core.state import check_name

    assert check_name("subject id", "Jose\u0301") == "Jos\u00e9"


def test_blank_authority_and_case_reference_are_refused(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    core = client.app.state.core  # type: ignore[attr-defined]
    policy = {"modes": ["identify"], "case_reference_required": True}
    client.post("/v1/galleries", json={"name": "inv", "policy": policy}, headers=admin)
    field = {
        "Authorization": f"Bearer {core.create_operator(SYSTEM, 'fo', Role.FIELD_OPERATOR).token}"
    }
    image = {"image": ("p.jpg", b"x" * 100, "image/jpeg")}
    blank_authority = {"purpose": "identity_check", "legal_authority": "     "}
    response = client.post(
        "/v1/galleries/inv/identify", data=blank_authority, files=image, headers=field
    )
    assert error_of(response) == (422, "search_context_required")
    blank_case = {"purpose": "identity_check", "legal_authority": "Act s.4", "case_reference": "  "}
    response = client.post(
        "/v1/galleries/inv/identify", data=blank_case, files=image, headers=field
    )
    assert error_of(response) == (422, "search_context_required")


def test_a_huge_form_field_and_too_many_images_get_413(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    core = client.app.state.core  # type: ignore[attr-defined]
    client.post("/v1/galleries", json={"name": "g"}, headers=admin)
    enroller = {
        "Authorization": f"Bearer {core.create_operator(SYSTEM, 'en', Role.ENROLLER).token}"
    }
    image = ("images", ("p.jpg", b"x" * 100, "image/jpeg"))
    huge = client.post(
        "/v1/galleries/g/subjects",
        data={"subject_id": "x" * (10 * 1024 * 1024)},
        files=[image],
        headers=enroller,
    )
    assert error_of(huge) == (413, "form_field_too_large")
    many = client.post(
        "/v1/galleries/g/subjects", data={"subject_id": "s"}, files=[image] * 11, headers=enroller
    )
    assert error_of(many) == (413, "too_many_images")


def test_timestamps_are_utc_and_agree_between_post_and_get(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    from datetime import datetime

    client, admin = api
    created = client.post("/v1/galleries", json={"name": "g"}, headers=admin).json()["created_at"]
    fetched = client.get("/v1/galleries/g", headers=admin).json()["created_at"]
    assert created == fetched
    assert datetime.fromisoformat(created).utcoffset() is not None
    operators = client.get("/v1/operators", headers=admin).json()
    assert all(datetime.fromisoformat(o["created_at"]).utcoffset() is not None for o in operators)


def test_the_openapi_document_lists_every_refusal_with_the_error_schema(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    assert "ErrorBody" in document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            if path != "/v1/health":
                assert {"401", "403", "422", "429"} <= statuses, (method, path)
            if "{" in path:
                assert "404" in statuses, (method, path)
            for status in statuses - {"200", "201", "204"}:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


# -- retention and gallery deletion ---------------------------------------------------------


def test_one_failing_gallery_does_not_stop_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from biomatch.accountability.policy import GalleryPolicy
    from biomatch.service import BioMatch
    from biomatch.store import Gallery, Subject

    core = BioMatch(settings_for_tests(tmp_path))
    policy = GalleryPolicy(enrolment_retention_days=1)
    for name in ("bad", "good"):
        core.create_gallery(SYSTEM, name, policy=policy)
    old = datetime.now(UTC) - timedelta(days=3)
    with core.db.transaction() as session:
        for gallery in session.query(Gallery):
            session.add(Subject(gallery_id=gallery.id, external_id="old", created_at=old))
    real = core._expire_subjects

    def failing(session: Any, actor: Any, gallery: Any, now: Any) -> int:
        if gallery.name == "bad":
            raise OverflowError("date value out of range")
        return real(session, actor, gallery, now)

    monkeypatch.setattr(core, "_expire_subjects", failing)
    result = core.run_retention()
    assert result.subjects_deleted == 1
    assert [(f.gallery, f.error) for f in result.failures] == [
        ("bad", "OverflowError: date value out of range")
    ]
    with core.db.transaction() as session:
        left = {g.name: len(g.subjects) for g in session.query(Gallery)}
    assert left == {"bad": 1, "good": 0}
    failed = [e for e in core.audit_entries(AUDITOR, 0, 1000) if e.action == "retention.failed"]
    assert [e.gallery for e in failed] == ["bad"]


def test_an_admin_deletes_a_gallery_and_everything_in_it(
    tmp_path: Path, grace_hopper: bytes
) -> None:
    from sqlalchemy import text

    from biomatch.accountability.policy import GalleryPolicy
    from biomatch.errors import Forbidden, GalleryNotFound
    from biomatch.results import SearchContext
    from biomatch.service import BioMatch

    core = BioMatch(settings_for_tests(tmp_path))
    enroller = core.authenticate(core.create_operator(SYSTEM, "en", Role.ENROLLER).token)
    field = core.authenticate(core.create_operator(SYSTEM, "fo", Role.FIELD_OPERATOR).token)
    policy = GalleryPolicy(modes=["verify", "identify"], probe_retention_hours=24)
    core.create_gallery(SYSTEM, "g", policy=policy)
    core.create_gallery(SYSTEM, "other", policy=policy)
    core.enrol(enroller, "g", "hopper", [grace_hopper])
    core.enrol(enroller, "other", "hopper", [grace_hopper])
    context = SearchContext(purpose="identity_check", legal_authority="Act s.4")
    core.identify(field, "g", grace_hopper, context)
    with pytest.raises(Forbidden):
        core.delete_gallery(enroller, "g", "not yours")
    out = core.delete_gallery(SYSTEM, "g", "programme ended")
    assert (out.subjects_deleted, out.samples_deleted, out.encounters_deleted) == (1, 1, 1)
    assert out.data_keys_destroyed == 1
    with pytest.raises(GalleryNotFound):
        core.get_gallery(SYSTEM, "g")
    assert [g.name for g in core.list_galleries(SYSTEM)] == ["other"]
    with core.db.engine.connect() as connection:
        left = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("subjects", "samples", "templates", "encounters", "gallery_keys")
        }
    # only the other gallery's
    assert left == {"subjects": 1, "samples": 1, "templates": 1, "encounters": 0, "gallery_keys": 1}
    core.create_gallery(SYSTEM, "g", policy=policy)  # the name is free again, the id is not
    assert core.identify(field, "g", grace_hopper, context).candidates == []
    assert core.identify(field, "other", grace_hopper, context).candidates[0].subject_id == "hopper"
    entry = next(e for e in core.audit_entries(AUDITOR, 0, 1000) if e.action == "gallery.delete")
    assert entry.gallery == "g" and entry.details["reason"] == "programme ended"
    assert core.verify_audit(AUDITOR).intact


# -- memory and CPU ---------------------------------------------------------------------------


def encoded(size: tuple[int, int], fmt: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 90, 70)).save(buffer, fmt)
    return buffer.getvalue()


def test_a_jpeg_above_the_budget_is_decoded_reduced_another_format_refused() -> None:
    from biomatch.errors import ImageTooLarge
    from biomatch.imaging import decode_image

    limits = {"max_bytes": 10**8, "max_pixels": 40_000_000, "decode_budget": 1_000_000}
    reduced = decode_image(encoded((2400, 1800), "JPEG"), **limits)
    assert reduced.shape == (450, 600, 3)  # DCT-scaled by 4 while decoding
    assert decode_image(encoded((1000, 1000), "JPEG"), **limits).shape == (1000, 1000, 3)
    with pytest.raises(ImageTooLarge, match="only JPEG"):
        decode_image(encoded((2400, 1800), "PNG"), **limits)


def test_a_full_extraction_queue_answers_busy_with_retry_after() -> None:
    import threading
    import time

    from biomatch.core.gate import ExtractionGate
    from biomatch.errors import Busy

    gate = ExtractionGate(running=1, waiting=1)
    release, entered = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.admit():
            entered.set()
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    entered.wait(5)
    deadline = time.monotonic() + 5
    while gate._admitted < 2 and time.monotonic() < deadline:  # one running, one waiting
        time.sleep(0.01)
    with pytest.raises(Busy) as refused, gate.admit():
        pass
    assert refused.value.http_status == 503 and refused.value.details["retry_after_s"] >= 1
    release.set()
    for thread in threads:
        thread.join()
    with gate.admit():  # room again
        pass
