"""Modality plug-ins and the registry the core finds them in.

A plug-in is a factory ``(Settings) -> Modality`` published under the entry-point group
``biomatch.modalities``; its entry-point name is the plug-in's name (BioMatch's own: ``face``
and ``finger``, declared in pyproject.toml). A third party adds one with ``pip install``.
``register_plugin`` adds one in-process (tests, embedding applications). Constructing a
plug-in must be cheap: model weights load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from biomatch.config import Settings
from biomatch.errors import InvalidRequest, ModelUnavailable, UnknownModality
from biomatch.modalities.base import (
    Capture,
    CapturePart,
    ImportedTemplate,
    InterchangeFormat,
    Modality,
    ModelInfo,
    MultiCapture,
    QualityCheck,
    QualityReport,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Capture",
    "CapturePart",
    "ImportedTemplate",
    "InterchangeFormat",
    "Modality",
    "ModelInfo",
    "MultiCapture",
    "QualityCheck",
    "QualityReport",
    "available_plugins",
    "load_modality",
    "plugin_for_capture",
    "register_plugin",
]

ENTRY_POINT_GROUP = "biomatch.modalities"
PluginFactory = Callable[[Settings], Modality]

_FACTORIES: dict[str, PluginFactory] = {}


def register_plugin(name: str, factory: PluginFactory) -> None:
    """Make a plug-in available in this process under ``name`` (replacing any)."""
    _FACTORIES[name] = factory


def unregister_plugin(name: str) -> None:
    _FACTORIES.pop(name, None)


@cache
def _published() -> dict[str, PluginFactory]:
    return {point.name: point.load() for point in entry_points(group=ENTRY_POINT_GROUP)}


def _factories() -> dict[str, PluginFactory]:
    return {**_published(), **_FACTORIES}


def available_plugins() -> tuple[str, ...]:
    return tuple(sorted(_factories()))


def load_modality(name: str, settings: Settings) -> Modality:
    """The plug-in named ``name`` (for BioMatch's own: the modality name)."""
    factories = _factories()
    try:
        factory = factories[name]
    except KeyError:
        raise UnknownModality(
            f"Unknown modality {name!r}; available: {', '.join(sorted(factories))}.",
            modality=name,
        ) from None
    return factory(settings)


def plugin_for_capture(modality: str, capture: str | None, settings: Settings) -> str:
    """The name of the plug-in for a modality's capture kind (None, or the modality's own
    kind: the modality's own plug-in); ``InvalidRequest`` where none is installed."""
    default = load_modality(modality, settings)
    if capture is None or capture == default.info.capture_kind:
        return modality
    names = [
        name
        for name in available_plugins()
        if (plugin := _runnable(name, settings)) is not None
        and plugin.info.modality == default.info.modality
        and plugin.info.capture_kind == capture
    ]
    if not names:
        raise InvalidRequest(
            f"No {modality} plug-in takes {capture!r} captures.",
            capture=capture,
        )
    preferred = f"{modality}-{capture}"
    return preferred if preferred in names else names[0]


def _runnable(name: str, settings: Settings) -> Modality | None:
    """The plug-in, or None where its library or configuration is missing."""
    try:
        return load_modality(name, settings)
    except ModelUnavailable:
        return None
