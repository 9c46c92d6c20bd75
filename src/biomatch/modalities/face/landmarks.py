"""Five facial landmarks (two corners of each eye, base of the nose) and what they tell:
inter-eye distance, in-plane roll, and a rough yaw and pitch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import dlib
import numpy as np

from biomatch.modalities.face import models
from biomatch.modalities.face.detector import FaceBox

# Face geometry in units of the inter-eye distance (IED): the base of the nose lies this far
# below the eye line on a frontal face (median over 400 LFW faces: 0.775), and this far in
# front of the eye plane (chosen so that 99% of LFW's mostly frontal faces read within
# +-37 degrees). These are coarse estimates from five points, good enough to flag strong
# turns, not to measure pose.
_NOSE_DROP = 0.78
_NOSE_DEPTH = 0.40


@dataclass(frozen=True)
class FaceLandmarks:
    shape: dlib.full_object_detection
    points: np.ndarray  # (5, 2): 4 eye corners, then the base of the nose

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(centre of the eye on the image's left, centre of the eye on its right)."""
        first, second = self.points[0:2].mean(axis=0), self.points[2:4].mean(axis=0)
        return (first, second) if first[0] <= second[0] else (second, first)

    @property
    def inter_eye_px(self) -> float:
        left, right = self.eye_centres
        return float(np.linalg.norm(right - left))

    def head_pose_deg(self) -> tuple[float, float]:
        """(yaw, pitch) estimated from where the nose base sits against the eye line."""
        left, right = self.eye_centres
        ied = max(self.inter_eye_px, 1e-6)
        axis = (right - left) / ied
        normal = np.array([-axis[1], axis[0]])
        offset = self.points[4] - (left + right) / 2.0
        across = float(offset @ axis) / ied
        down = float(offset @ normal) / ied
        yaw = math.degrees(math.atan2(across, _NOSE_DEPTH))
        pitch = math.degrees(math.atan2(down - _NOSE_DROP, _NOSE_DEPTH))
        return yaw, pitch


def locate(rgb: np.ndarray, box: FaceBox) -> FaceLandmarks:
    shape = models.five_point_predictor()(rgb, box.as_dlib())
    points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return FaceLandmarks(shape=shape, points=points)


def align(rgb: np.ndarray, landmarks: FaceLandmarks, size: int = 150) -> np.ndarray:
    """The aligned face chip dlib's ResNet expects (150x150, 25% padding)."""
    return np.asarray(dlib.get_face_chip(rgb, landmarks.shape, size=size, padding=0.25))


# Small fixed perturbations of an aligned chip: (zoom, shift in px along x).
CHIP_JITTER = ((0.95, 0.0), (1.05, 0.0), (1.0, -3.0), (1.0, 3.0))


def jittered(chip: np.ndarray) -> list[np.ndarray]:
    """The chip zoomed and shifted by each of ``CHIP_JITTER`` (borders mirrored)."""
    size = chip.shape[1], chip.shape[0]
    centre = (chip.shape[1] / 2, chip.shape[0] / 2)
    out = []
    for zoom, shift in CHIP_JITTER:
        matrix = cv2.getRotationMatrix2D(centre, 0.0, zoom)
        matrix[0, 2] += shift
        out.append(cv2.warpAffine(chip, matrix, size, borderMode=cv2.BORDER_REFLECT))
    return out
