"""Contactless fingers through the HTTP API with RidgeBase photos and contact prints from
../shared/data (skipped where absent): a phone photo of a fingertip finds its contact-print
mate by 1:N in a gallery of contact prints, and is verified against it 1:1."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from biomatch.api import create_app
from biomatch.cli import app as cli_app
from tests.conftest import (
    OPEN_POLICY,
    SEARCH,
    SHARED,
    issue_tokens,
    settings_for_tests,
    shared_file,
)

FINGERTIPS = SHARED / "finger" / "ridgebase_samples" / "fingertips"
GALLERY_FINGERS = (
    "10727_left_middle",
    "10727_left_index",
    "10727_right_ring",
    "11826_left_index",
    "11826_left_little",
)
MATE = "10727_left_middle"
H: dict[str, dict[str, str]] = {}


def first(folder: str, prefix: str) -> Path:
    return sorted((FINGERTIPS / folder).glob(f"{prefix}*"))[0]


def upload(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "application/octet-stream")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    shared_file(FINGERTIPS)
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as test_client:
        H.update(issue_tokens(test_client.app.state.core))  # type: ignore[attr-defined]
        test_client.headers.update(H["field_operator"])
        gallery = {"name": "prints", "policy": OPEN_POLICY}
        assert (
            test_client.post("/v1/galleries", json=gallery, headers=H["admin"]).status_code == 201
        )
        for folder in GALLERY_FINGERS:  # contact prints, as a scanner gallery holds them
            response = test_client.post(
                "/v1/galleries/prints/subjects",
                data={"subject_id": folder, "modality": "finger"},
                files=[("images", upload(first(folder, "ct_")))],
                headers=H["enroller"],
            )
            assert response.status_code == 201, response.text
        yield test_client


def test_the_service_advertises_the_contactless_capture_kind(client: TestClient) -> None:
    kinds = client.get("/v1/health").json()["capture_kinds"]
    assert kinds["finger"] == ["contact", "contactless"]


def test_a_contactless_photo_finds_its_contact_print_by_1_to_n(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/prints/identify",
        data={"modality": "finger", "capture": "contactless", "top_k": 3, **SEARCH},
        files={"image": upload(first(MATE, "cl_"))},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["candidates"][0]["subject_id"] == MATE
    assert body["gallery_size"] == len(GALLERY_FINGERS)
    assert body["models"][0]["model_id"] == "contactless-leader-lnm"
    names = {check["name"] for check in body["probe_quality"][0]["checks"]}
    assert {"too_far", "too_close", "out_of_focus", "glare", "minutiae_count"} <= names
    assert "nfiq2" not in names


def test_a_contactless_photo_is_verified_against_its_contact_print(client: TestClient) -> None:
    def verify(subject: str) -> dict[str, object]:
        response = client.post(
            "/v1/galleries/prints/verify",
            data={"subject_id": subject, "modality": "finger", "capture": "contactless", **SEARCH},
            files={"image": upload(first(MATE, "cl_"))},
        )
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result

    mated, other = verify(MATE), verify("11826_left_little")
    assert mated["decision"] == "match"
    assert other["decision"] == "no_match"
    assert float(str(mated["estimated_fmr"])) < float(str(other["estimated_fmr"]))


def test_a_photo_without_a_finger_is_refused_with_an_instruction(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((400, 400, 3), 90, np.uint8)).save(buffer, format="PNG")
    response = client.post(
        "/v1/galleries/prints/identify",
        data={"modality": "finger", "capture": "contactless", **SEARCH},
        files={"image": ("grey.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "quality_rejected"
    reasons = {reason["name"]: reason["message"] for reason in error["details"]["reasons"]}
    assert "hold one fingertip" in reasons["finger_found"]


def test_an_unknown_capture_kind_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/galleries/prints/identify",
        data={"modality": "face", "capture": "contactless", **SEARCH},
        files={"image": upload(first(MATE, "cl_"))},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_eval_folder_contactless_against_contact(tmp_path: Path) -> None:
    shared_file(FINGERTIPS)
    data = tmp_path / "slice"
    data.mkdir()
    for folder in (MATE, "11826_left_index"):
        (data / folder).symlink_to(FINGERTIPS / folder)
    out = tmp_path / "cl_ct.json"
    result = CliRunner().invoke(
        cli_app,
        [
            "eval", "folder", str(data), "--modality", "finger", "--capture", "contactless",
            "--probe-glob", "cl_*", "--reference-glob", "ct_*", "--json", str(out),
            "--bootstrap", "20",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["n_genuine"] == 3 * 1 + 1 * 2  # probes x references of the same finger
    assert report["n_impostor"] == 3 * 2 + 1 * 1
    assert report["failures_to_enrol"] == 0
    assert 0.0 <= report["eer"] <= 1.0 and "fnmr_at_fmr_1e-2" in report


FOUR_FINGER = SHARED / "finger" / "ridgebase_samples" / "four_finger"
# Two photos of each of 22837_left, 24765_left and 28203_left, one of 22837_right.
FOUR_FINGER_HANDS = ("22837_left", "22837_right", "24765_left", "28203_left")


def test_eval_folder_four_finger_reports_fused_and_as_searched(tmp_path: Path) -> None:
    shared_file(FOUR_FINGER)
    data = tmp_path / "hands"
    data.mkdir()
    for folder in FOUR_FINGER_HANDS:
        (data / folder).symlink_to(FOUR_FINGER / folder)
    out = tmp_path / "four_finger.json"
    result = CliRunner().invoke(
        cli_app,
        [
            "eval", "folder", str(data), "--modality", "finger", "--capture", "contactless",
            "--layout", "four_finger", "--json", str(out), "--bootstrap", "20",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["photos"] == 7 and report["segmentation_failures"] == 0
    mated_photo_pairs = 3  # one pair in each hand's folder with two photos
    assert report["fused_n_genuine"] == mated_photo_pairs
    assert report["fused_n_impostor"] == 7 * 6 // 2 - mated_photo_pairs
    # As searched: refused photos (too few fingertips pass the gate) bring no impostor
    # score, and their mated pairs stay in as misses.
    refused = report["searched_refused_photos"]
    assert report["searched_failures_to_acquire"] == len(refused)
    passing = report["fingertips_passed"]  # photos by how many fingertips pass
    assert sum(passing.values()) == 7 and passing["0"] + passing["1"] == len(refused)
    assert not any(key.startswith("22837_") for key in refused)  # all four pass in those
    assert report["searched_fused_n_genuine"] == mated_photo_pairs
    acquired_hands = [key.split("/")[0] for key in _photo_keys(data) if key not in refused]
    acquired_mated = sum(
        acquired_hands.count(hand) * (acquired_hands.count(hand) - 1) // 2
        for hand in set(acquired_hands)
    )
    acquired = len(acquired_hands)
    assert report["searched_fused_n_impostor"] == acquired * (acquired - 1) // 2 - acquired_mated
    misses = report["searched_fused_operating_point"]["false_non_matches"]
    assert misses >= mated_photo_pairs - acquired_mated
    # Each photo against hands enrolled with their photos (its own: the other one).
    assert report["enrolled_fused_n_genuine"] == 6  # the photos whose hand has another
    assert report["enrolled_fused_n_impostor"] == 7 * 3  # each against the 3 other hands


def _photo_keys(root: Path) -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*.jpg"))


def test_the_capture_app_can_check_a_contactless_photo_alone(client: TestClient) -> None:
    response = client.post(
        "/v1/quality-check",
        data={"modality": "finger", "capture": "contactless"},
        files={"image": upload(first(MATE, "cl_"))},
    )
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["model"] == "finger/contactless-leader-lnm@1.0"
    assert {check["name"] for check in verdict["checks"]} >= {"too_far", "out_of_focus"}


def test_a_four_finger_photo_without_a_hand_is_refused_with_a_reason(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((800, 600, 3), 128, np.uint8)).save(buffer, format="PNG")
    response = client.post(
        "/v1/galleries/prints/identify-fused",
        data={"capture": "contactless", "layout": "four_finger", "hand": "left", **SEARCH},
        files=[("fingers", ("hand.png", buffer.getvalue(), "image/png"))],
    )
    assert response.status_code == 422, response.text
    reasons = response.json()["error"]["details"]["reasons"]
    assert reasons[0]["name"] == "fingers_found"
    assert "four fingers" in reasons[0]["message"]
    missing_hand = client.post(
        "/v1/galleries/prints/identify-fused",
        data={"capture": "contactless", "layout": "four_finger", **SEARCH},
        files=[("fingers", ("hand.png", buffer.getvalue(), "image/png"))],
    )
    assert missing_hand.status_code == 422
    assert missing_hand.json()["error"]["code"] == "invalid_request"


def test_identify_takes_a_four_finger_photo_as_its_four_fingertips(client: TestClient) -> None:
    # This photo's index fingertip is blurred: the gate names the fingertip and its reasons.
    photo = sorted((SHARED / "finger/ridgebase_samples/four_finger/21022_left").glob("*.jpg"))[0]
    response = client.post(
        "/v1/galleries/prints/identify",
        data={
            "modality": "finger", "capture": "contactless", "layout": "four_finger",
            "hand": "left", **SEARCH,
        },
        files={"image": upload(photo)},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details["image"] == "finger-contactless 1"  # the first fingertip: the index
    assert {reason["name"] for reason in details["reasons"]} >= {"out_of_focus"}


def test_quality_check_gives_each_fingertip_of_a_four_finger_photo(client: TestClient) -> None:
    photos = sorted((SHARED / "finger/ridgebase_samples/four_finger").glob("*_left/*.jpg"))
    verdicts = []
    for photo in photos[:6]:
        response = client.post(
            "/v1/quality-check",
            data={"capture": "contactless", "layout": "four_finger", "hand": "left",
                  "modality": "finger"},
            files={"image": upload(photo)},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        verdicts.append(response.json())
    needed = client.app.state.core.settings.split_capture_min_passed  # type: ignore[attr-defined]
    for verdict in verdicts:
        parts = verdict["parts"]
        assert [part["position"] for part in parts] == [7, 8, 9, 10]  # left index .. little
        for part in parts:
            left, top, right, bottom = part["region"]
            assert 0 <= left < right <= verdict["width"] and 0 <= top < bottom <= verdict["height"]
            assert part["passed"] == (not part["reasons"])
        passing = sum(part["passed"] for part in parts)
        assert verdict["passed"] == (passing >= needed)
        if not verdict["passed"]:
            assert verdict["reasons"][0]["name"] == "parts_passed"
    assert {v["passed"] for v in verdicts} == {True, False}  # these photos hold both kinds
