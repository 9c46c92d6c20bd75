"""Face modality: dlib HOG detection, 5-point alignment, ResNet-34 128-d embedding."""

from biomatch.modalities.face.plugin import FaceModality

__all__ = ["FaceModality"]
