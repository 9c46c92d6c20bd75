"""The face plug-in: detect -> landmarks -> quality -> align -> embed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from biomatch.config import FaceConfig
from biomatch.modalities.base import Capture, ModelInfo, QualityReport
from biomatch.modalities.embedding import CosineEmbedding, unit
from biomatch.modalities.face import landmarks, models, quality
from biomatch.modalities.face.detector import FaceDetector

EMBEDDING_DIM = 128


@dataclass(frozen=True)
class _FaceSubject:
    chip: np.ndarray


class FaceModality(CosineEmbedding):
    """dlib's HOG detector, 5-point alignment and ResNet embedding; scores are cosine
    similarities of L2-normalised embeddings."""

    def __init__(self, config: FaceConfig) -> None:
        self._config = config
        self._flip_average = config.flips(True)
        # dlib's networks keep per-call state, so one call at a time per process.
        self._lock = threading.Lock()
        # Options that change templates are in the version: a change is a visible
        # re-enrolment and needs its own calibration file.
        tags = [
            *(["flip"] if self._flip_average else []),
            *(["jitter4"] if config.chip_jitter else []),
            *(["cnn"] if config.detector == "cnn" else []),
        ]
        version = "-".join(["1.0", *tags])
        self.info = ModelInfo("face", "dlib-resnet34-v1", version, EMBEDDING_DIM)

    # The index holds the embeddings themselves, so its top-k is already the matcher's.
    shortlist_subjects = 0
    max_probe_items = 1

    @cached_property
    def _detector(self) -> FaceDetector:
        return FaceDetector(self._config)

    @cached_property
    def _embedder(self) -> Any:
        return models.resnet_embedder()

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        with self._lock:
            boxes = self._detector.detect(image)
            count_check = quality.face_count_check(len(boxes), primary_only)
            if not boxes:
                return Capture(QualityReport((count_check,)), subjects_found=0)
            face = boxes[0]
            points = landmarks.locate(image, face)
            chip = landmarks.align(image, points)
        checks = (count_check, *quality.face_checks(chip, points, self._config.quality))
        return Capture(
            QualityReport(checks),
            region=face.as_tuple(),
            subjects_found=len(boxes),
            payload=_FaceSubject(chip),
        )

    def make_template(self, capture: Capture) -> bytes:
        subject = capture.payload
        if not isinstance(subject, _FaceSubject):
            raise ValueError("The capture holds no face to make a template of.")
        chips = [subject.chip]
        if self._config.chip_jitter:
            chips += landmarks.jittered(subject.chip)
        if self._flip_average:
            chips += [np.ascontiguousarray(chip[:, ::-1]) for chip in chips]
        with self._lock:
            descriptors = self._embedder.compute_face_descriptor(chips)
        vector = np.mean([np.asarray(d, dtype=np.float32) for d in descriptors], axis=0)
        return unit(vector).astype(np.float32).tobytes()


__all__ = ["FaceModality"]
