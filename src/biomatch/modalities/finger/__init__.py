"""Fingerprint modality: contact impressions at 500 ppi."""

from biomatch.config import Settings
from biomatch.modalities.finger.plugin import FingerModality

__all__ = ["FingerModality", "create"]


def create(settings: Settings) -> FingerModality:
    """The entry point the core loads (``biomatch.modalities``: ``finger``)."""
    return FingerModality(settings.finger)
