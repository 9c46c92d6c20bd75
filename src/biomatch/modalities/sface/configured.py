"""The face plug-in ``face-onnx``: YuNet detection and alignment (as for SFace) and any
face-embedding ONNX network given by configuration (``FaceConfig.onnx``), e.g. a site's
licensed ArcFace. Nothing is downloaded: the file is the site's, optionally pinned by
SHA-256."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

from biomatch.calibration import ScoreCalibration, load_calibration
from biomatch.config import FaceConfig, OnnxFaceConfig
from biomatch.errors import ModelUnavailable
from biomatch.modalities.base import ModelInfo
from biomatch.modalities.sface import alignment
from biomatch.modalities.sface.embedder import InputSpec
from biomatch.modalities.sface.plugin import EmbeddingNetwork, YuNetFaceModality, version_of

# As for SFace: the chip alone unless FaceConfig.flip_average says (one pass, half the time).
FLIP_DEFAULT = False


class OnnxFaceModality(YuNetFaceModality):
    """YuNet, alignment onto the configured template, the configured network, cosine."""

    def __init__(self, config: FaceConfig) -> None:
        onnx = config.onnx
        flip = config.flips(FLIP_DEFAULT)
        network = EmbeddingNetwork(
            lambda: checked_model_file(onnx),
            onnx.runtime,
            InputSpec(onnx.input_size, onnx.channel_order, onnx.mean, onnx.std, onnx.input_name),
            template_of(onnx),
        )
        version = version_of(onnx.model_version, config, flip)
        info = ModelInfo("face", onnx.model_id, version, onnx.dimensions)
        super().__init__(config, info, network, flip)

    @cached_property
    def calibration(self) -> ScoreCalibration:
        path = self._config.onnx.calibration_file
        if path is None:
            return load_calibration(self.info.key)
        if not path.is_file():
            raise ModelUnavailable(f"No score calibration at {path}.", model=self.info.key)
        calibration = ScoreCalibration.load(path)
        if calibration.model_key != self.info.key:
            raise ModelUnavailable(
                f"{path} calibrates {calibration.model_key}, not {self.info.key}.",
                model=self.info.key,
            )
        return calibration


def template_of(onnx: OnnxFaceConfig) -> np.ndarray:
    if onnx.alignment_template is None:
        return alignment.arcface_template(onnx.input_size)
    return np.asarray(onnx.alignment_template, dtype=np.float64)


def checked_model_file(onnx: OnnxFaceConfig) -> Path:
    """The configured file, refused (503 ``model_unavailable``) where it is missing or is
    not the pinned one."""
    path = onnx.model_path
    if path is None or not path.is_file():
        raise ModelUnavailable(
            f"face.onnx.model_path ({path}) names no file: set BIOMATCH_FACE__ONNX__MODEL_PATH.",
            model=onnx.model_id,
        )
    if onnx.sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != onnx.sha256.lower():
            raise ModelUnavailable(
                f"{path}: SHA-256 {digest}, expected {onnx.sha256}.", model=onnx.model_id
            )
    return path


__all__ = ["OnnxFaceModality"]
