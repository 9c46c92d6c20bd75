"""Through the real HTTP API, with real photos from ../shared/data (skipped where absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from biomatch.api import create_app
from biomatch.config import Settings
from biomatch.modalities import load_modality
from tests.conftest import (
    EXAMPLES,
    OPEN_POLICY,
    SEARCH,
    issue_tokens,
    settings_for_tests,
    shared_file,
)

KNN = EXAMPLES / "knn_examples"


def photo(relative: str) -> bytes:
    return shared_file(EXAMPLES / relative).read_bytes()


def files(*names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (name, photo(name), "image/jpeg")) for name in names]


H: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    shared_file(EXAMPLES)
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as test_client:
        H.update(issue_tokens(test_client.app.state.core))  # type: ignore[attr-defined]
        test_client.headers.update(H["field_operator"])
        response = test_client.post(
            "/v1/galleries", json={"name": "staff", "policy": OPEN_POLICY}, headers=H["admin"]
        )
        assert response.status_code == 201, response.text
        for subject, names in {
            "obama": ("obama.jpg", "obama-720p.jpg"),
            "biden": ("biden.jpg",),
        }.items():
            response = test_client.post(
                "/v1/galleries/staff/subjects",
                data={"subject_id": subject},
                files=files(*names),
                headers=H["enroller"],
            )
            assert response.status_code == 201, response.text
        yield test_client


def error_code(response: Response) -> str:
    return str(response.json()["error"]["code"])


def test_enrolled_subject_lists_its_samples(client: TestClient) -> None:
    body = client.get("/v1/galleries/staff/subjects/obama", headers=H["enroller"]).json()
    assert len(body["samples"]) == 2
    assert body["samples"][0]["model"] == load_modality("face", Settings()).info.key
    assert body["samples"][0]["model"].startswith("face/sface-2021dec-int8bq@")
    assert body["samples"][0]["quality"]["inter_eye_distance_px"] > 28
    assert client.get("/v1/galleries/staff").json()["subjects"] == 2


def test_verify_accepts_the_same_person(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/staff/verify",
        data={"subject_id": "obama", **SEARCH},
        files={"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["decision"] == "match"
    assert body["encounter_id"]
    assert body["score"] >= body["score_threshold"]
    assert body["estimated_fmr"] <= body["target_fmr"]
    assert len(body["comparisons"]) == 2


def test_verify_rejects_another_person(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/staff/verify",
        data={"subject_id": "biden", **SEARCH},
        files={"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")},
    )
    body = response.json()
    assert body["decision"] == "no_match"
    assert body["estimated_fmr"] > body["target_fmr"]


def test_identify_ranks_the_mate_first_and_says_these_are_leads(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/staff/identify",
        data={"top_k": "5", **SEARCH},
        files={"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["result_type"] == "investigative_leads"
    assert "not identifications" in body["notice"]
    assert [c["subject_id"] for c in body["candidates"]] == ["obama", "biden"]
    first, second = body["candidates"]
    assert first["rank"] == 1 and first["strong"]
    assert first["estimated_fmr"] < second["estimated_fmr"]
    assert body["gallery_size"] == 2


def test_erased_subject_leaves_the_index(client: TestClient) -> None:
    client.post("/v1/galleries", json={"name": "temp", "policy": OPEN_POLICY}, headers=H["admin"])
    client.post(
        "/v1/galleries/temp/subjects",
        data={"subject_id": "x"},
        files=files("biden.jpg"),
        headers=H["enroller"],
    )
    assert client.delete("/v1/galleries/temp/subjects/x", headers=H["admin"]).status_code == 204
    response = client.get("/v1/galleries/temp/subjects/x", headers=H["enroller"])
    assert error_code(response) == "subject_not_found"
    response = client.post(
        "/v1/galleries/temp/identify",
        data=SEARCH,
        files={"image": ("p.jpg", photo("biden.jpg"), "image/jpeg")},
    )
    assert response.json()["candidates"] == []


def test_rejected_capture_gets_422_with_each_reason(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/staff/identify",
        data=SEARCH,
        files={"image": ("p.jpg", photo("obama-240p.jpg"), "image/jpeg")},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "quality_rejected"
    reasons = error["details"]["reasons"]
    assert [r["name"] for r in reasons] == ["inter_eye_distance_px"]
    assert reasons[0]["score"] < 28 and reasons[0]["message"]


def test_one_bad_image_rejects_the_whole_enrolment(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/staff/subjects",
        data={"subject_id": "half"},
        files=files("obama.jpg", "two_people.jpg"),
        headers=H["enroller"],
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["image"] == "image 2"
    response = client.get("/v1/galleries/staff/subjects/half", headers=H["enroller"])
    assert response.status_code == 404


def test_primary_face_on_request(client: TestClient) -> None:
    image = photo("two_people.jpg")
    refused = client.post(
        "/v1/galleries/staff/identify",
        data=SEARCH,
        files={"image": ("p.jpg", image, "image/jpeg")},
    )
    assert refused.status_code == 422 and error_code(refused) == "quality_rejected"
    reasons = refused.json()["error"]["details"]["reasons"]
    assert [r["name"] for r in reasons] == ["face_count"] and reasons[0]["score"] >= 2
    response = client.post(
        "/v1/galleries/staff/identify",
        data={"primary_only": "true", **SEARCH},
        files={"image": ("p.jpg", image, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    quality = response.json()["probe_quality"][0]
    count = next(c for c in quality["checks"] if c["name"] == "face_count")
    assert count["passed"] and count["score"] >= 2
    # The face used is the one nearest the image centre, as the detector ranks them.
    import numpy as np

    from biomatch.imaging import decode_image

    core = client.app.state.core  # type: ignore[attr-defined]
    pixels = decode_image(image, max_bytes=10**8, max_pixels=10**8, min_side=1)
    boxes = core.modality("face")._detector.detect(pixels)
    centre = (pixels.shape[1] / 2, pixels.shape[0] / 2)
    nearest = min(boxes, key=lambda b: b.centre_distance(*centre))
    assert len(boxes) >= 2 and tuple(quality["region"]) == nearest.as_tuple()
    assert np.isfinite(response.json()["candidates"][0]["estimated_fmr"])


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 400, "empty_upload"),
        (b"not an image at all", 400, "invalid_image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, 400, "invalid_image"),
    ],
)
def test_bad_uploads_get_4xx_with_a_code(
    client: TestClient, payload: bytes, status: int, code: str
) -> None:
    response = client.post(
        "/v1/galleries/staff/identify",
        data=SEARCH,
        files={"image": ("p.jpg", payload, "image/jpeg")},
    )
    assert response.status_code == status
    assert error_code(response) == code
    assert response.json()["error"]["message"]


def test_truncated_photo_is_refused(client: TestClient) -> None:
    data = photo("obama.jpg")
    response = client.post(
        "/v1/galleries/staff/identify",
        data=SEARCH,
        files={"image": ("p.jpg", data[: len(data) // 3], "image/jpeg")},
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_image"


def test_unknown_gallery_subject_and_duplicates(client: TestClient) -> None:
    image = {"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")}
    response = client.post("/v1/galleries/nope/identify", data=SEARCH, files=image)
    assert error_code(response) == "gallery_not_found"
    response = client.post(
        "/v1/galleries/staff/verify", data={"subject_id": "nobody", **SEARCH}, files=image
    )
    assert response.status_code == 404 and error_code(response) == "subject_not_found"
    response = client.post(
        "/v1/galleries/staff/subjects",
        data={"subject_id": "obama"},
        files=files("obama2.jpg"),
        headers=H["enroller"],
    )
    assert response.status_code == 409 and error_code(response) == "subject_exists"
    response = client.post("/v1/galleries", json={"name": "staff"}, headers=H["admin"])
    assert response.status_code == 409 and error_code(response) == "gallery_exists"


def test_malformed_requests_are_422_with_fields(client: TestClient) -> None:
    response = client.post("/v1/galleries", json={"name": "bad name/"}, headers=H["admin"])
    assert response.status_code == 422 and error_code(response) == "invalid_request"
    response = client.post("/v1/galleries/staff/verify", data={"subject_id": "obama", **SEARCH})
    assert response.status_code == 422
    assert any("image" in d["field"] for d in response.json()["error"]["details"])
    response = client.post(
        "/v1/galleries/staff/identify",
        data={"top_k": "0", **SEARCH},
        files={"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")},
    )
    assert response.status_code == 422


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/galleries/{gallery}/identify" in paths


def test_index_is_rebuilt_from_the_store_on_restart(tmp_path: Path) -> None:
    shared_file(KNN)
    settings = settings_for_tests(tmp_path)
    with TestClient(create_app(settings)) as first:
        headers = issue_tokens(first.app.state.core)  # type: ignore[attr-defined]
        first.post(
            "/v1/galleries", json={"name": "g", "policy": OPEN_POLICY}, headers=headers["admin"]
        )
        for person in ("biden", "obama"):
            image = next((KNN / "train" / person).glob("*.jpg"))
            first.post(
                "/v1/galleries/g/subjects",
                data={"subject_id": person},
                files={"images": (image.name, image.read_bytes(), "image/jpeg")},
                headers=headers["enroller"],
            )
    with TestClient(create_app(settings)) as second:
        response = second.post(
            "/v1/galleries/g/identify",
            data=SEARCH,
            files={"image": ("p.jpg", photo("obama2.jpg"), "image/jpeg")},
            headers=headers["field_operator"],
        )
        assert response.json()["candidates"][0]["subject_id"] == "obama"
