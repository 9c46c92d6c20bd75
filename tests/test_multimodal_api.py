"""Multi-finger enrolment and face+finger fused search through HTTP, with FVC2002 DB1_B
impressions and face photos from ../shared/data (skipped where absent). FVC fingers of
different people stand in for one subject's fingers here (FVC names no persons)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from biomatch.api import create_app
from tests.conftest import (
    EXAMPLES,
    OPEN_POLICY,
    SEARCH,
    SHARED,
    issue_tokens,
    settings_for_tests,
    shared_file,
)

H: dict[str, dict[str, str]] = {}

FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"


def finger(name: str) -> tuple[str, tuple[str, bytes, str]]:
    data = shared_file(FVC2002 / f"{name}.tif").read_bytes()
    return ("fingers", (f"{name}.tif", data, "image/tiff"))


def face(name: str) -> tuple[str, bytes, str]:
    return (name, shared_file(EXAMPLES / name).read_bytes(), "image/jpeg")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    shared_file(FVC2002)
    shared_file(EXAMPLES)
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as test_client:
        H.update(issue_tokens(test_client.app.state.core))  # type: ignore[attr-defined]
        test_client.headers.update(H["field_operator"])
        gallery = {"name": "g", "policy": OPEN_POLICY}
        assert (
            test_client.post("/v1/galleries", json=gallery, headers=H["admin"]).status_code == 201
        )
        for subject, names in {"ann": ("101_1", "102_1"), "bob": ("103_1", "104_1")}.items():
            response = test_client.post(
                "/v1/galleries/g/fingers",
                data={"subject_id": subject, "finger_positions": ["2", "3"]},
                files=[finger(name) for name in names],
                headers=H["enroller"],
            )
            assert response.status_code == 201, response.text
        response = test_client.post(
            "/v1/galleries/g/subjects/ann/samples",
            data={"modality": "face"},
            files=[("images", face("obama.jpg"))],
            headers=H["enroller"],
        )
        assert response.status_code == 201, response.text
        yield test_client


def fused_verify(client: TestClient, subject: str, **form: Any) -> dict[str, Any]:
    files = [finger(name) for name in form.pop("fingers", ())]
    if "face" in form:
        files.append(("face", face(form.pop("face"))))
    response = client.post(
        "/v1/galleries/g/verify-fused", data={"subject_id": subject, **SEARCH, **form}, files=files
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_two_fingers_fuse_into_stronger_evidence_than_either(client: TestClient) -> None:
    body = fused_verify(client, "ann", fingers=("101_4", "102_4"), finger_positions=["2", "3"])
    assert body["decision"] == "match"
    assert body["modalities"] == ["finger"]
    singles = [item["estimated_fmr"] for item in body["contributions"]]
    assert [item["position"] for item in body["contributions"]] == [2, 3]
    assert body["estimated_fmr"] <= min(singles)


def test_fingers_of_another_subject_do_not_match(client: TestClient) -> None:
    body = fused_verify(client, "bob", fingers=("101_4", "102_4"), finger_positions=["2", "3"])
    assert body["decision"] == "no_match"
    assert body["estimated_fmr"] > body["target_fmr"]
    assert body["score"] is None and body["score_threshold"] is None  # fused: no one score


def test_a_finger_is_compared_only_with_the_same_finger_position(client: TestClient) -> None:
    # 101 is enrolled at position 2; claimed as position 3 it meets 102 only.
    body = fused_verify(client, "ann", fingers=("101_4",), finger_positions=["3"])
    assert body["decision"] == "no_match"
    samples = client.get("/v1/galleries/g/subjects/ann", headers=H["enroller"]).json()["samples"]
    position_3 = samples[1]["sample_id"]  # enrolled second: 102_1 at position 3
    assert [c["sample_id"] for c in body["comparisons"]] == [position_3]
    assert body["estimated_fmr"] > body["target_fmr"]
    # Unclaimed (position 0), the same finger meets both of ann's and matches its mate.
    body = fused_verify(client, "ann", fingers=("101_4",))
    assert len(body["comparisons"]) == 2
    assert body["decision"] == "match"


def test_face_and_finger_together_say_which_modalities_contributed(client: TestClient) -> None:
    body = fused_verify(
        client, "ann", fingers=("101_4",), finger_positions=["2"], face="obama2.jpg"
    )
    assert body["decision"] == "match"
    assert body["modalities"] == ["face", "finger"]
    # Bob has no face template: only his finger contributes.
    body = fused_verify(
        client, "bob", fingers=("103_4",), finger_positions=["2"], face="obama2.jpg"
    )
    assert body["modalities"] == ["finger"]


def test_identify_fused_ranks_the_subject_first(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/g/identify-fused",
        data={"finger_positions": ["2", "3"], "top_k": "2", **SEARCH},
        files=[finger("103_5"), finger("104_5")],
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["result_type"] == "investigative_leads"
    assert body["candidates"][0]["subject_id"] == "bob"
    assert body["candidates"][0]["strong"]
    assert body["candidates"][0]["estimated_fmr"] < body["candidates"][1]["estimated_fmr"]
    encounter = client.get(
        f"/v1/encounters/{body['encounter_id']}", headers=H["field_operator"]
    ).json()
    assert encounter["score_threshold"] is None  # two items fused: no one score threshold
    assert encounter["candidates"][0]["subject_id"] == "bob"


def test_malformed_multi_finger_requests_are_422(client: TestClient) -> None:
    cases = [
        {"finger_positions": ["2", "3"], "files": [finger("101_4")]},
        {"finger_positions": ["11"], "files": [finger("101_4")]},
        {"finger_positions": ["2", "2"], "files": [finger("101_4"), finger("101_5")]},
        {"finger_positions": [], "files": [finger(f"10{k}_4") for k in range(1, 6)]},
        {"finger_positions": [], "files": []},
    ]
    for case in cases:
        response = client.post(
            "/v1/galleries/g/verify-fused",
            data={"subject_id": "ann", "finger_positions": case["finger_positions"], **SEARCH},
            files=case["files"] or None,
        )
        assert response.status_code == 422, (case["finger_positions"], response.text)


def test_iso_record_export_and_import_through_http(client: TestClient) -> None:
    response = client.get(
        "/v1/galleries/g/subjects/ann/iso19794-2",
        params={"version": "2005"},
        headers=H["enroller"],
    )
    assert response.status_code == 200
    record = response.content
    assert record[:8] == b"FMR\x00020\x00"
    response = client.post(
        "/v1/galleries/g/subjects/ann-copy/iso19794-2",
        files={"record": ("ann.fmr", record, "application/octet-stream")},
        headers=H["enroller"],
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["samples"]) == 2
    body = fused_verify(client, "ann-copy", fingers=("102_4",), finger_positions=["3"])
    assert body["decision"] == "match"
    response = client.post(
        "/v1/galleries/g/subjects/junk/iso19794-2",
        files={"record": ("junk.fmr", b"FMR\x00030\x00junk", "application/octet-stream")},
        headers=H["enroller"],
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_template"
    response = client.get("/v1/galleries/g/subjects/nobody/iso19794-2", headers=H["enroller"])
    assert response.status_code == 404
