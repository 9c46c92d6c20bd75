"""Fingerprint modality: contact impressions at 500 ppi, and contactless phone photos."""

from biomatch.config import Settings
from biomatch.modalities.finger.contactless_plugin import ContactlessFingerModality
from biomatch.modalities.finger.plugin import FingerModality

__all__ = ["ContactlessFingerModality", "FingerModality", "create", "create_contactless"]


def create(settings: Settings) -> FingerModality:
    """The entry point the core loads (``biomatch.modalities``: ``finger``)."""
    return FingerModality(settings.finger)


def create_contactless(settings: Settings) -> ContactlessFingerModality:
    """Entry point ``finger-contactless``: phone-camera captures of the finger modality."""
    return ContactlessFingerModality(settings.finger)
