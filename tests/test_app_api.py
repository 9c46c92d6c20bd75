"""The server side of the capture app and the review console, through the HTTP API: the
quality check, capabilities, training galleries, offline discards, the review queue,
candidate photos, audit filters, the report's new figures, the pages and their headers, TLS.
Needs no shared data: the face photo is the one matplotlib ships."""

from __future__ import annotations

import io
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Role
from biomatch.api import create_app
from biomatch.api.web import WEB_ROOT
from biomatch.cli import app as cli
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, SEARCH, issue_tokens, settings_for_tests

KEEPING = {**OPEN_POLICY, "probe_retention_hours": 24, "confirmations_required": 2}
TRAINING = {**OPEN_POLICY, "training": True}


class Service:
    def __init__(self, client: TestClient, photo: bytes) -> None:
        self.client = client
        self.photo = photo
        self.core: BioMatch = client.app.state.core  # type: ignore[attr-defined]
        self.headers = issue_tokens(self.core)
        for name, policy in {"ops": KEEPING, "practice": TRAINING}.items():
            self.call("admin", "POST", "/v1/galleries", json={"name": name, "policy": policy})
            self.call(
                "enroller",
                "POST",
                f"/v1/galleries/{name}/subjects",
                data={"subject_id": "hopper"},
                files={"images": ("h.jpg", photo, "image/jpeg")},
            )

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers[role], **kwargs)
        assert response.status_code < 500, response.text
        return response

    def search(self, gallery: str, mode: str = "identify", **fields: Any) -> Any:
        return self.call(
            "field_operator",
            "POST",
            f"/v1/galleries/{gallery}/{mode}",
            data={**SEARCH, **fields},
            files={"image": ("p.jpg", self.photo, "image/jpeg")},
        )

    def check(self, image: bytes, role: str = "field_operator") -> Any:
        return self.call(
            role, "POST", "/v1/quality-check", files={"image": ("c.jpg", image, "image/jpeg")}
        )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = handle.read()
    settings = settings_for_tests(tmp_path_factory.mktemp("app"))
    with TestClient(create_app(settings)) as client:
        yield Service(client, photo)


def darkened(photo: bytes, factor: float) -> bytes:
    image = ImageEnhance.Brightness(Image.open(io.BytesIO(photo))).enhance(factor)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def encounter_count(service: Service) -> int:
    return len(service.call("auditor", "GET", "/v1/encounters").json())


# -- the quality check ------------------------------------------------------------------------


def test_quality_check_passes_a_good_capture_and_stores_nothing(service: Service) -> None:
    before = encounter_count(service)
    verdict = service.check(service.photo).json()
    assert verdict["passed"] is True
    assert verdict["reasons"] == []
    assert verdict["model"].startswith("face/")
    assert {c["name"] for c in verdict["checks"]} >= {"brightness_min", "yaw_deg"}
    assert encounter_count(service) == before
    entry = service.call("auditor", "GET", "/v1/audit?action=capture.quality_check").json()[-1]
    assert entry["details"]["passed"] is True
    assert entry["details"]["image_sha256"]


def test_quality_check_names_the_reasons_of_a_dark_capture(service: Service) -> None:
    verdict = service.check(darkened(service.photo, 0.18)).json()
    assert verdict["passed"] is False
    names = [reason["name"] for reason in verdict["reasons"]]
    assert "brightness_min" in names, verdict
    message = next(r["message"] for r in verdict["reasons"] if r["name"] == "brightness_min")
    assert "under-exposed" in message


def test_quality_check_says_when_there_is_no_face(service: Service) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(blank, "JPEG")
    verdict = service.check(blank.getvalue()).json()
    assert verdict["passed"] is False
    assert [reason["name"] for reason in verdict["reasons"]] == ["face_count"]


def test_quality_check_refuses_what_is_not_an_image(service: Service) -> None:
    response = service.check(b"not an image")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_image")


def four_finger_check(service: Service, image: bytes, **fields: str) -> Any:
    return service.call(
        "field_operator",
        "POST",
        "/v1/quality-check",
        data={"modality": "finger", "capture": "contactless", "layout": "four_finger", **fields},
        files={"image": ("hand.png", image, "image/png")},
    )


def test_quality_check_of_a_four_finger_photo_without_its_fingers(service: Service) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (600, 800), (128, 128, 128)).save(blank, "PNG")
    verdict = four_finger_check(service, blank.getvalue(), hand="left").json()
    assert verdict["passed"] is False
    assert [reason["name"] for reason in verdict["reasons"]] == ["fingers_found"]
    assert "four fingers" in verdict["reasons"][0]["message"]
    assert verdict["parts"] == []
    assert (verdict["width"], verdict["height"]) == (600, 800)
    entry = service.call("auditor", "GET", "/v1/audit?action=capture.quality_check").json()[-1]
    assert entry["details"]["layout"] == "four_finger"
    assert entry["details"]["parts_passed"] == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [({}, "invalid_request"), ({"hand": "middle"}, "invalid_request")],
)
def test_quality_check_of_a_four_finger_photo_needs_its_hand(
    service: Service, fields: dict[str, str], code: str
) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (600, 800), (128, 128, 128)).save(blank, "PNG")
    response = four_finger_check(service, blank.getvalue(), **fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/v1/quality-check", "image"),
        ("POST", "/v1/galleries/ops/identify", "image"),
        ("POST", "/v1/galleries/ops/identify-fused", "fingers"),
    ],
)
def test_a_hand_without_a_four_finger_layout_is_refused(
    service: Service, method: str, path: str, field: str
) -> None:
    """A hand without layout=four_finger would take a photo of four fingers as one
    fingertip: the request is refused, with the fix."""
    blank = io.BytesIO()
    Image.new("RGB", (600, 800), (128, 128, 128)).save(blank, "PNG")
    response = service.call(
        "field_operator",
        method,
        path,
        data={"modality": "finger", "capture": "contactless", "hand": "left", **SEARCH},
        files={field: ("hand.png", blank.getvalue(), "image/png")},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "layout=four_finger" in error["message"]


def test_a_face_capture_has_no_four_finger_layout(service: Service) -> None:
    response = service.call(
        "field_operator",
        "POST",
        "/v1/quality-check",
        data={"layout": "four_finger", "hand": "left"},
        files={"image": ("c.jpg", service.photo, "image/jpeg")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


# -- capabilities and training ----------------------------------------------------------------


def test_capabilities_list_what_the_operator_may_choose(service: Service) -> None:
    body = service.call("field_operator", "GET", "/v1/capabilities").json()
    galleries = {g["name"]: g for g in body["galleries"]}
    assert galleries["ops"]["modes"] == ["verify", "identify"]
    assert galleries["ops"]["training"] is False
    assert galleries["practice"]["training"] is True
    assert galleries["ops"]["confirmations_required"] == 2
    assert "identity_check" in body["purposes"]
    assert "search" in body["may"]
    kinds = {(p["plugin"], p["modality"], p["capture_kind"]) for p in body["plugins"]}
    assert ("face", "face", "default") in kinds
    assert ("finger", "finger", "contact") in kinds
    reviewer = service.call("reviewer", "GET", "/v1/capabilities").json()
    assert reviewer["galleries"] == []  # reviewers do not search


def test_a_training_search_never_touches_an_operational_gallery(service: Service) -> None:
    refused = service.search("ops", training="true")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "policy_forbids"


def test_training_searches_are_flagged_and_left_out_of_the_statistics(service: Service) -> None:
    before = service.call("auditor", "GET", "/v1/reports/transparency").json()
    found = service.search("practice", training="true").json()
    encounter = service.call("auditor", "GET", f"/v1/encounters/{found['encounter_id']}").json()
    assert encounter["training"] is True
    after = service.call("auditor", "GET", "/v1/reports/transparency").json()
    assert after["searches"] == before["searches"]
    assert after["training_searches_excluded"] == before["training_searches_excluded"] + 1
    assert "practice" not in after["searches_by_gallery"]
    audit = service.call("auditor", "GET", "/v1/audit?action=search.&gallery=practice").json()
    assert audit[-1]["details"]["training"] is True


def test_configured_legal_authorities_are_the_only_ones_accepted(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path).model_copy(
        update={"legal_authorities": ["Identity Checks Act s.4"]}
    )
    with TestClient(create_app(settings)) as client:
        core: BioMatch = client.app.state.core  # type: ignore[attr-defined]
        headers = issue_tokens(core)
        client.post(
            "/v1/galleries", json={"name": "g", "policy": OPEN_POLICY}, headers=headers["admin"]
        )
        fields = {**SEARCH, "legal_authority": "Something Else Act", "subject_id": "x"}
        response = client.post(
            "/v1/galleries/g/verify",
            data=fields,
            files={"image": ("p.jpg", b"x", "image/jpeg")},
            headers=headers["field_operator"],
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "search_context_required"
        body = client.get("/v1/capabilities", headers=headers["field_operator"]).json()
        assert body["legal_authorities"] == ["Identity Checks Act s.4"]


def test_offline_discards_are_audited(service: Service) -> None:
    discard = {
        "queued_at": "2026-03-01T09:00:00Z",
        "discarded_at": "2026-03-01T09:10:00Z",
        "gallery": "ops",
        "mode": "identify",
        "purpose": "identity_check",
        "reason": "wrong person",
    }
    response = service.call(
        "field_operator", "POST", "/v1/offline-discards", json={"discards": [discard]}
    )
    assert response.json() == {"recorded": 1}
    entry = service.call("auditor", "GET", "/v1/audit?action=capture.offline_discarded").json()
    assert entry[-1]["gallery"] == "ops"
    assert entry[-1]["details"]["reason"] == "wrong person"
    assert entry[-1]["actor"] == "field_operator"


# -- review -----------------------------------------------------------------------------------


def test_review_queue_oldest_first_until_judged(service: Service) -> None:
    first = service.search("ops").json()["encounter_id"]
    second = service.search("ops").json()["encounter_id"]
    queue = [i["encounter_id"] for i in service.call("reviewer", "GET", "/v1/review-queue").json()]
    assert queue.index(first) < queue.index(second)
    confirm = {"subject_id": "hopper", "decision": "confirm", "reason": "same face, same ears"}
    service.call("reviewer", "POST", f"/v1/encounters/{first}/adjudications", json=confirm)
    mine = [i["encounter_id"] for i in service.call("reviewer", "GET", "/v1/review-queue").json()]
    assert first not in mine and second in mine
    theirs = service.call("reviewer2", "GET", "/v1/review-queue").json()
    assert first in [i["encounter_id"] for i in theirs]  # 1 of 2 confirmations
    service.call("reviewer2", "POST", f"/v1/encounters/{first}/adjudications", json=confirm)
    done = service.call("reviewer2", "GET", "/v1/review-queue").json()
    assert first not in [i["encounter_id"] for i in done]
    status = service.call("reviewer", "GET", f"/v1/encounters/{first}").json()["candidates"]
    assert status[0]["status"] == "confirmed"


def test_a_searcher_never_sees_their_own_encounters_in_the_queue(service: Service) -> None:
    found = service.search("ops").json()["encounter_id"]
    same_name = Principal(None, "field_operator", Role.REVIEWER)
    assert found not in [i.encounter_id for i in service.core.review_queue(same_name)]
    other = Principal(None, "someone-else", Role.REVIEWER)
    assert found in [i.encounter_id for i in service.core.review_queue(other)]


def test_candidate_photo_for_the_searcher_and_reviewers_only(service: Service) -> None:
    found = service.search("ops").json()["encounter_id"]
    path = f"/v1/encounters/{found}/candidates/hopper/reference-image"
    assert service.call("field_operator", "GET", path).content == service.photo
    assert service.call("reviewer", "GET", path).content == service.photo
    issued = service.core.create_operator(
        Principal(None, "system", Role.ADMIN), "fo-other", Role.FIELD_OPERATOR
    )
    other = service.client.get(path, headers={"Authorization": f"Bearer {issued.token}"})
    assert (other.status_code, other.json()["error"]["code"]) == (404, "encounter_not_found")
    assert service.call("auditor", "GET", path).status_code == 403
    stranger = f"/v1/encounters/{found}/candidates/nobody/reference-image"
    assert service.call("reviewer", "GET", stranger).status_code == 409
    entry = service.call("auditor", "GET", "/v1/audit?action=image.candidate.read").json()[-1]
    assert (entry["encounter"], entry["subject"]) == (found, "hopper")


# -- audit log and report ---------------------------------------------------------------------


def test_audit_log_filters(service: Service) -> None:
    service.search("ops", purpose="border_control")
    rows = service.call("auditor", "GET", "/v1/audit?purpose=border_control").json()
    assert rows and all(r["details"]["purpose"] == "border_control" for r in rows)
    by_actor = service.call("auditor", "GET", "/v1/audit?actor=enroller").json()
    assert by_actor and {r["actor"] for r in by_actor} == {"enroller"}
    searches = service.call("auditor", "GET", "/v1/audit?action=search.").json()
    assert searches and all(r["action"].startswith("search.") for r in searches)
    day = rows[-1]["at"][:10]
    same_day = service.call("auditor", "GET", f"/v1/audit?since={day}&until={day}").json()
    assert same_day
    assert service.call("auditor", "GET", "/v1/audit?until=2000-01-01").json() == []
    page = service.call("auditor", "GET", "/v1/audit?limit=2").json()
    after = service.call("auditor", "GET", f"/v1/audit?limit=2&after_seq={page[-1]['seq']}")
    assert after.json()[0]["seq"] == page[-1]["seq"] + 1
    newest = service.call("auditor", "GET", "/v1/audit?newest_first=true&limit=3").json()
    assert [r["seq"] for r in newest] == sorted((r["seq"] for r in newest), reverse=True)
    older = f"/v1/audit?newest_first=true&limit=3&before_seq={newest[-1]['seq']}"
    assert service.call("auditor", "GET", older).json()[0]["seq"] == newest[-1]["seq"] - 1
    bad = service.call("auditor", "GET", "/v1/audit?since=yesterday")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")


def test_transparency_report_per_day_and_delays(service: Service) -> None:
    report = service.call("auditor", "GET", "/v1/reports/transparency").json()
    days = report["searches_per_day_by_purpose"]
    assert sum(sum(per.values()) for per in days.values()) == report["searches"]
    by_gallery = report["searches_per_day_by_gallery"]
    assert sum(sum(per.values()) for per in by_gallery.values()) == report["searches"]
    if report["identify_adjudicated"]:
        assert report["adjudication_delay_hours"]["max"] >= 0


# -- pages, headers, TLS ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/app/", "/console/", "/v1/health", "/app/app.js"])
def test_security_headers_on_every_page(service: Service, path: str) -> None:
    response = service.client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "camera=(self)" in response.headers["Permissions-Policy"]


def test_https_answers_ask_for_https_from_then_on(service: Service) -> None:
    response = service.client.get("https://testserver/app/")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in service.client.get("/app/").headers


def test_api_answers_are_not_cached(service: Service) -> None:
    response = service.call("field_operator", "GET", "/v1/capabilities")
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_hold_no_inline_script() -> None:
    for page in WEB_ROOT.glob("*/index.html"):
        text = page.read_text()
        assert "<script>" not in text and "onclick" not in text and "style=" not in text, page


def test_home_leads_to_the_app(service: Service) -> None:
    response = service.client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/app/"


def test_the_app_is_installable(service: Service) -> None:
    manifest = service.client.get("/app/manifest.webmanifest").json()
    assert manifest["start_url"] == "/app/" and manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert service.client.get(f"/app/{icon['src']}").status_code == 200
    assert service.client.get("/app/sw.js").status_code == 200


def test_app_shell_is_under_its_budget() -> None:
    shell = [p for p in WEB_ROOT.rglob("*") if p.suffix in {".html", ".js", ".css"}]
    assert sum(p.stat().st_size for p in shell) < 200_000


runner = CliRunner()


def test_tls_self_signed_pair_loads(tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "tls",
            "self-signed",
            "--out-dir",
            str(tmp_path),
            "--host",
            "phone.local",
            "--host",
            "192.168.1.20",
        ],
    )
    assert result.exit_code == 0, result.output
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert (tmp_path / "key.pem").stat().st_mode & 0o077 == 0
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "phone.local" in names.get_values_for_type(x509.DNSName)


def test_serve_wants_both_tls_files(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--data-dir", str(tmp_path), "--tls-cert", "c.pem"])
    assert result.exit_code == 2
    assert "--tls-key" in result.output


def test_serve_hands_the_tls_pair_to_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: started.append(options))
    monkeypatch.setenv("BIOMATCH_DATA_DIR", str(tmp_path))  # restored after the test
    assert runner.invoke(cli, ["tls", "self-signed", "--out-dir", str(tmp_path)]).exit_code == 0
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    args = ["serve", "--data-dir", str(tmp_path / "data"), "--tls-cert", cert, "--tls-key", key]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (started[0]["ssl_certfile"], started[0]["ssl_keyfile"]) == (cert, key)
