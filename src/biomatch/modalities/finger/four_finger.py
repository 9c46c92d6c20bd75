"""A phone photo of the four fingers of one hand -> four fingertip photos, labelled.

Stages: skin mask (Otsu on YCrCb's Cr, on a reduced copy; refined by the hand's own colours
where it also reaches a second edge) -> the edge the hand enters from
(its fingers point away from it) -> a quarter-turn rotation, fingers up -> the fingertips are
the four highest points of the hand's upper outline, the valleys between them split the
fingers -> each distal phalanx is cut from its tip down (TIP_LENGTH_WIDTHS finger widths),
the rest of the photo painted out -> labels from the order and the hand: with the pads
towards the camera and the fingers up, a left hand shows index..little from left to right,
a right hand little..index.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import find_peaks

from biomatch.modalities.base import CapturePart
from biomatch.modalities.finger.contactless import largest_region

FOUR_FINGER = "four_finger"
# ANSI/NIST finger position codes, index to little.
POSITIONS = {"right": (2, 3, 4, 5), "left": (7, 8, 9, 10)}
WORK_SIDE = 512  # the mask is found on a copy this long
MIN_SIDE_PX = 64  # a photo narrower than this cannot show four fingertips
TIP_LENGTH_WIDTHS = 1.6
OUTER_REACH_PITCHES = 1.3  # the index and little finger strips reach this far outwards
PAINT = (128, 128, 128)  # neutral grey: no skin colour, so the fingertip mask ignores it
# A hand enters the photo from one edge. Where its skin-colour mask also covers more than this
# share of a second edge, something else of skin colour touches it (a wooden desk in 3 of the
# 28 RidgeBase photos, 0.12-0.18 of the second edge; 0 in the other 25).
SECOND_EDGE_COVER = 0.05


@dataclass(frozen=True)
class HandLayout:
    """Where the four fingertips are in the photo turned fingers-up (work resolution)."""

    turns: int  # quarter turns (np.rot90) that bring the fingers up
    tips_x: list[int]
    tips_y: list[int]
    valleys_x: list[int]  # the three gaps between the fingers
    mask: np.ndarray  # the hand, turned, at work resolution


def split_four_fingers(image: np.ndarray, hand: str) -> list[CapturePart]:
    """The four fingertips (index, middle, ring, little), tip up; fewer where they were not
    all found (the caller names that a segmentation failure). A grey photo is read as colour
    with equal channels, as the service decodes it: it shows no skin colour."""
    if image.ndim == 2:
        image = np.repeat(image[..., np.newaxis], 3, axis=2)
    layout = find_fingertips(image)
    if layout is None:
        return []
    scale = max(image.shape[:2]) / WORK_SIDE
    turned = np.ascontiguousarray(np.rot90(image, layout.turns))
    size = (turned.shape[1], turned.shape[0])
    mask = cv2.resize(layout.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(
        bool
    )
    parts = []
    gaps = layout.valleys_x
    reach = OUTER_REACH_PITCHES * float(np.mean(np.diff(gaps)))  # outer fingers: one pitch on
    bounds = [max(0.0, gaps[0] - reach), *gaps, min(layout.mask.shape[1], gaps[-1] + reach)]
    for number in range(4):
        left, right = round(bounds[number] * scale), round(bounds[number + 1] * scale)
        top = max(0, round((layout.tips_y[number] - 4) * scale))
        width = _finger_width(mask, top, left, right)
        bottom = min(turned.shape[0], round(top + TIP_LENGTH_WIDTHS * width))
        crop = turned[top:bottom, left:right].copy()
        crop[~mask[top:bottom, left:right]] = PAINT
        region = _region_in_photo((left, top, right, bottom), turned.shape[:2], layout.turns)
        parts.append((crop, region))
    if hand == "right":  # left to right: little .. index
        parts.reverse()
    return [
        CapturePart(position, crop, region)
        for position, (crop, region) in zip(POSITIONS[hand], parts, strict=True)
    ]


def find_fingertips(image: np.ndarray) -> HandLayout | None:
    if min(image.shape[:2]) < MIN_SIDE_PX:
        return None
    small = _reduced(image)
    mask = skin_mask(small)
    if mask.sum() < 0.03 * mask.size:
        return None
    turns = _turns_fingers_up(mask)
    turned = np.ascontiguousarray(np.rot90(mask, turns))
    grey = cv2.cvtColor(np.ascontiguousarray(np.rot90(small, turns)), cv2.COLOR_RGB2GRAY)
    pitch = float(np.percentile(turned.sum(axis=1), 90)) / 4
    if pitch < 4:
        return None
    gaps = _gaps(grey, turned, pitch)
    if gaps is None:
        return None
    tips_x, tips_y = [], []
    for a, b in itertools.pairwise(gaps):
        centre = slice(a + (b - a) // 4, b - (b - a) // 4 + 1)
        rows = np.nonzero(turned[:, centre].any(axis=1))[0]
        if not rows.size or not 0.45 * pitch <= b - a <= 1.8 * pitch:
            return None
        tips_x.append((a + b) // 2)
        tips_y.append(int(rows[0]))
    return HandLayout(turns, tips_x, tips_y, list(gaps[1:-1]), turned)


def _gaps(grey: np.ndarray, mask: np.ndarray, pitch: float) -> list[int] | None:
    """The hand's two sides and the three gaps between its fingers, left to right, in the
    distal band: the gaps are the columns where the black-hat (dark, thin) response of the
    grey image is strongest, one finger pitch or so apart."""
    rows = np.nonzero(mask.any(axis=1))[0]
    top = int(rows[0])
    band = slice(top, min(mask.shape[0], int(top + 3 * pitch)))
    size = max(3, int(pitch / 3)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    dark = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel).astype(np.float64)
    inside = mask[band]
    profile = (dark[band] * inside).sum(axis=0) / np.maximum(inside.sum(axis=0), 1)
    profile = cv2.GaussianBlur(profile.reshape(1, -1), (0, 0), max(1.0, pitch / 12)).ravel()
    lower = mask[min(mask.shape[0] - 1, int(top + 3 * pitch))]
    columns = np.nonzero(lower)[0]
    if columns.size < 2:
        return None
    left, right = int(columns[0]), int(columns[-1])
    margin = int(0.45 * pitch)
    window = profile[left + margin : right - margin + 1]
    found, props = find_peaks(window, distance=max(2, int(0.6 * pitch)), prominence=0)
    if len(found) < 3:
        return None
    strongest = np.sort(found[np.argsort(-props["prominences"])[:3]]) + left + margin
    return [left, *(int(x) for x in strongest), right]


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """The hand: the largest region of skin colour (Otsu on Cr), holes filled, opened; where
    it reaches a second edge of the photo, refined by the hand's own colours."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr = cv2.GaussianBlur(ycrcb[..., 1], (0, 0), 2)
    _, binary = cv2.threshold(cr, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    hand = largest_region(opened > 0)
    if hand.any() and _second_edge_cover(hand) > SECOND_EDGE_COVER:
        return _own_colours(rgb, hand, cr)
    return hand


def _second_edge_cover(mask: np.ndarray) -> float:
    """How much of the photo's second most covered edge the mask covers."""
    return sorted(_edge_cover(mask).values())[-2]


def _own_colours(rgb: np.ndarray, mask: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """The part of ``mask`` that has the hand's colours: GrabCut (OpenCV) seeded with the
    redder of the mask's two Cr classes (Otsu within the mask) as sure hand and everything
    else as probable background, so that a skin-coloured surface the hand lies on falls to
    the background's colour model."""
    inside = cr[mask].reshape(-1, 1)
    split, _ = cv2.threshold(inside, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    reddest = mask & (cr > split)
    seed = cv2.erode(reddest.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if seed.all() or not seed.any():  # one colour everywhere: nothing to tell apart
        return mask
    labels = np.full(mask.shape, cv2.GC_PR_BGD, np.uint8)
    labels[seed] = cv2.GC_FGD
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    no_rect = (0, 0, 0, 0)  # the seed mask, not a rectangle, starts it
    cv2.grabCut(bgr, labels, no_rect, background, foreground, 3, cv2.GC_INIT_WITH_MASK)
    hand = largest_region((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return hand if hand.any() else mask


def _reduced(image: np.ndarray) -> np.ndarray:
    scale = WORK_SIDE / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image[..., :3], size, interpolation=cv2.INTER_AREA)


def _turns_fingers_up(mask: np.ndarray) -> int:
    """Quarter turns that put the edge the hand enters from (most covered) at the bottom."""
    cover = _edge_cover(mask)
    return max(cover, key=lambda turns: cover[turns])


def _edge_cover(mask: np.ndarray) -> dict[int, float]:
    """The share of each edge of the photo the mask covers, by the quarter turns (np.rot90)
    that bring that edge to the bottom."""
    return {
        0: float(mask[-1, :].mean()),  # bottom edge: fingers already point up
        1: float(mask[:, 0].mean()),  # left edge: one counter-clockwise turn brings it down
        2: float(mask[0, :].mean()),
        3: float(mask[:, -1].mean()),
    }


def _finger_width(mask: np.ndarray, top: int, left: int, right: int) -> float:
    """Width of the finger strip a little below its tip."""
    strip = mask[:, left:right]
    rows = strip.sum(axis=1)
    below = rows[top : top + max(8, 3 * (right - left) // 2)]
    return float(np.percentile(below, 90)) if below.size else float(right - left)


def _region_in_photo(
    box: tuple[int, int, int, int], turned_shape: tuple[int, ...], turns: int
) -> tuple[int, int, int, int]:
    """A box of the turned photo as (left, top, right, bottom) in the photo."""
    left, top, right, bottom = box
    height, width = turned_shape[0], turned_shape[1]
    corners = np.array([[left, top], [right, bottom]], dtype=np.int64)
    for _ in range(turns % 4):  # undo one counter-clockwise quarter turn at a time
        x, y = corners[:, 0].copy(), corners[:, 1].copy()
        corners = np.column_stack((height - y, x))
        height, width = width, height
    xs, ys = sorted(corners[:, 0].tolist()), sorted(corners[:, 1].tolist())
    return int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])
