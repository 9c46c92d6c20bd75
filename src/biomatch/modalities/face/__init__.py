"""Face modality: dlib HOG detection, 5-point alignment, ResNet-34 128-d embedding.

``create`` (the ``face`` entry point) runs the model ``BIOMATCH_FACE__MODEL`` names: dlib
(default) or SFace (``modalities/sface``). dlib is imported only where dlib runs, so the
SFace path never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biomatch.config import Settings

if TYPE_CHECKING:
    from biomatch.modalities.base import Modality
    from biomatch.modalities.face.plugin import FaceModality

__all__ = ["FaceModality", "create", "create_dlib"]


def create(settings: Settings) -> Modality:
    """The entry point the core loads (``biomatch.modalities``: ``face``): the plug-in of
    ``settings.face.model``."""
    if settings.face.model == "sface":
        from biomatch.modalities import sface

        return sface.create(settings)
    return create_dlib(settings)


def create_dlib(settings: Settings) -> FaceModality:
    """The dlib plug-in whatever ``face.model`` says (entry point ``face-dlib``)."""
    from biomatch.modalities.face.plugin import FaceModality

    return FaceModality(settings.face)


def __getattr__(name: str) -> Any:
    if name == "FaceModality":
        from biomatch.modalities.face.plugin import FaceModality

        return FaceModality
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
