"""The contactless capture kind of the finger modality: a phone photo of a fingertip (or of
four fingers) -> contact-like impression -> LEADER minutiae -> the finger template format.

Its templates are of the finger family (``plugin.FAMILY``): they compare with contact
prints, so a contactless probe searches contact galleries. They are marked as plain
contactless impressions (ANSI/NIST-ITL impression type 24), which ISO/IEC 19794-2:2011
export carries. Quality is the contactless gate (``contactless_quality``), not NFIQ 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from biomatch.config import FingerConfig
from biomatch.errors import InvalidRequest, QualityRejected
from biomatch.fusion import quality_weight
from biomatch.modalities.base import Capture, CapturePart, ModelInfo, QualityReport
from biomatch.modalities.finger import contactless_quality as gate
from biomatch.modalities.finger.contactless import Options, contactless_to_contact
from biomatch.modalities.finger.extractor import extract_minutiae
from biomatch.modalities.finger.four_finger import FOUR_FINGER, POSITIONS, split_four_fingers
from biomatch.modalities.finger.plugin import (
    FAMILY,
    MATCHER_ID,
    MATCHER_VERSION,
    FingerModality,
    FingerSubject,
    strongest,
)
from biomatch.modalities.finger.template import CONTACTLESS_PLAIN, MAX_MINUTIAE, FingerTemplate

CAPTURE_KIND = "contactless"
# Ridge clarity from which a finger's evidence counts in full in fusion.
CLARITY_FULL_WEIGHT = 0.35


class ContactlessFingerModality(FingerModality):
    capture_layouts = (FOUR_FINGER,)

    def __init__(self, config: FingerConfig) -> None:
        super().__init__(config)
        self._contactless = config.contactless
        self.info = ModelInfo(
            "finger",
            f"{CAPTURE_KIND}-{config.extractor}-{MATCHER_ID}",
            MATCHER_VERSION,
            self._params.descriptor_size,
            family=FAMILY,
            capture_kind=CAPTURE_KIND,
        )

    def quality_weight(self, quality: Mapping[str, float]) -> float:
        clarity = quality.get(gate.OUT_OF_FOCUS, CLARITY_FULL_WEIGHT)
        floor = self._contactless.quality.min_clarity
        return quality_weight(clarity, floor, max(CLARITY_FULL_WEIGHT, floor + 1e-3))

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        config = self._contactless.quality
        height, width = image.shape[:2]
        size = gate.size_check(width, height, config)
        if not size.passed:
            return Capture(QualityReport((size,)))
        tip = contactless_to_contact(image, Options(unwrap=self._contactless.unwrap))
        if tip is None:
            return Capture(QualityReport((size, gate.no_finger())))
        photo_checks = (size, *gate.fingertip_checks(tip, config))
        if stop_at_failure and not all(check.passed for check in photo_checks):
            # The capture will be refused: LEADER, most of a capture's time, is skipped.
            return Capture(QualityReport(photo_checks), region=tip.region, subjects_found=1)
        minutiae = strongest(self._contact_like_minutiae(tip.image), MAX_MINUTIAE)
        checks = (*photo_checks, gate.minutiae_check(minutiae.shape[0], config))
        found = minutiae.shape[0] > 0
        impression_height, impression_width = tip.image.shape
        return Capture(
            QualityReport(checks),
            region=tip.region,
            subjects_found=1,
            payload=FingerSubject(minutiae, impression_width, impression_height) if found else None,
        )

    def split_capture(self, image: np.ndarray, layout: str, hand: str) -> list[CapturePart]:
        """The index, middle, ring and little fingertips of a four-finger photo."""
        if layout != FOUR_FINGER or hand not in POSITIONS:
            raise InvalidRequest(
                "A four_finger photo needs hand=left or hand=right.", layout=layout, hand=hand
            )
        parts = split_four_fingers(image, hand)
        if len(parts) < len(POSITIONS[hand]):
            reason = gate.fingers_found_check(len(parts), len(POSITIONS[hand]))
            raise QualityRejected(
                "The four-finger photo failed the quality gate: fingers_found.",
                reasons=[reason.as_dict()],
            )
        return parts

    def _contact_like_minutiae(self, impression: np.ndarray) -> np.ndarray:
        config = self._config
        return extract_minutiae(
            impression,
            config.extractor,
            500,
            config.leader_threads,
            config.leader_graph,
            config.resolved_model_cache_dir,
            min_quality=self._contactless.leader_min_quality,
        )

    def template_from_minutiae(
        self,
        minutiae: np.ndarray,
        width: int,
        height: int,
        finger_position: int = 0,
    ) -> FingerTemplate:
        template = super().template_from_minutiae(minutiae, width, height, finger_position)
        return replace(template, resolution_ppi=500, impression_type=CONTACTLESS_PLAIN)


__all__ = ["CAPTURE_KIND", "ContactlessFingerModality"]
