"""Every face plug-in on real photos (matplotlib's Grace Hopper; shared fixtures where
present): SFace (the default) and dlib (where its optional extra is installed)."""

import cv2
import numpy as np
import pytest

from biomatch.config import Settings
from biomatch.errors import QualityRejected
from biomatch.extraction import extract
from biomatch.imaging import decode_image
from biomatch.modalities import Modality, load_modality
from tests.conftest import FACE_FIXTURES, FACE_PLUGINS, ReadExample, needs_dlib, shared_file

SETTINGS = Settings()


@pytest.fixture(scope="module", params=FACE_PLUGINS)
def face(request: pytest.FixtureRequest) -> Modality:
    plugin: Modality = load_modality(request.param, SETTINGS)
    return plugin


def encode(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def failed(exc: pytest.ExceptionInfo[QualityRejected]) -> set[str]:
    return {reason["name"] for reason in exc.value.details["reasons"]}


def test_template_is_a_unit_vector_tagged_with_the_model(
    face: Modality, grace_hopper: bytes
) -> None:
    sample = extract(grace_hopper, face, SETTINGS)
    vector = face.index_vector(sample.template)
    assert vector.shape == (128,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert sample.model_key == face.info.key
    assert sample.quality.passed


def test_same_face_rescaled_scores_far_above_threshold(face: Modality, grace_hopper: bytes) -> None:
    image = decode_image(grace_hopper, max_bytes=10**8, max_pixels=10**8)
    smaller = cv2.resize(image, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    a = extract(grace_hopper, face, SETTINGS).template
    b = extract(encode(smaller), face, SETTINGS).template
    score = float(face.compare(a, [b])[0])
    assert score > face.calibration.threshold_for(1e-4)


def test_no_face(face: Modality) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(noise), face, SETTINGS)
    assert failed(exc) == {"face_count"}


def test_blur_is_named(face: Modality, grace_hopper: bytes) -> None:
    image = decode_image(grace_hopper, max_bytes=10**8, max_pixels=10**8)
    blurred = cv2.GaussianBlur(image, (0, 0), 6)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(blurred), face, SETTINGS)
    assert "sharpness" in failed(exc)


def test_under_and_over_exposure_are_named(face: Modality, grace_hopper: bytes) -> None:
    image = decode_image(grace_hopper, max_bytes=10**8, max_pixels=10**8).astype(np.float32)
    dark = (image * 0.22).astype(np.uint8)
    bright = np.clip(image * 0.4 + 200, 0, 255).astype(np.uint8)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(dark), face, SETTINGS)
    assert "brightness_min" in failed(exc)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(bright), face, SETTINGS)
    assert "brightness_max" in failed(exc)


def test_small_face_is_named(face: Modality, example: ReadExample) -> None:
    with pytest.raises(QualityRejected) as exc:
        extract(example("obama-240p.jpg"), face, SETTINGS)
    assert failed(exc) == {"inter_eye_distance_px"}


def test_several_faces_refused_unless_primary_asked_for(
    face: Modality, example: ReadExample
) -> None:
    data = example("two_people.jpg")
    with pytest.raises(QualityRejected) as exc:
        extract(data, face, SETTINGS)
    assert failed(exc) == {"face_count"}
    assert extract(data, face, SETTINGS, primary_only=True).quality.passed


def test_dog_photo_has_no_human_face(face: Modality) -> None:
    data = shared_file(FACE_FIXTURES / "dlib_examples_faces" / "dogs.jpg").read_bytes()
    with pytest.raises(QualityRejected) as exc:
        extract(data, face, SETTINGS)
    assert "face_count" in failed(exc)


def test_same_person_outscores_different_people(face: Modality, example: ReadExample) -> None:
    obama, obama2, biden = (
        extract(example(name), face, SETTINGS).template
        for name in ("obama.jpg", "obama2.jpg", "biden.jpg")
    )
    mated, non_mated = face.compare(obama, [obama2, biden])
    threshold = face.calibration.threshold_for(1e-3)
    assert mated >= threshold > non_mated


def test_resolutions_of_one_photo_agree(face: Modality, example: ReadExample) -> None:
    templates = [
        extract(example(f"obama-{p}.jpg"), face, SETTINGS).template
        for p in ("480p", "720p", "1080p")
    ]
    scores = face.compare(templates[0], templates[1:])
    assert np.all(scores > 0.9)


@needs_dlib
def test_primary_face_is_the_central_one_unless_configured_largest() -> None:
    from biomatch.modalities.face.detector import FaceBox, primary_first

    edge_large = FaceBox(0, 0, 200, 200, 1.0)
    central_small = FaceBox(270, 190, 370, 290, 1.0)
    shape = (480, 640, 3)
    assert primary_first([edge_large, central_small], shape, "centre")[0] == central_small
    assert primary_first([central_small, edge_large], shape, "largest")[0] == edge_large


@needs_dlib
def test_accurate_profile_is_a_separate_model_version(grace_hopper: bytes) -> None:
    from biomatch.config import FaceConfig

    settings = Settings(face=FaceConfig(detector="cnn", chip_jitter=True))
    accurate = load_modality("face-dlib", settings)
    assert accurate.info.key == "face/dlib-resnet34-v1@1.0-flip-jitter4-cnn"
    fast = load_modality("face-dlib", SETTINGS)
    image = decode_image(grace_hopper, max_bytes=10**8, max_pixels=10**8)
    same_face = float(
        accurate.index_vector(accurate.make_template(accurate.analyse(image)))
        @ fast.index_vector(fast.make_template(fast.analyse(image)))
    )
    assert 0.9 < same_face < 0.9999  # the same face, a different template
