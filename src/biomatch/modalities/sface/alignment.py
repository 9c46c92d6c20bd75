"""5-point alignment onto the 112x112 ArcFace template SFace expects, and a 150x150 chip
for the quality measures, framed like dlib's (so the face-quality thresholds in
``FaceQualityConfig`` keep their meaning)."""

from __future__ import annotations

import cv2
import numpy as np

# Eye centres, nose tip and mouth corners (image left first) on the 112x112 canvas.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
EMBEDDING_SIZE = 112
QUALITY_SIZE = 150
# dlib's 150x150 chip with 25% padding puts the eye centres about 53.5 px apart with their
# midpoint at (74.5, 47.5) (measured on LFW); the quality chip maps the template there.
_QUALITY_SCALE = 53.5 / float(ARCFACE_TEMPLATE[1, 0] - ARCFACE_TEMPLATE[0, 0])
_QUALITY_TEMPLATE = (ARCFACE_TEMPLATE - ARCFACE_TEMPLATE[:2].mean(axis=0)) * _QUALITY_SCALE + [
    74.5,
    47.5,
]


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, shift) taking ``source``
    points to ``target`` points (Umeyama 1991), as a 2x3 matrix."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    covariance = centred_target.T @ centred_source / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(signs) @ vt
    variance = float(centred_source.var(axis=0).sum())
    scale = float(singular @ signs) / variance if variance > 1e-12 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = target_mean - scale * rotation @ source_mean
    return matrix


def _warp(image: np.ndarray, points: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    matrix = similarity_transform(points, template)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def embedding_chip(
    rgb: np.ndarray,
    points: np.ndarray,
    template: np.ndarray = ARCFACE_TEMPLATE,
    size: int = EMBEDDING_SIZE,
) -> np.ndarray:
    """The ``size`` x ``size`` RGB chip with the five points moved onto ``template`` (by
    default the 112x112 chip SFace embeds)."""
    return _warp(rgb, points, template, size)


def arcface_template(size: int) -> np.ndarray:
    """The ArcFace template scaled from its 112x112 canvas to ``size`` x ``size``."""
    scaled: np.ndarray = ARCFACE_TEMPLATE * (size / EMBEDDING_SIZE)
    return scaled


def quality_chip(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A 150x150 RGB chip framed like dlib's, for the quality measures."""
    return _warp(rgb, points, _QUALITY_TEMPLATE, QUALITY_SIZE)
