"""Fixed-length vector of a finger template for the 1:N shortlist.

The sum of a template's minutia descriptors: each is invariant to translation and rotation,
so the sum is too. Square roots (a Hellinger map) keep a few dense neighbourhoods from
dominating; the result is L2-normalised so the index's inner product is a cosine.
"""

from __future__ import annotations

import numpy as np


def index_vector(descriptors: np.ndarray, dimensions: int) -> np.ndarray:
    if descriptors.shape[0] == 0:
        vector = np.zeros(dimensions, dtype=np.float32)
        vector[0] = 1.0
        return vector
    pooled = np.sqrt(np.maximum(descriptors, 0.0).sum(axis=0))
    centred = pooled - pooled.mean()
    unit: np.ndarray = (centred / max(float(np.linalg.norm(centred)), 1e-9)).astype(np.float32)
    return unit
