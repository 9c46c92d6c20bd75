"""Face detection: dlib's HOG detector on a size-capped copy of the image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np

from biomatch.config import FaceConfig
from biomatch.modalities.face import models


@dataclass(frozen=True)
class FaceBox:
    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def as_dlib(self) -> dlib.rectangle:
        return dlib.rectangle(self.left, self.top, self.right, self.bottom)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


class FaceDetector:
    """dlib's HOG detector first (fast), on a copy scaled down to a size cap (its cost grows
    with pixels); small images are retried with one 2x upsampling. Where HOG finds nothing
    (turned or partly lit faces), dlib's CNN detector searches a smaller copy: slower, but
    it only runs on those captures."""

    def __init__(self, config: FaceConfig) -> None:
        self._config = config
        self._hog = models.hog_detector()
        self._cnn = models.cnn_detector() if config.cnn_fallback_long_side > 0 else None

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        long_side = max(rgb.shape[:2])
        small, scale = _scaled(rgb, self._config.detection_long_side)
        rects, scores, _ = self._hog.run(small, 0, 0.0)
        if not rects and long_side < self._config.upsample_below_long_side:
            rects, scores, _ = self._hog.run(small, 1, 0.0)
        if not rects and self._cnn is not None:
            small, scale = _scaled(rgb, self._config.cnn_fallback_long_side)
            found = self._cnn(small, 0)
            rects = [detection.rect for detection in found]
            scores = [detection.confidence for detection in found]
        boxes = [
            _to_box(rect, score, scale, rgb.shape)
            for rect, score in zip(rects, scores, strict=True)
        ]
        return sorted(boxes, key=lambda box: box.area, reverse=True)


def _scaled(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, long_side / max(rgb.shape[:2]))
    if scale == 1.0:
        return rgb, scale
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def _to_box(rect: dlib.rectangle, score: float, scale: float, shape: tuple[int, ...]) -> FaceBox:
    height, width = shape[:2]
    return FaceBox(
        left=max(0, round(rect.left() / scale)),
        top=max(0, round(rect.top() / scale)),
        right=min(width - 1, round(rect.right() / scale)),
        bottom=min(height - 1, round(rect.bottom() / scale)),
        score=float(score),
    )
