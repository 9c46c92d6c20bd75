"""Face modality: dlib HOG detection, 5-point alignment, ResNet-34 128-d embedding."""

from biomatch.config import Settings
from biomatch.modalities.face.plugin import FaceModality

__all__ = ["FaceModality", "create"]


def create(settings: Settings) -> FaceModality:
    """The entry point the core loads (``biomatch.modalities``: ``face``)."""
    return FaceModality(settings.face)
