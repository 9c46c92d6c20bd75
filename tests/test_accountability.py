"""Accountability through the real HTTP API: the whole role matrix, every refusal path,
encounters and adjudication, retention, consent and opt-out. Needs no shared data: the
face photo is the one matplotlib ships."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from biomatch.accountability.roles import MATRIX, Action, Role
from biomatch.api import create_app
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, ROLES, SEARCH, issue_tokens, settings_for_tests

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


class World:
    """A running service with one operator per role, a gallery open to 1:N, one enrolled
    subject and one encounter."""

    def __init__(self, client: TestClient, photo: bytes) -> None:
        self.client = client
        self.photo = photo
        self.core: BioMatch = client.app.state.core  # type: ignore[attr-defined]
        self.headers = issue_tokens(self.core)
        self.post("admin", "/v1/galleries", json={"name": "g", "policy": OPEN_POLICY})
        self.enrol("g", "hopper")
        self.encounter = self.search("g", "identify").json()["encounter_id"]

    def call(self, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers[role] if role else {}
        return self.client.request(method, path, headers=headers, **kwargs)

    def post(self, role: str, path: str, **kwargs: Any) -> Any:
        response = self.call(role, "POST", path, **kwargs)
        assert response.status_code < 400, response.text
        return response

    def image(self, field: str = "image") -> dict[str, Any]:
        return {field: ("p.jpg", self.photo, "image/jpeg")}

    def enrol(self, gallery: str, subject: str, **data: Any) -> Any:
        return self.call(
            "enroller",
            "POST",
            f"/v1/galleries/{gallery}/subjects",
            data={"subject_id": subject, **data},
            files=self.image("images"),
        )

    def search(self, gallery: str, mode: str, role: str = "field_operator", **data: Any) -> Any:
        fields = {**SEARCH, **data}
        if mode == "verify":
            fields.setdefault("subject_id", "hopper")
        return self.call(
            role, "POST", f"/v1/galleries/{gallery}/{mode}", data=fields, files=self.image()
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, grace_hopper_module: bytes) -> Iterator[World]:
    settings = settings_for_tests(tmp_path_factory.mktemp("acct"))
    with TestClient(create_app(settings)) as client:
        yield World(client, grace_hopper_module)


@pytest.fixture(scope="module")
def grace_hopper_module() -> bytes:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        data: bytes = handle.read()
    return data


# Every route under /v1, with the action the matrix decides it by and a valid request.
Request = Callable[[World], tuple[str, str, dict[str, Any]]]
ENDPOINTS: list[tuple[Action | None, Request]] = [
    (None, lambda w: ("GET", "/v1/me", {})),
    (
        Action.OPERATOR_MANAGE,
        lambda w: ("POST", "/v1/operators", {"json": {"name": unique("op"), "role": "auditor"}}),
    ),
    (Action.OPERATOR_MANAGE, lambda w: ("GET", "/v1/operators", {})),
    (Action.OPERATOR_MANAGE, lambda w: ("DELETE", f"/v1/operators/{w.throwaway_operator()}", {})),
    (Action.GALLERY_CREATE, lambda w: ("POST", "/v1/galleries", {"json": {"name": unique("g")}})),
    (Action.GALLERY_READ, lambda w: ("GET", "/v1/galleries", {})),
    (Action.GALLERY_READ, lambda w: ("GET", "/v1/galleries/g", {})),
    (Action.GALLERY_DELETE, lambda w: ("DELETE", f"/v1/galleries/{w.throwaway_gallery()}", {})),
    (
        Action.SUBJECT_ENROL,
        lambda w: (
            "POST",
            "/v1/galleries/g/subjects",
            {"data": {"subject_id": unique("s")}, "files": w.image("images")},
        ),
    ),
    (
        Action.SUBJECT_ENROL,
        lambda w: ("POST", "/v1/galleries/g/subjects/hopper/samples", {"files": w.image("images")}),
    ),
    (Action.SUBJECT_READ, lambda w: ("GET", "/v1/galleries/g/subjects/hopper", {})),
    (Action.SUBJECT_ERASE, lambda w: ("DELETE", f"/v1/galleries/g/subjects/{w.throwaway()}", {})),
    (
        Action.OPTOUT_RECORD,
        lambda w: ("POST", "/v1/optouts", {"json": {"person_ref": unique("p")}}),
    ),
    (
        Action.SEARCH,
        lambda w: (
            "POST",
            "/v1/galleries/g/verify",
            {"data": {**SEARCH, "subject_id": "hopper"}, "files": w.image()},
        ),
    ),
    (
        Action.SEARCH,
        lambda w: ("POST", "/v1/galleries/g/identify", {"data": SEARCH, "files": w.image()}),
    ),
    (Action.ENCOUNTER_READ, lambda w: ("GET", "/v1/encounters", {})),
    (Action.ENCOUNTER_READ, lambda w: ("GET", f"/v1/encounters/{w.encounter}", {})),
    (
        Action.ADJUDICATE,
        lambda w: (
            "POST",
            f"/v1/encounters/{w.fresh_encounter()}/adjudications",
            {"json": {"subject_id": "hopper", "decision": "inconclusive", "reason": "matrix walk"}},
        ),
    ),
    (
        Action.SUBJECT_ENROL,
        lambda w: (
            "POST",
            "/v1/galleries/g/fingers",
            {
                "data": {"subject_id": unique("f"), "finger_positions": ["1"]},
                "files": w.image("fingers"),
            },
        ),
    ),
    (
        Action.SUBJECT_ENROL,
        lambda w: (
            "POST",
            f"/v1/galleries/g/subjects/{unique('i')}/iso19794-2",
            {"files": {"record": ("r.iso", b"FMR\x00 not a record")}},
        ),
    ),
    (Action.SUBJECT_READ, lambda w: ("GET", "/v1/galleries/g/subjects/hopper/iso19794-2", {})),
    (
        Action.SEARCH,
        lambda w: (
            "POST",
            "/v1/galleries/g/verify-fused",
            {"data": {**SEARCH, "subject_id": "hopper"}, "files": w.image("face")},
        ),
    ),
    (
        Action.SEARCH,
        lambda w: (
            "POST",
            "/v1/galleries/g/identify-fused",
            {"data": SEARCH, "files": w.image("face")},
        ),
    ),
    (Action.AUDIT_READ, lambda w: ("GET", "/v1/audit", {})),
    (Action.AUDIT_READ, lambda w: ("GET", "/v1/audit/verify", {})),
    (Action.AUDIT_READ, lambda w: ("GET", "/v1/audit/export.csv", {})),
    (Action.AUDIT_READ, lambda w: ("GET", "/v1/reports/transparency", {})),
    (Action.AUDIT_READ, lambda w: ("GET", "/v1/reports/transparency.html", {})),
    (Action.RETENTION_RUN, lambda w: ("POST", "/v1/retention/run", {})),
    (
        Action.IMAGE_READ,
        lambda w: ("GET", f"/v1/galleries/g/subjects/hopper/samples/{w.hopper_sample()}/image", {}),
    ),
    (Action.IMAGE_READ, lambda w: ("GET", f"/v1/encounters/{w.encounter}/probe-images/1", {})),
    (
        Action.TEMPLATES_UPGRADE,
        lambda w: ("POST", "/v1/galleries/g/templates/upgrade", {"json": {"model": "face"}}),
    ),
    (None, lambda w: ("GET", "/v1/capabilities", {})),
    (Action.CAPTURE_CHECK, lambda w: ("POST", "/v1/quality-check", {"files": w.image()})),
    (
        Action.SEARCH,
        lambda w: ("POST", "/v1/offline-discards", {"json": {"discards": [DISCARD]}}),
    ),
    (Action.ADJUDICATE, lambda w: ("GET", "/v1/review-queue", {})),
    (
        Action.CANDIDATE_IMAGE_READ,
        lambda w: (
            "GET",
            f"/v1/encounters/{w.encounter}/candidates/hopper/reference-image",
            {},
        ),
    ),
]

DISCARD = {
    "queued_at": "2026-01-01T10:00:00Z",
    "discarded_at": "2026-01-01T10:05:00Z",
    "gallery": "g",
    "mode": "identify",
    "purpose": "identity_check",
}

# What an allowed call answers where it is not a success, by route: the request is valid for
# the role but not for the data (a face photo as a finger, a broken record, a face subject's
# finger record, a probe the open policy did not keep). Every other allowed call succeeds.
ALLOWED_BUT_REFUSED: dict[tuple[str, str], tuple[int, str]] = {
    ("POST", "/v1/galleries/{gallery}/fingers"): (422, "quality_rejected"),
    ("POST", "/v1/galleries/{gallery}/subjects/{subject_id}/iso19794-2"): (
        422,
        "invalid_template",
    ),
    ("GET", "/v1/galleries/{gallery}/subjects/{subject_id}/iso19794-2"): (
        409,
        "no_reference_template",
    ),
    ("GET", "/v1/encounters/{encounter_id}/probe-images/{item}"): (404, "image_not_kept"),
}


def _throwaway(self: World) -> str:
    subject = unique("t")
    assert self.enrol("g", subject).status_code == 201
    return subject


def _throwaway_gallery(self: World) -> str:
    name = unique("gone-g")
    self.core.create_gallery(self.core_admin(), name)
    return name


def _throwaway_operator(self: World) -> str:
    name = unique("gone")
    self.core.create_operator(self.core_admin(), name, Role.AUDITOR)
    return name


def _hopper_sample(self: World) -> int:
    from biomatch.accountability.principal import Principal

    reviewer = Principal(None, "walk-reader", Role.REVIEWER)
    return self.core.get_subject(reviewer, "g", "hopper").samples[0].sample_id


def _fresh_encounter(self: World) -> str:
    return str(self.search("g", "identify").json()["encounter_id"])


def _core_admin(self: World) -> Any:
    from biomatch.accountability.principal import SYSTEM

    return SYSTEM


World.throwaway = _throwaway  # type: ignore[attr-defined]
World.throwaway_operator = _throwaway_operator  # type: ignore[attr-defined]
World.throwaway_gallery = _throwaway_gallery  # type: ignore[attr-defined]
World.fresh_encounter = _fresh_encounter  # type: ignore[attr-defined]
World.hopper_sample = _hopper_sample  # type: ignore[attr-defined]
World.core_admin = _core_admin  # type: ignore[attr-defined]


def _routes(world: World) -> set[tuple[str, str]]:
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    return routes - {("GET", "/v1/health")}


def _route_of(world: World, method: str, path: str) -> tuple[str, str]:
    templates = [r for m, r in _routes(world) if m == method and _matches(r, path)]
    assert len(templates) == 1, f"{method} {path} matches {templates}"
    return method, templates[0]


def test_the_walk_covers_every_route(world: World) -> None:
    walked = set()
    for _, request in ENDPOINTS:
        method, path, _ = request(world)
        walked.add(_route_of(world, method, path))
    assert walked == _routes(world)
    assert set(ALLOWED_BUT_REFUSED) <= walked


def _matches(template: str, path: str) -> bool:
    parts, actual = template.split("/"), path.split("/")
    return len(parts) == len(actual) and all(
        p.startswith("{") or p == a for p, a in zip(parts, actual, strict=True)
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("index", range(len(ENDPOINTS)))
def test_role_matrix(world: World, role: str, index: int) -> None:
    action, request = ENDPOINTS[index]
    method, path, kwargs = request(world)
    response = world.call(role, method, path, **kwargs)
    if action is None or Role(role) in MATRIX[action]:
        # Allowed: never refused by role; it succeeds, or fails for its data as listed.
        expected = ALLOWED_BUT_REFUSED.get(_route_of(world, method, path))
        if expected is None:
            assert response.status_code < 300, (role, path, response.text)
        else:
            status, code = expected
            assert response.status_code == status, (role, path, response.text)
            assert response.json()["error"]["code"] == code
    else:
        assert response.status_code == 403, (role, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("index", range(len(ENDPOINTS)))
def test_every_route_needs_a_token(world: World, index: int) -> None:
    method, path, kwargs = ENDPOINTS[index][1](world)
    response = world.call(None, method, path, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    bad = world.client.request(
        method, path, headers={"Authorization": "Bearer bm_abc_wrong"}, **kwargs
    )
    assert bad.status_code == 401


def test_revoked_token_stops_working(world: World) -> None:
    issued = world.core.create_operator(_core_admin(world), unique("temp"), Role.AUDITOR)
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert world.client.get("/v1/me", headers=headers).status_code == 200
    assert world.call("admin", "DELETE", f"/v1/operators/{issued.name}").status_code == 200
    assert world.client.get("/v1/me", headers=headers).status_code == 401


# -- every search carries a purpose and an authority -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"purpose": None}, "purpose"),
        ({"legal_authority": None}, "legal_authority"),
        ({"purpose": "curiosity"}, None),
    ],
)
def test_search_without_context_is_refused_and_nothing_is_searched(
    world: World, fields: dict[str, Any], missing: str | None
) -> None:
    before = len(world.core.list_encounters(_reviewer(world), 1000))
    data = {k: v for k, v in {**SEARCH, **fields}.items() if v is not None}
    response = world.call(
        "field_operator", "POST", "/v1/galleries/g/identify", data=data, files=world.image()
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "search_context_required"
    if missing:
        assert missing in error["details"]["fields"]
    assert len(world.core.list_encounters(_reviewer(world), 1000)) == before


def _reviewer(world: World) -> Any:
    return world.core.authenticate(world.headers["reviewer"]["Authorization"].split()[1])


def test_gallery_policy_limits_modes_roles_and_case_references(world: World) -> None:
    world.post("admin", "/v1/galleries", json={"name": "border", "preset": "travellers"})
    response = world.search("border", "identify")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_forbids")
    world.post("admin", "/v1/galleries", json={"name": "cases", "preset": "investigations"})
    response = world.search("cases", "identify")
    assert response.json()["error"]["code"] == "search_context_required"
    assert world.search("cases", "identify", case_reference="C-2026-17").status_code == 200
    closed = {**OPEN_POLICY, "search_roles": ["auditor"]}
    world.post("admin", "/v1/galleries", json={"name": "closed", "policy": closed})
    response = world.search("closed", "identify")
    assert response.json()["error"]["code"] == "policy_forbids"


def test_identify_returns_leads_never_a_bare_match(world: World) -> None:
    body = world.search("g", "identify").json()
    assert body["result_type"] == "investigative_leads"
    assert "decision" not in body and "match" not in body
    # Other tests enrol the same photo as other subjects, some with fewer templates than
    # hopper (whose estimated FMR counts its several templates): hopper is a lead, not
    # necessarily the first.
    assert "hopper" in [candidate["subject_id"] for candidate in body["candidates"]]


def test_encounter_records_who_why_and_what(world: World) -> None:
    body = world.search("g", "identify", location="Gate 4", notes="random check").json()
    encounter = world.call("reviewer", "GET", f"/v1/encounters/{body['encounter_id']}").json()
    assert encounter["operator"] == "field_operator"
    assert encounter["purpose"] == SEARCH["purpose"]
    assert encounter["legal_authority"] == SEARCH["legal_authority"]
    assert encounter["location"] == "Gate 4"
    assert encounter["model"].startswith("face/")
    assert encounter["probe_quality"]["inter_eye_distance_px"] > 0
    assert encounter["candidates"][0]["status"] == "lead"
    assert encounter["probe_image_kept"] is False  # OPEN_POLICY keeps no probes


def test_field_operators_see_only_their_own_encounters(world: World) -> None:
    issued = world.core.create_operator(_core_admin(world), unique("fo"), Role.FIELD_OPERATOR)
    other = {"Authorization": f"Bearer {issued.token}"}
    assert world.client.get(f"/v1/encounters/{world.encounter}", headers=other).status_code == 404
    assert world.client.get("/v1/encounters", headers=other).json() == []


def test_two_person_adjudication(world: World) -> None:
    world.post("admin", "/v1/galleries", json={"name": "inv", "preset": "investigations"})
    assert world.enrol("inv", "suspect").status_code == 201
    found = world.search("inv", "identify", case_reference="C-9").json()
    path = f"/v1/encounters/{found['encounter_id']}/adjudications"
    confirm = {"subject_id": "suspect", "decision": "confirm", "reason": "same scar, same ear"}
    first = world.post("reviewer", path, json=confirm).json()
    assert first["candidates"][0]["status"] == "lead"  # 1 of 2 confirmations
    again = world.call("reviewer", "POST", path, json=confirm)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "adjudication_refused")
    second = world.post("reviewer2", path, json=confirm).json()
    assert second["candidates"][0]["status"] == "confirmed"
    assert [a["reviewer"] for a in second["adjudications"]] == ["reviewer", "reviewer2"]
    stranger = {**confirm, "subject_id": "nobody"}
    assert world.call("reviewer", "POST", path, json=stranger).status_code == 409
    verified = world.search("inv", "verify", subject_id="suspect", case_reference="C-9").json()
    response = world.call(
        "reviewer", "POST", f"/v1/encounters/{verified['encounter_id']}/adjudications", json=confirm
    )
    assert response.status_code == 409


# -- consent, opt-out, retention -------------------------------------------------------------


def test_consent_is_required_where_the_gallery_says_so(world: World) -> None:
    world.post("admin", "/v1/galleries", json={"name": "trav", "preset": "travellers"})
    response = world.enrol("trav", "t-1")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "consent_required")
    consent = {"consent_notice_version": "v3", "consent_purpose": "border", "consent_term_days": 30}
    assert world.enrol("trav", "t-1", **consent).status_code == 201


def test_opt_out_blocks_enrolment_and_verification_but_not_enforcement(world: World) -> None:
    world.post("admin", "/v1/galleries", json={"name": "trav2", "preset": "travellers"})
    world.post("admin", "/v1/galleries", json={"name": "inv2", "preset": "investigations"})
    consent = {"consent_notice_version": "v3", "consent_purpose": "border"}
    assert world.enrol("trav2", "doc-77", **consent).status_code == 201
    erased = world.post("enroller", "/v1/optouts", json={"person_ref": "doc-77"}).json()
    assert erased["enrolments_erased"] == 1
    response = world.enrol("trav2", "doc-77", **consent)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "opted_out")
    response = world.search("trav2", "verify", subject_id="doc-77")
    assert response.json()["error"]["code"] == "opted_out"
    assert world.enrol("inv2", "doc-77").status_code == 201


def test_retention_deletes_expired_probes_and_subjects(world: World) -> None:
    policy = {**OPEN_POLICY, "probe_retention_hours": 1, "enrolment_retention_days": 1}
    world.post("admin", "/v1/galleries", json={"name": "short", "policy": policy})
    assert world.enrol("short", "brief").status_code == 201
    found = world.search("short", "identify").json()
    encounter = world.call("reviewer", "GET", f"/v1/encounters/{found['encounter_id']}").json()
    assert encounter["probe_image_kept"] is True
    result = world.core.run_retention(now=datetime.now(UTC) + timedelta(days=2))
    assert result.probes_deleted >= 1 and result.subjects_deleted >= 1
    encounter = world.call("reviewer", "GET", f"/v1/encounters/{found['encounter_id']}").json()
    assert encounter["probe_image_kept"] is False
    assert world.search("short", "identify").json()["candidates"] == []
    log = world.call("auditor", "GET", "/v1/audit", params={"limit": 10000}).json()
    deletions = [e for e in log if e["action"].startswith("retention.")]
    assert {e["details"]["rule"] for e in deletions} >= {
        "probe_retention_hours",
        "enrolment_retention_days=1",
    }
    assert all("template" not in str(e["details"]) for e in deletions)


def test_rate_limit_per_operator(tmp_path: Any, grace_hopper_module: bytes) -> None:
    settings = settings_for_tests(tmp_path).model_copy(update={"search_rate_per_minute": 2})
    with TestClient(create_app(settings)) as client:
        world = World(client, grace_hopper_module)  # makes one search
        assert world.search("g", "identify").status_code == 200
        refused = world.search("g", "identify")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1


def test_audit_log_records_every_change_and_search(world: World) -> None:
    # Each action it checks for is made here, so the test holds whatever ran before it.
    before = world.call("auditor", "GET", "/v1/audit", params={"limit": 10000}).json()
    world.core.create_operator(_core_admin(world), unique("logged"), Role.AUDITOR)
    world.post("admin", "/v1/galleries", json={"name": unique("lg"), "policy": OPEN_POLICY})
    erased = world.throwaway()  # type: ignore[attr-defined]
    world.call("admin", "DELETE", f"/v1/galleries/g/subjects/{erased}")
    world.search("g", "verify")
    path = f"/v1/encounters/{world.fresh_encounter()}/adjudications"  # type: ignore[attr-defined]
    verdict = {"subject_id": "hopper", "decision": "inconclusive", "reason": "audit test"}
    world.post("reviewer", path, json=verdict)
    log = world.call("auditor", "GET", "/v1/audit", params={"limit": 10000}).json()
    assert log[: len(before)] == before  # appended to, never rewritten
    log = log[len(before) :]
    actions = {entry["action"] for entry in log}
    assert {
        "operator.create",
        "gallery.create",
        "subject.enrol",
        "search.identify",
        "search.verify",
        "subject.erase",
        "encounter.adjudicate",
    } <= actions
    search = next(e for e in log if e["action"] == "search.identify")
    # What EU AI Act Art. 12(3) asks for: period, database, input, and (via adjudication) who.
    assert search["gallery"] and search["encounter"] and search["details"]["probe_sha256"]
    assert len(search["details"]["period"]) == 2
    assert world.call("auditor", "GET", "/v1/audit/verify").json()["intact"]
    report = world.call("auditor", "GET", "/v1/reports/transparency").json()
    assert report["searches_by_purpose"][SEARCH["purpose"]] >= 1
    csv = world.call("auditor", "GET", "/v1/audit/export.csv").text
    assert csv.splitlines()[0].startswith("seq,at,actor")
