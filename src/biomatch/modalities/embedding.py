"""Templates that are one L2-normalised float32 embedding (the face plug-ins): compared by
cosine similarity, and the embedding is its own index vector, so the 1:N index scores
exactly what the matcher scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biomatch.modalities.base import ModelInfo


class CosineEmbedding:
    """``index_vector`` and ``compare`` for a plug-in whose template is its embedding."""

    info: ModelInfo

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
