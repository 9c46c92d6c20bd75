"""Templates that are one L2-normalised float32 embedding (the face plug-ins): compared by
cosine similarity, and the embedding is its own index vector, so the 1:N index scores
exactly what the matcher scores. Such a template carries no position, and every capture
that passed the gate counts in full in fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np

from biomatch.calibration import ScoreCalibration, load_calibration
from biomatch.errors import InvalidRequest
from biomatch.modalities.base import ModelInfo


class CosineEmbedding:
    """What a plug-in whose template is its embedding shares: calibration by model key,
    index vector, cosine ``compare``, no positions, full fusion weight."""

    info: ModelInfo

    @cached_property
    def calibration(self) -> ScoreCalibration:
        return load_calibration(self.info.key)

    def quality_weight(self, quality: Mapping[str, float]) -> float:
        return 1.0

    def position_of(self, template: bytes) -> int:
        return 0

    def with_position(self, template: bytes, position: int) -> bytes:
        if position:
            raise InvalidRequest("A face has no position code: give 0.", position=position)
        return template

    def index_vector(self, template: bytes) -> np.ndarray:
        return decode(template, self.info.dimensions)

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        if not references:
            return np.empty(0, dtype=np.float32)
        size = self.info.dimensions
        matrix = np.stack([decode(reference, size) for reference in references])
        scores: np.ndarray = matrix @ decode(probe, size)
        return scores


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def decode(template: bytes, dimensions: int) -> np.ndarray:
    vector = np.frombuffer(template, dtype=np.float32)
    if vector.size != dimensions:
        raise ValueError(f"A template of this model has {dimensions} values, not {vector.size}.")
    return vector
