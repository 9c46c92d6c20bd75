"""Face detection with OpenCV Zoo's YuNet: boxes and five landmarks per face."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from biomatch.modalities.sface import models

# YuNet's non-maximum suppression overlap and its candidate cap (OpenCV Zoo's defaults).
_NMS_THRESHOLD = 0.3
_TOP_K = 5000

# Face geometry in units of the inter-eye distance (IED) for YuNet's points (eye centres
# and the nose *tip*, which sits higher and further forward than dlib's nose base): the
# tip lies this far below the eye line on a frontal face (median over 400 LFW faces:
# 0.526), and this far in front of the eye plane (chosen, as for dlib, so that 99% of
# LFW's mostly frontal faces read within +-37 degrees in both yaw and pitch). Coarse: good
# enough to flag strong turns, not to measure pose.
_NOSE_DROP = 0.53
_NOSE_DEPTH = 0.70


@dataclass(frozen=True)
class FivePoints:
    """YuNet's landmarks: the eye on the image's left, the other eye, the nose tip, the
    mouth corner on the image's left, the other corner; (5, 2) in image pixels."""

    points: np.ndarray

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        first, second = self.points[0], self.points[1]
        return (first, second) if first[0] <= second[0] else (second, first)

    @property
    def inter_eye_px(self) -> float:
        left, right = self.eye_centres
        return float(np.linalg.norm(right - left))

    def pose_offsets(self) -> tuple[float, float]:
        """Where the nose tip sits against the eye line: (across, down) in IED units."""
        left, right = self.eye_centres
        ied = max(self.inter_eye_px, 1e-6)
        axis = (right - left) / ied
        normal = np.array([-axis[1], axis[0]])
        offset = self.points[2] - (left + right) / 2.0
        return float(offset @ axis) / ied, float(offset @ normal) / ied

    def head_pose_deg(self) -> tuple[float, float]:
        """(yaw, pitch) estimated from the nose tip against the eye line."""
        across, down = self.pose_offsets()
        yaw = math.degrees(math.atan2(across, _NOSE_DEPTH))
        pitch = math.degrees(math.atan2(down - _NOSE_DROP, _NOSE_DEPTH))
        return yaw, pitch


@dataclass(frozen=True)
class YuNetFace:
    left: int
    top: int
    right: int
    bottom: int
    score: float
    landmarks: FivePoints

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def centre_distance(self, x: float, y: float) -> float:
        return float(np.hypot((self.left + self.right) / 2 - x, (self.top + self.bottom) / 2 - y))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


class YuNetDetector:
    """YuNet (``cv2.FaceDetectorYN``) on a copy scaled down to ``long_side``; not
    thread-safe (one OpenCV network): the plug-in serialises calls."""

    def __init__(self, long_side: int, threshold: float) -> None:
        self._long_side = long_side
        self._net: Any = cv2.FaceDetectorYN.create(
            str(models.detector_path()), "", (320, 320), threshold, _NMS_THRESHOLD, _TOP_K
        )

    def detect(
        self, rgb: np.ndarray, primary: Literal["centre", "largest"] = "centre"
    ) -> list[YuNetFace]:
        """The faces in an RGB image, the primary one first."""
        scale = min(1.0, self._long_side / max(rgb.shape[:2]))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        faces = [] if rows is None else [_face(row, scale, rgb.shape) for row in rows]
        return primary_first([face for face in faces if face.area > 0], rgb.shape, primary)


def primary_first(
    faces: list[YuNetFace], shape: tuple[int, ...], rule: Literal["centre", "largest"]
) -> list[YuNetFace]:
    """The faces with the primary one first: nearest the image centre, or the largest."""
    if rule == "largest":
        return sorted(faces, key=lambda face: -face.area)
    height, width = shape[:2]
    return sorted(faces, key=lambda face: face.centre_distance(width / 2, height / 2))


def _face(row: np.ndarray, scale: float, shape: tuple[int, ...]) -> YuNetFace:
    height, width = shape[:2]
    x, y, w, h = (float(value) / scale for value in row[:4])
    points = np.asarray(row[4:14], dtype=np.float64).reshape(5, 2) / scale
    return YuNetFace(
        left=max(0, round(x)),
        top=max(0, round(y)),
        right=min(width - 1, round(x + w)),
        bottom=min(height - 1, round(y + h)),
        score=float(row[14]),
        landmarks=FivePoints(points),
    )
