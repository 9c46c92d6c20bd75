"""The face capture-quality checks, with the dlib plug-in's names, thresholds and messages
(``modalities/face/quality.py``), measured on YuNet's points and a dlib-framed chip.

The measures are written out here rather than imported because ``modalities/face``
imports dlib at module level, and the SFace path must not load it.
"""

from __future__ import annotations

import cv2
import numpy as np

from biomatch.config import FaceQualityConfig
from biomatch.modalities.base import QualityCheck
from biomatch.modalities.sface.detector import FivePoints


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
    chip: np.ndarray, landmarks: FivePoints, config: FaceQualityConfig
) -> list[QualityCheck]:
    """``chip``: the 150x150 quality chip (``alignment.quality_chip``)."""
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
