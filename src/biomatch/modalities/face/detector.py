"""Face detection: dlib's HOG detector on a size-capped copy of the image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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

    def centre_distance(self, x: float, y: float) -> float:
        return float(np.hypot((self.left + self.right) / 2 - x, (self.top + self.bottom) / 2 - y))

    def as_dlib(self) -> dlib.rectangle:
        return dlib.rectangle(self.left, self.top, self.right, self.bottom)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


class FaceDetector:
    """dlib's HOG detector first (fast), on a copy scaled down to a size cap (its cost grows
    with pixels); small images are retried with one 2x upsampling. Where HOG finds nothing
    (turned or partly lit faces), dlib's CNN detector searches a smaller copy: slower, but
    it only runs on those captures. With ``detector="cnn"`` the CNN searches first and HOG
    is the fallback. The primary face comes first (``FaceConfig.primary``)."""

    def __init__(self, config: FaceConfig) -> None:
        self._config = config
        self._hog = models.hog_detector()
        self._cnn = models.cnn_detector() if config.cnn_long_side > 0 else None

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        searches = [self._run_hog, self._run_cnn]
        if self._config.detector == "cnn":
            searches.reverse()
        boxes: list[FaceBox] = []
        for search in searches:
            boxes = search(rgb)
            if boxes:
                break
        return primary_first(boxes, rgb.shape, self._config.primary)

    def _run_hog(self, rgb: np.ndarray) -> list[FaceBox]:
        small, scale = _scaled(rgb, self._config.detection_long_side)
        rects, scores, _ = self._hog.run(small, 0, 0.0)
        if not rects and max(rgb.shape[:2]) < self._config.upsample_below_long_side:
            rects, scores, _ = self._hog.run(small, 1, 0.0)
        return _to_boxes(rects, scores, scale, rgb.shape)

    def _run_cnn(self, rgb: np.ndarray) -> list[FaceBox]:
        if self._cnn is None:
            return []
        small, scale = _scaled(rgb, self._config.cnn_long_side)
        found = self._cnn(small, 0)
        rects = [detection.rect for detection in found]
        return _to_boxes(rects, [d.confidence for d in found], scale, rgb.shape)


def primary_first(
    boxes: list[FaceBox], shape: tuple[int, ...], rule: Literal["centre", "largest"]
) -> list[FaceBox]:
    """The boxes with the primary face first: nearest the image centre, or the largest."""
    if rule == "largest":
        return sorted(boxes, key=lambda box: -box.area)
    height, width = shape[:2]
    return sorted(boxes, key=lambda box: box.centre_distance(width / 2, height / 2))


def _scaled(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, long_side / max(rgb.shape[:2]))
    if scale == 1.0:
        return rgb, scale
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def _to_boxes(
    rects: Sequence[dlib.rectangle], scores: Sequence[float], scale: float, shape: tuple[int, ...]
) -> list[FaceBox]:
    return [_to_box(r, s, scale, shape) for r, s in zip(rects, scores, strict=True)]


def _to_box(rect: dlib.rectangle, score: float, scale: float, shape: tuple[int, ...]) -> FaceBox:
    height, width = shape[:2]
    return FaceBox(
        left=max(0, round(rect.left() / scale)),
        top=max(0, round(rect.top() / scale)),
        right=min(width - 1, round(rect.right() / scale)),
        bottom=min(height - 1, round(rect.bottom() / scale)),
        score=float(score),
    )
