"""A face-embedding ONNX network: an aligned square face chip -> one embedding, on cv2.dnn or
onnxruntime. ``InputSpec`` says what the network expects (size, channel order,
normalisation, input name); SFace's is ``SFACE_INPUT``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from biomatch.errors import ModelUnavailable

Runtime = Literal["opencv", "onnxruntime"]


@dataclass(frozen=True)
class InputSpec:
    """An NCHW float32 input of ``size`` x ``size``: (pixel - mean) / std per channel, the
    channels in ``channel_order`` (mean and std are given in that order too)."""

    size: int
    channel_order: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_name: str | None = None

    def blob(self, rgb_chip: np.ndarray) -> np.ndarray:
        """The network input of one ``size`` x ``size`` RGB chip."""
        pixels = rgb_chip[:, :, ::-1] if self.channel_order == "bgr" else rgb_chip
        mean, std = np.array(self.mean, np.float32), np.array(self.std, np.float32)
        values = (pixels.astype(np.float32) - mean) / std
        return np.ascontiguousarray(values.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


# SFace was trained on BGR values 0..255, unscaled; OpenCV 5's DNN engine needs the input named.
SFACE_INPUT = InputSpec(112, "bgr", input_name="data")


class FaceEmbedder:
    """One network; not thread-safe with cv2.dnn: the plug-in serialises calls."""

    def __init__(self, model: Path, runtime: Runtime, spec: InputSpec) -> None:
        self._spec = spec
        self._runtime = runtime
        self._model = model
        if runtime == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self._session: Any = onnxruntime.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )
            self._input_name = spec.input_name or self._session.get_inputs()[0].name
        else:
            self._net: Any = cv2.dnn.readNetFromONNX(str(model))
            self._input_name = spec.input_name or ""

    def embed(self, rgb_chips: list[np.ndarray]) -> list[np.ndarray]:
        """The raw embedding of each RGB chip."""
        return [self._forward(self._spec.blob(chip)) for chip in rgb_chips]

    def _forward(self, blob: np.ndarray) -> np.ndarray:
        try:
            if self._runtime == "onnxruntime":
                output = self._session.run(None, {self._input_name: blob})[0]
            else:
                self._net.setInput(blob, self._input_name)
                output = self._net.forward()
        except Exception as exc:  # the runtimes' own error types: a misconfigured network
            raise ModelUnavailable(
                f"The face network refuses a {blob.shape} input: {exc}".strip()[:500],
                model=str(self._model),
            ) from exc
        return np.asarray(output, dtype=np.float32).reshape(-1)
