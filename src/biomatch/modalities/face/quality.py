"""Face capture-quality measures and the checks a field operator can act on, for every face
plug-in: they need a 150x150 chip framed like dlib's and the five landmarks' measures
(``FacePoints``), so this module imports no detector library."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from biomatch.config import FaceQualityConfig
from biomatch.modalities.base import QualityCheck


class FacePoints(Protocol):
    """What the checks read from a face's landmarks (dlib's 5 points, YuNet's 5 points)."""

    @property
    def inter_eye_px(self) -> float: ...

    def head_pose_deg(self) -> tuple[float, float]: ...


def face_count_check(found: int, primary_only: bool) -> QualityCheck:
    if found == 0:
        return QualityCheck(
            "face_count", 0, "1", False, "No face found: face the camera, fill more of the frame."
        )
    if found > 1 and not primary_only:
        return QualityCheck(
            "face_count",
            found,
            "1",
            False,
            f"{found} faces found: capture one person only (or ask for the primary face).",
        )
    return QualityCheck("face_count", found, "1", True, "One face used.")


def face_checks(
    chip: np.ndarray, landmarks: FacePoints, config: FaceQualityConfig
) -> list[QualityCheck]:
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    centre = _central(grey)
    yaw, pitch = landmarks.head_pose_deg()
    return [
        _at_least(
            "inter_eye_distance_px",
            landmarks.inter_eye_px,
            config.min_inter_eye_px,
            "Face too small: move closer or use a higher resolution.",
        ),
        _at_least(
            "sharpness",
            float(cv2.Laplacian(grey, cv2.CV_64F).var()),
            config.min_sharpness,
            "Image blurred: hold the camera still and focus on the face.",
        ),
        _at_least(
            "brightness_min",
            float(centre.mean()),
            config.min_brightness,
            "Face under-exposed: add light in front of the face.",
        ),
        _at_most(
            "brightness_max",
            float(centre.mean()),
            config.max_brightness,
            "Face over-exposed: reduce direct light or flash.",
        ),
        _at_most(
            "clipped_fraction",
            float(((centre <= 5) | (centre >= 250)).mean()),
            config.max_clipped_fraction,
            "Large parts of the face are pure black or white: even out the lighting.",
        ),
        _at_most(
            "yaw_deg",
            abs(yaw),
            config.max_abs_yaw_deg,
            "Head turned sideways: ask the person to look straight at the camera.",
        ),
        _at_most(
            "pitch_deg",
            abs(pitch),
            config.max_abs_pitch_deg,
            "Head tilted up or down: ask the person to look straight at the camera.",
        ),
    ]


def _central(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    return grey[height // 5 : height - height // 5, width // 5 : width - width // 5]


def _at_least(name: str, score: float, minimum: float, message: str) -> QualityCheck:
    passed = score >= minimum
    return QualityCheck(name, score, f">= {minimum:g}", passed, "OK" if passed else message)


def _at_most(name: str, score: float, maximum: float, message: str) -> QualityCheck:
    passed = score <= maximum
    return QualityCheck(name, score, f"<= {maximum:g}", passed, "OK" if passed else message)
