"""Fingerprint modality: contact impressions at 500 ppi."""

from biomatch.modalities.finger.plugin import FingerModality

__all__ = ["FingerModality"]
