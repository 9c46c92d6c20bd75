"""Fingers through the real HTTP API, with FVC2002 DB1_B impressions from ../shared/data
(skipped where absent): enrol, verify and identify with ``modality=finger``."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from biomatch.api import create_app
from tests.conftest import (
    OPEN_POLICY,
    SEARCH,
    SHARED,
    issue_tokens,
    settings_for_tests,
    shared_file,
)

FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"
FINGER = {"modality": "finger", **SEARCH}
H: dict[str, dict[str, str]] = {}


def impression(name: str) -> tuple[str, bytes, str]:
    return (f"{name}.tif", shared_file(FVC2002 / f"{name}.tif").read_bytes(), "image/tiff")


def enrol(client: TestClient, subject: str, *names: str) -> Response:
    return client.post(
        "/v1/galleries/fingers/subjects",
        data={"subject_id": subject, **FINGER},
        files=[("images", impression(name)) for name in names],
        headers=H["enroller"],
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    shared_file(FVC2002)
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as test_client:
        H.update(issue_tokens(test_client.app.state.core))  # type: ignore[attr-defined]
        test_client.headers.update(H["field_operator"])
        gallery = {"name": "fingers", "policy": OPEN_POLICY}
        assert (
            test_client.post("/v1/galleries", json=gallery, headers=H["admin"]).status_code == 201
        )
        for subject, names in {"f101": ("101_1", "101_2"), "f102": ("102_1",)}.items():
            response = enrol(test_client, subject, *names)
            assert response.status_code == 201, response.text
        assert enrol(test_client, "f103", "103_1").status_code == 201
        yield test_client


def error_code(response: Response) -> str:
    return str(response.json()["error"]["code"])


def verify(client: TestClient, subject: str, probe: str) -> Response:
    return client.post(
        "/v1/galleries/fingers/verify",
        data={"subject_id": subject, **FINGER},
        files={"image": impression(probe)},
    )


def test_enrolled_finger_records_model_and_quality(client: TestClient) -> None:
    body = client.get("/v1/galleries/fingers/subjects/f101", headers=H["enroller"]).json()
    assert len(body["samples"]) == 2
    sample = body["samples"][0]
    assert sample["modality"] == "finger"
    assert sample["model"].startswith("finger/leader-lnm@")
    assert 0 <= sample["quality"]["nfiq2"] <= 100
    assert sample["quality"]["minutiae_count"] >= 12


def test_verify_accepts_another_impression_of_the_same_finger(client: TestClient) -> None:
    response = verify(client, "f101", "101_5")
    body = response.json()
    assert response.status_code == 200, body
    assert body["decision"] == "match"
    assert body["score"] >= body["score_threshold"]
    assert body["estimated_fmr"] <= body["target_fmr"]
    assert body["model"]["modality"] == "finger"
    assert len(body["comparisons"]) == 2


def test_verify_rejects_another_finger(client: TestClient) -> None:
    body = verify(client, "f102", "101_5").json()
    assert body["decision"] == "no_match"
    assert body["estimated_fmr"] > body["target_fmr"]


def test_identify_ranks_the_mate_first(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/fingers/identify",
        data={"top_k": "3", **FINGER},
        files={"image": impression("103_4")},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["result_type"] == "investigative_leads"
    assert body["candidates"][0]["subject_id"] == "f103"
    assert body["gallery_size"] == 3


def test_a_face_probe_finds_no_face_template_of_a_finger_subject(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/fingers/verify",
        data={"subject_id": "f101", "modality": "face", **SEARCH},
        files={"image": impression("101_5")},
    )
    assert response.status_code == 409 and error_code(response) == "no_reference_template"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_blank_capture_is_rejected_with_named_reasons(client: TestClient) -> None:
    blank = np.full((374, 388), 235, dtype=np.uint8)
    response = client.post(
        "/v1/galleries/fingers/verify",
        data={"subject_id": "f101", **FINGER},
        files={"image": ("blank.png", png(blank), "image/png")},
    )
    assert response.status_code == 422 and error_code(response) == "quality_rejected"
    names = {reason["name"] for reason in response.json()["error"]["details"]["reasons"]}
    assert names <= {"nfiq2", "minutiae_count"} and names


def test_bad_finger_uploads_get_4xx(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/fingers/verify",
        data={"subject_id": "f101", **FINGER},
        files={"image": ("x.tif", b"not an image", "image/tiff")},
    )
    assert response.status_code == 400 and error_code(response) == "invalid_image"
    response = client.post(
        "/v1/galleries/fingers/verify",
        data={"subject_id": "f101", "modality": "iris", **SEARCH},
        files={"image": impression("101_5")},
    )
    assert response.status_code == 422 and error_code(response) == "unknown_modality"


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def test_kept_scanner_images_are_served_as_kept_and_shown_as_png(client: TestClient) -> None:
    policy = {**OPEN_POLICY, "probe_retention_hours": 1}
    created = client.post(
        "/v1/galleries", json={"name": "kept", "policy": policy}, headers=H["admin"]
    )
    assert created.status_code == 201, created.text
    enrolled = client.post(
        "/v1/galleries/kept/subjects",
        data={"subject_id": "k101", **FINGER},
        files=[("images", impression("101_1"))],
        headers=H["enroller"],
    )
    assert enrolled.status_code == 201, enrolled.text
    found = client.post(
        "/v1/galleries/kept/identify", data=FINGER, files={"image": impression("101_5")}
    ).json()["encounter_id"]
    sample = enrolled.json()["samples"][0]["sample_id"]
    kept = {  # the data routes: the bytes as kept (their SHA-256 is in the audit log)
        "101_1": f"/v1/galleries/kept/subjects/k101/samples/{sample}/image",
        "101_5": f"/v1/encounters/{found}/probe-images/1",
    }
    for name, path in kept.items():
        original = client.get(path, headers=H["reviewer"])
        assert original.headers["content-type"] == "image/tiff"
        assert original.content == impression(name)[1]
        shown = client.get(path, params={"view": "true"}, headers=H["reviewer"])
        assert shown.headers["content-type"] == "image/png"  # browsers show no TIFF
        assert np.array_equal(_pixels(shown.content), _pixels(original.content))
    # The app's and the console's candidate photo is always one a browser shows.
    photo = client.get(f"/v1/encounters/{found}/candidates/k101/reference-image")
    assert photo.headers["content-type"] == "image/png"
    assert np.array_equal(_pixels(photo.content), _pixels(impression("101_1")[1]))
