"""Modality plug-ins and the registry the service looks them up in."""

from __future__ import annotations

from collections.abc import Callable

from biomatch.config import Settings
from biomatch.errors import UnknownModality
from biomatch.modalities.base import Capture, Modality, ModelInfo, QualityCheck, QualityReport

__all__ = ["Capture", "Modality", "ModelInfo", "QualityCheck", "QualityReport", "load_modality"]


def _load_face(settings: Settings) -> Modality:
    from biomatch.modalities.face import FaceModality

    return FaceModality(settings.face)


def _load_finger(settings: Settings) -> Modality:
    from biomatch.modalities.finger import FingerModality

    return FingerModality(settings.finger)


_FACTORIES: dict[str, Callable[[Settings], Modality]] = {"face": _load_face, "finger": _load_finger}


def available_modalities() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def load_modality(name: str, settings: Settings) -> Modality:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownModality(
            f"Unknown modality {name!r}; available: {', '.join(_FACTORIES)}.", modality=name
        ) from None
    return factory(settings)
