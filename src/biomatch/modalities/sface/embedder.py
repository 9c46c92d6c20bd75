"""SFace: a 112x112 aligned face (BGR, 0..255 unscaled) -> 128 numbers, on cv2.dnn or on
onnxruntime (the cleaned graph, ``graph.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from biomatch.modalities.sface import graph, models


class SFaceEmbedder:
    """Not thread-safe with cv2.dnn (one network): the plug-in serialises calls."""

    def __init__(self, runtime: Literal["opencv", "onnxruntime"], cache_dir: Path) -> None:
        self._runtime = runtime
        source = models.embedder_path()
        if runtime == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            model = graph.cleaned_model_path(source, cache_dir)
            self._session: Any = onnxruntime.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )
        else:
            self._net: Any = cv2.dnn.readNetFromONNX(str(source))

    def embed(self, rgb_chips: list[np.ndarray]) -> list[np.ndarray]:
        """The raw embedding of each 112x112 RGB chip."""
        return [self._forward(_blob(chip)) for chip in rgb_chips]

    def _forward(self, blob: np.ndarray) -> np.ndarray:
        if self._runtime == "onnxruntime":
            output = self._session.run(None, {graph.INPUT_NAME: blob})[0]
        else:
            # OpenCV 5's DNN engine needs the input named.
            self._net.setInput(blob, graph.INPUT_NAME)
            output = self._net.forward()
        return np.asarray(output, dtype=np.float32).reshape(-1)


def _blob(rgb_chip: np.ndarray) -> np.ndarray:
    """NCHW float32, BGR channel order, values 0..255 as SFace was trained."""
    bgr = np.ascontiguousarray(rgb_chip[:, :, ::-1], dtype=np.float32)
    return bgr.transpose(2, 0, 1)[np.newaxis].copy()
