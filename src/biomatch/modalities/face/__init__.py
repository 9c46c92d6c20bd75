"""Face modality plug-ins. ``create`` (the ``face`` entry point) runs the model
``BIOMATCH_FACE__MODEL`` names: SFace on YuNet (default, ``modalities/sface``), dlib (HOG
detection, 5-point alignment, ResNet-34; the optional ``dlib`` extra) or a configured ONNX
network (``modalities/sface/configured.py``). dlib is imported only where dlib runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biomatch.config import Settings
from biomatch.errors import ModelUnavailable

if TYPE_CHECKING:
    from biomatch.modalities.base import Modality
    from biomatch.modalities.face.plugin import FaceModality
    from biomatch.modalities.sface.configured import OnnxFaceModality

__all__ = ["FaceModality", "create", "create_dlib", "create_onnx"]


def create(settings: Settings) -> Modality:
    """The entry point the core loads (``biomatch.modalities``: ``face``): the plug-in of
    ``settings.face.model``."""
    if settings.face.model == "sface":
        from biomatch.modalities import sface

        return sface.create(settings)
    if settings.face.model == "onnx":
        return create_onnx(settings)
    return create_dlib(settings)


def create_dlib(settings: Settings) -> FaceModality:
    """The dlib plug-in whatever ``face.model`` says (entry point ``face-dlib``); 503
    ``model_unavailable`` where the dlib extra is not installed."""
    try:
        from biomatch.modalities.face.plugin import FaceModality
    except ImportError as exc:
        raise ModelUnavailable(
            f"The dlib face model is not installed ({exc}): run `make install-dlib` "
            "(or BIOMATCH_DLIB=1 scripts/install.sh), or use the default SFace model.",
            model="face-dlib",
        ) from None
    return FaceModality(settings.face)


def create_onnx(settings: Settings) -> OnnxFaceModality:
    """YuNet and the ONNX network of ``face.onnx`` (entry point ``face-onnx``); 503
    ``model_unavailable`` where no model file is configured."""
    from biomatch.modalities.sface.configured import OnnxFaceModality

    if settings.face.onnx.model_path is None:
        raise ModelUnavailable(
            "No face.onnx.model_path configured: set BIOMATCH_FACE__ONNX__MODEL_PATH.",
            model="face-onnx",
        )
    return OnnxFaceModality(settings.face)


def __getattr__(name: str) -> Any:
    if name == "FaceModality":
        from biomatch.modalities.face.plugin import FaceModality

        return FaceModality
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
