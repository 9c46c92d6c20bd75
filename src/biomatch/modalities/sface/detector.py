"""Face detection with OpenCV Zoo's YuNet: boxes and five landmarks per face."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np

from biomatch.modalities.sface import models

# YuNet's non-maximum suppression overlap and its candidate cap (OpenCV Zoo's defaults).
_NMS_THRESHOLD = 0.3
_TOP_K = 5000

# Face geometry in units of the inter-eye distance (IED) for YuNet's points (eye centres
# and the nose *tip*, which sits higher and further forward than dlib's nose base), after
# the landmark pass: the tip lies this far below the eye line on a frontal face (median
# over a seeded sample of 600 LFW faces: 0.573), and the depths turn its offsets into
# angles, fitted on that sample to dlib's 99th percentiles of |yaw| and |pitch| on the same
# images (40.9 and 34.5 degrees). Through the gate (benchmarks/face_quality.py) the 40 / 35
# degree thresholds then refuse 0.8% / 0.5% of the sample, dlib's 1.5% / 0.8%. Coarse:
# good enough to flag strong turns, not to measure pose.
_NOSE_DROP = 0.57
_YAW_DEPTH = 0.49
_PITCH_DEPTH = 0.26


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
        yaw = math.degrees(math.atan2(across, _YAW_DEPTH))
        pitch = math.degrees(math.atan2(down - _NOSE_DROP, _PITCH_DEPTH))
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
    """YuNet (``cv2.FaceDetectorYN``) on a copy scaled down to ``long_side``; where
    ``landmark_face_px`` is set, the primary face's five points are then found again on a
    crop around it scaled so that the face box is that wide (YuNet's points are most
    precise on faces of a few tens of pixels: measured on LFW, see README). Not
    thread-safe (one OpenCV network): the plug-in serialises calls."""

    def __init__(self, long_side: int, threshold: float, landmark_face_px: int = 0) -> None:
        self._long_side = long_side
        self._landmark_face_px = landmark_face_px
        self._net: Any = cv2.FaceDetectorYN.create(
            str(models.detector_path()), "", (320, 320), threshold, _NMS_THRESHOLD, _TOP_K
        )

    def detect(
        self, rgb: np.ndarray, primary: Literal["centre", "largest"] = "centre"
    ) -> list[YuNetFace]:
        """The faces in an RGB image, the primary one first."""
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        scale = min(1.0, self._long_side / max(rgb.shape[:2]))
        faces = primary_first(self._search(bgr, scale), rgb.shape, primary)
        if faces and self._landmark_face_px > 0:
            faces[0] = self._refined(bgr, faces[0])
        return faces

    def _search(
        self, bgr: np.ndarray, scale: float, crop: tuple[int, int, int, int] | None = None
    ) -> list[YuNetFace]:
        """Faces in ``bgr`` (or in its ``crop``: left, top, right, bottom) searched at
        ``scale``, in ``bgr``'s coordinates."""
        left, top, right, bottom = crop or (0, 0, bgr.shape[1], bgr.shape[0])
        part = bgr[top:bottom, left:right]
        if round(min(part.shape[:2]) * scale) < 1:  # a side scales to nothing: no face fits
            return []
        if scale < 1.0:
            part = cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self._net.setInputSize((part.shape[1], part.shape[0]))
        _, rows = self._net.detect(part)
        found = [] if rows is None else [_face(row, scale, (left, top), bgr.shape) for row in rows]
        return [face for face in found if face.area > 0]

    def _refined(self, bgr: np.ndarray, face: YuNetFace) -> YuNetFace:
        """``face`` with its points found again at the landmark scale (unchanged where the
        face is already that small, or the crop finds no face)."""
        width = face.right - face.left
        scale = self._landmark_face_px / max(width, 1)
        if scale >= 1.0:
            return face
        side = max(width, face.bottom - face.top)
        centre_x, centre_y = (face.left + face.right) // 2, (face.top + face.bottom) // 2
        crop = (max(0, centre_x - side), max(0, centre_y - side), centre_x + side, centre_y + side)
        found = self._search(bgr, scale, crop)
        if not found:
            return face
        best = min(found, key=lambda f: f.centre_distance(centre_x, centre_y))
        return replace(face, landmarks=best.landmarks)


def primary_first(
    faces: list[YuNetFace], shape: tuple[int, ...], rule: Literal["centre", "largest"]
) -> list[YuNetFace]:
    """The faces with the primary one first: nearest the image centre, or the largest."""
    if rule == "largest":
        return sorted(faces, key=lambda face: -face.area)
    height, width = shape[:2]
    return sorted(faces, key=lambda face: face.centre_distance(width / 2, height / 2))


def _face(
    row: np.ndarray, scale: float, offset: tuple[int, int], shape: tuple[int, ...]
) -> YuNetFace:
    height, width = shape[:2]
    shift = np.array(offset, dtype=np.float64)
    x, y, w, h = (float(value) / scale for value in row[:4])
    points = np.asarray(row[4:14], dtype=np.float64).reshape(5, 2) / scale + shift
    return YuNetFace(
        left=max(0, round(x + shift[0])),
        top=max(0, round(y + shift[1])),
        right=min(width - 1, round(x + w + shift[0])),
        bottom=min(height - 1, round(y + h + shift[1])),
        score=float(row[14]),
        landmarks=FivePoints(points),
    )
