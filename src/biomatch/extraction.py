"""One capture to one template: decode -> analyse -> quality gate -> template."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from biomatch.config import Settings
from biomatch.errors import QualityRejected
from biomatch.imaging import decode_image
from biomatch.modalities import Capture, Modality
from biomatch.results import CaptureQuality, QualityCheckOut


@dataclass(frozen=True)
class ExtractedSample:
    """A template and what is recorded about the capture it came from (not the image)."""

    modality: str
    model_key: str
    template: bytes
    image_sha256: str
    width: int
    height: int
    quality: CaptureQuality
    label: str | None = None
    # The uploaded image, where the caller keeps reference images (enrolment).
    image: bytes | None = field(default=None, repr=False, compare=False)

    def with_template(self, template: bytes) -> ExtractedSample:
        return replace(self, template=template)

    def at_position(self, template: bytes, position: int) -> ExtractedSample:
        """The sample with its template tagged, and its quality saying the position."""
        quality = self.quality.model_copy(update={"position": position})
        return replace(self, template=template, quality=quality)

    def in_capture(self, region: tuple[int, int, int, int]) -> ExtractedSample:
        """The sample of a part cut from a larger capture: its region is the part's there."""
        return replace(self, quality=self.quality.model_copy(update={"region": region}))

    def quality_scores(self) -> dict[str, float]:
        return {check.name: check.score for check in self.quality.checks}


def capture_quality(capture: Capture) -> CaptureQuality:
    return CaptureQuality(
        passed=capture.quality.passed,
        checks=[QualityCheckOut(**check.as_dict()) for check in capture.quality.checks],
        region=capture.region,
    )


def assess(
    data: bytes, modality: Modality, settings: Settings, *, primary_only: bool = False
) -> tuple[CaptureQuality, bool, tuple[int, int]]:
    """The quality gate alone, for a capture the operator may retake: (quality, whether a
    subject was found, (width, height)). Makes no template."""
    image, capture = _analysed(data, modality, settings, primary_only, stop_at_failure=True)
    return capture_quality(capture), capture.has_subject, (int(image.shape[1]), int(image.shape[0]))


def _analysed(
    data: bytes, modality: Modality, settings: Settings, primary_only: bool, stop_at_failure: bool
) -> tuple[np.ndarray, Capture]:
    """The decoded image (within the upload limits) and what the plug-in found in it."""
    image = decode_image(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        min_side=settings.min_image_side,
        decode_budget=settings.decode_pixel_budget,
    )
    return image, modality.analyse(
        image, primary_only=primary_only, stop_at_failure=stop_at_failure
    )


def extract(
    data: bytes,
    modality: Modality,
    settings: Settings,
    *,
    primary_only: bool = False,
    label: str | None = None,
    enforce_quality: bool = True,
    keep_image: bool = False,
) -> ExtractedSample:
    """Raises ``QualityRejected`` (with every failed check) for a capture that fails the gate.

    ``enforce_quality=False`` is for evaluations, which must score every capture that has a
    subject; a capture with no subject is rejected either way.
    """
    image, capture = _analysed(
        data, modality, settings, primary_only, stop_at_failure=enforce_quality
    )
    quality = capture_quality(capture)
    gate_failed = enforce_quality and not capture.quality.passed
    if gate_failed or not capture.has_subject:
        raise CaptureRejected(_rejection_message(capture, label), quality, label)
    return ExtractedSample(
        modality=modality.info.modality,
        model_key=modality.info.key,
        template=modality.make_template(capture),
        image_sha256=hashlib.sha256(data).hexdigest(),
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        quality=quality,
        label=label,
        image=data if keep_image else None,
    )


class CaptureRejected(QualityRejected):
    """A capture failed the gate; ``quality`` is its full report."""

    def __init__(self, message: str, quality: CaptureQuality, label: str | None) -> None:
        super().__init__(message, **_reasons(quality, label))
        self.quality = quality


def split_capture_rejected(
    failed: list[tuple[str, CaptureQuality]], parts: int, needed: int
) -> QualityRejected:
    """The refusal of a split capture with fewer than ``needed`` of its ``parts`` passing:
    the reasons of every failed part (each once), and each part's own."""
    reasons: dict[str, dict[str, Any]] = {}
    for _, quality in failed:
        for check in quality.checks:
            if not check.passed:
                reasons.setdefault(check.name, check.model_dump())
    passed = parts - len(failed)
    names = ", ".join(label for label, _ in failed)
    return QualityRejected(
        f"{passed} of the capture's {parts} parts passed the quality gate, {needed} are "
        f"needed ({names} failed).",
        reasons=list(reasons.values()),
        image=failed[0][0],
        parts=[{"image": label, **_reasons(quality, None)} for label, quality in failed],
    )


def _rejection_message(capture: Capture, label: str | None) -> str:
    names = ", ".join(check.name for check in capture.quality.failures)
    where = f" ({label})" if label else ""
    return f"The capture{where} failed the quality gate: {names}."


def _reasons(quality: CaptureQuality, label: str | None) -> dict[str, Any]:
    reasons = [check.model_dump() for check in quality.checks if not check.passed]
    details: dict[str, Any] = {"reasons": reasons}
    if label:
        details["image"] = label
    return details
