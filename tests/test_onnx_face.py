"""The configured ONNX face plug-in (face-onnx), tested with the SFace file itself: the same
network configured by hand makes the SFace plug-in's templates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest

from biomatch.calibration import ScoreCalibration
from biomatch.config import FaceConfig, OnnxFaceConfig, Settings
from biomatch.errors import ModelUnavailable
from biomatch.imaging import decode_image
from biomatch.modalities import load_modality
from biomatch.modalities.sface import SFaceModality, graph, models
from biomatch.modalities.sface.alignment import ARCFACE_TEMPLATE
from biomatch.modalities.sface.configured import OnnxFaceModality

SFACE_FILE = models.embedder_path()
# SFace as a site would configure it: BGR values 0..255, its input named, 128 numbers.
AS_SFACE = {
    "model_path": SFACE_FILE,
    "sha256": models.SHA256[models.EMBEDDER_FILE],
    "model_id": "site-sface",
    "dimensions": 128,
    "channel_order": "bgr",
    "mean": (0.0, 0.0, 0.0),
    "std": (1.0, 1.0, 1.0),
    "input_name": "data",
    "runtime": "opencv",
}


def configured(**changes: object) -> OnnxFaceModality:
    face = FaceConfig(onnx=OnnxFaceConfig.model_validate({**AS_SFACE, **changes}))
    plugin = load_modality("face-onnx", Settings(face=face))
    assert isinstance(plugin, OnnxFaceModality)
    return plugin


def template(plugin: OnnxFaceModality | SFaceModality, image: np.ndarray) -> np.ndarray:
    return np.frombuffer(plugin.make_template(plugin.analyse(image)), np.float32)


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return decode_image(handle.read(), max_bytes=10**8, max_pixels=10**8)


@pytest.fixture(scope="module")
def sface_template(hopper: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return template(SFaceModality(FaceConfig(), tmp_path_factory.mktemp("m")), hopper)


def test_the_sface_file_configured_makes_the_sface_templates(
    hopper: np.ndarray, sface_template: np.ndarray
) -> None:
    plugin = configured()
    assert plugin.info.key == "face/site-sface@1.0-lm64"
    got = template(plugin, hopper)
    assert got.shape == (128,)
    assert np.abs(got - sface_template).max() < 1e-5


def test_onnxruntime_on_the_cleaned_file_agrees(
    hopper: np.ndarray, sface_template: np.ndarray, tmp_path: Path
) -> None:
    cleaned = graph.cleaned_model_path(SFACE_FILE, tmp_path)
    plugin = configured(model_path=cleaned, sha256=None, input_name=None, runtime="onnxruntime")
    assert float(template(plugin, hopper) @ sface_template) > 0.9999


def test_normalisation_and_template_are_applied(
    hopper: np.ndarray, sface_template: np.ndarray
) -> None:
    """A different normalisation, channel order or alignment makes a different template:
    the settings are not ignored."""
    for changes in (
        {"mean": (127.5, 127.5, 127.5), "std": (127.5, 127.5, 127.5)},
        {"channel_order": "rgb"},
        {"alignment_template": [(x + 4.0, y) for x, y in ARCFACE_TEMPLATE.tolist()]},
    ):
        score = float(template(configured(**changes), hopper) @ sface_template)
        assert score < 0.999, changes


def test_a_larger_input_scales_the_arcface_template(hopper: np.ndarray) -> None:
    plugin = configured(input_size=128)
    capture = plugin.analyse(hopper)
    assert capture.payload.chip.shape == (128, 128, 3)


def test_missing_unpinned_or_wrong_size_files_are_refused(
    hopper: np.ndarray, tmp_path: Path
) -> None:
    with pytest.raises(ModelUnavailable):
        load_modality("face-onnx", Settings())  # nothing configured
    with pytest.raises(ModelUnavailable):
        template(configured(model_path=tmp_path / "absent.onnx"), hopper)
    with pytest.raises(ModelUnavailable):
        template(configured(sha256="0" * 64), hopper)
    with pytest.raises(ModelUnavailable, match="128 values"):
        template(configured(dimensions=512), hopper)
    with pytest.raises(ModelUnavailable, match="refuses"):
        template(configured(input_size=128), hopper)  # SFace takes 112 only
    with pytest.raises(pydantic.ValidationError):
        OnnxFaceConfig(alignment_template=[(1.0, 2.0)] * 4)


def test_calibration_comes_from_the_configured_file(tmp_path: Path) -> None:
    plugin = configured(calibration_file=tmp_path / "cal.json")
    with pytest.raises(ModelUnavailable):
        _ = plugin.calibration
    scores = np.random.default_rng(0).normal(0.0, 0.1, 1000)
    ScoreCalibration.from_impostor_scores("face/other@1.0", scores, {}).save(tmp_path / "cal.json")
    with pytest.raises(ModelUnavailable, match="not face/site-sface"):
        _ = configured(calibration_file=tmp_path / "cal.json").calibration
    own = ScoreCalibration.from_impostor_scores(plugin.info.key, scores, {})
    own.save(tmp_path / "cal.json")
    loaded = configured(calibration_file=tmp_path / "cal.json").calibration
    assert loaded.threshold_for(1e-2) == pytest.approx(own.threshold_for(1e-2))
    # Unconfigured: the packaged file named after the key, which no one measured.
    with pytest.raises(ModelUnavailable):
        _ = configured().calibration


def test_selected_as_face_by_configuration() -> None:
    face = FaceConfig(model="onnx", onnx=OnnxFaceConfig.model_validate(AS_SFACE))
    plugin = load_modality("face", Settings(face=face))
    assert isinstance(plugin, OnnxFaceModality)
    assert plugin.info.model_id == "site-sface" and plugin.info.dimensions == 128
