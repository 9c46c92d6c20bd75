"""The finger template: minutiae plus their matcher descriptors, as compact bytes.

Layout (little-endian): magic ``BMF2``, uint16 width, height, resolution (ppi), minutiae
count, descriptor size; uint8 finger position (ANSI/NIST code, 0 = unknown), uint8 impression
type (ANSI/NIST-ITL and ISO/IEC 19794 code: 0 live-scan plain contact, 24 plain contactless,
stationary subject; templates written before it existed hold 0);
then count x 5 float32 minutiae (x, y, theta, kind, reliability) and count x size float16
descriptors. Storing the descriptors keeps comparisons free of per-reference set-up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from biomatch.errors import InvalidTemplate
from biomatch.modalities.finger.extractor import MINUTIA_FIELDS

MAGIC = b"BMF2"
_HEADER = struct.Struct("<4sHHHHHBB")
MAX_MINUTIAE = 255
LIVE_SCAN_PLAIN = 0
CONTACTLESS_PLAIN = 24  # ANSI/NIST-ITL 1-2011 Update 2013: plain contactless, stationary subject


def stack_for_matching(templates: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (x, -y, theta as float64), descriptors (float32) of many templates, stacked,
    with row offsets: what ``matcher.score_stacked`` takes, in one copy per template."""
    counts = np.empty(len(templates), dtype=np.int64)
    size = 0
    for k, data in enumerate(templates):
        if len(data) < _HEADER.size or data[:4] != MAGIC:
            raise InvalidTemplate("Not a BioMatch finger template.")
        _, _, _, _, counts[k], size, _, _ = _HEADER.unpack_from(data)
    offsets = np.zeros(len(templates) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    points = np.empty((int(offsets[-1]), 3), dtype=np.float64)
    descriptors = np.empty((int(offsets[-1]), size), dtype=np.float32)
    for k, data in enumerate(templates):
        n = int(counts[k])
        points_end = _HEADER.size + n * MINUTIA_FIELDS * 4
        if len(data) != points_end + n * size * 2:
            raise InvalidTemplate("The finger template's length does not match its header.")
        lo, hi = offsets[k], offsets[k + 1]
        raw = np.frombuffer(data, "<f4", n * MINUTIA_FIELDS, _HEADER.size)
        points[lo:hi] = raw.reshape(n, MINUTIA_FIELDS)[:, :3]
        descriptors[lo:hi] = np.frombuffer(data, "<f2", n * size, points_end).reshape(n, size)
    points[:, 1] *= -1.0  # y up, as matcher.matching_frame
    return points, descriptors, offsets


@dataclass(frozen=True)
class FingerTemplate:
    minutiae: np.ndarray  # N x 5 float32, see extractor.MINUTIA_FIELDS
    descriptors: np.ndarray  # N x D float32, unit rows
    width: int
    height: int
    resolution_ppi: int = 500
    finger_position: int = 0
    impression_type: int = LIVE_SCAN_PLAIN

    def to_bytes(self) -> bytes:
        n = self.minutiae.shape[0]
        size = self.descriptors.shape[1] if self.descriptors.ndim == 2 else 0
        header = _HEADER.pack(
            MAGIC,
            self.width,
            self.height,
            self.resolution_ppi,
            n,
            size,
            self.finger_position,
            self.impression_type,
        )
        return (
            header
            + np.ascontiguousarray(self.minutiae, dtype="<f4").tobytes()
            + np.ascontiguousarray(self.descriptors, dtype="<f2").tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FingerTemplate:
        if len(data) < _HEADER.size or data[:4] != MAGIC:
            raise InvalidTemplate("Not a BioMatch finger template.")
        _, width, height, ppi, n, size, position, impression = _HEADER.unpack_from(data)
        points_end = _HEADER.size + n * MINUTIA_FIELDS * 4
        if len(data) != points_end + n * size * 2:
            raise InvalidTemplate("The finger template's length does not match its header.")
        minutiae = np.frombuffer(data, dtype="<f4", count=n * MINUTIA_FIELDS, offset=_HEADER.size)
        descriptors = np.frombuffer(data, dtype="<f2", count=n * size, offset=points_end)
        return cls(
            minutiae=minutiae.reshape(n, MINUTIA_FIELDS).astype(np.float32),
            descriptors=descriptors.reshape(n, size).astype(np.float32),
            width=width,
            height=height,
            resolution_ppi=ppi,
            finger_position=position,
            impression_type=impression,
        )
