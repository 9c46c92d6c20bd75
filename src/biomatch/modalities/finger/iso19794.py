"""ISO/IEC 19794-2 finger minutiae records (2005 "020" and 2011 "030"): export and import.

One record holds one or more finger views; each view carries its finger position (ANSI/NIST
code), image size and resolution, and its minutiae. Positions are pixels from the top-left
corner; angles are counter-clockwise from the x axis in units of 360/256 degrees; minutia
quality is 0-100; resolutions are pixels per centimetre. Big-endian throughout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np

from biomatch.errors import InvalidTemplate
from biomatch.modalities.finger.extractor import BIFURCATION, ENDING, MINUTIA_FIELDS, OTHER

Version = Literal["2005", "2011"]
_VERSION_TAGS: dict[Version, bytes] = {"2005": b"020\x00", "2011": b"030\x00"}
_MAGIC = b"FMR\x00"
_ISO_TYPE = {ENDING: 0b01, BIFURCATION: 0b10, OTHER: 0b00}
_KIND = {0b01: ENDING, 0b10: BIFURCATION, 0b00: OTHER, 0b11: OTHER}
_ANGLE_UNIT = 2 * np.pi / 256
_CM_PER_INCH = 2.54
# 2011 view header: position, representation number, resolution x, y (ppcm), impression type,
# width, height, minutia field length, ridge ending type, minutiae count.
_VIEW_2011 = ">BBHHBHHBBB"


@dataclass(frozen=True)
class FingerView:
    minutiae: np.ndarray  # N x 5 float32, see extractor.MINUTIA_FIELDS
    width: int
    height: int
    resolution_ppi: int = 500
    finger_position: int = 0
    quality: int = 0  # finger quality 0-100 (e.g. NFIQ 2)
    impression_type: int = 0  # 0 live-scan plain, 24 plain contactless (2011 records only)


def encode(views: list[FingerView], version: Version = "2011") -> bytes:
    if not views:
        raise InvalidTemplate("An ISO/IEC 19794-2 record needs at least one finger view.")
    if version == "2005":
        return _encode_2005(views)
    return _encode_2011(views)


def decode(data: bytes) -> list[FingerView]:
    """Every finger view of a record; raises ``InvalidTemplate`` for anything malformed."""
    if len(data) < 12 or data[:4] != _MAGIC:
        raise InvalidTemplate("Not an ISO/IEC 19794-2 finger minutiae record (no FMR header).")
    (length,) = struct.unpack_from(">I", data, 8)
    if length != len(data):
        raise InvalidTemplate(f"Record length field says {length} bytes; {len(data)} given.")
    try:
        if data[4:8] == _VERSION_TAGS["2005"]:
            return _decode_2005(data)
        if data[4:8] == _VERSION_TAGS["2011"]:
            return _decode_2011(data)
    except struct.error:
        raise InvalidTemplate("The ISO/IEC 19794-2 record is truncated.") from None
    raise InvalidTemplate(f"Unsupported ISO/IEC 19794-2 version {data[4:8]!r}.")


def _minutiae_bytes(minutiae: np.ndarray, width: int, height: int) -> bytes:
    if minutiae.shape[0] > 255:
        raise InvalidTemplate("A finger view holds at most 255 minutiae.")
    out = bytearray()
    for x, y, theta, kind, reliability in minutiae[:, :MINUTIA_FIELDS]:
        xi = int(np.clip(round(float(x)), 0, min(width - 1, 0x3FFF)))
        yi = int(np.clip(round(float(y)), 0, min(height - 1, 0x3FFF)))
        type_bits = _ISO_TYPE.get(int(kind), 0)
        angle = round(float(theta) % (2 * np.pi) / _ANGLE_UNIT) % 256
        quality = int(np.clip(round(float(reliability) * 100), 0, 100))
        out += struct.pack(">HHBB", (type_bits << 14) | xi, yi, angle, quality)
    return bytes(out)


def _parse_minutiae(data: bytes, offset: int, count: int, field: int) -> np.ndarray:
    minutiae = np.zeros((count, MINUTIA_FIELDS), dtype=np.float32)
    for k in range(count):
        word_x, word_y, angle = struct.unpack_from(">HHB", data, offset + k * field)
        quality = data[offset + k * field + 5] if field >= 6 else 0
        minutiae[k] = (
            word_x & 0x3FFF,
            word_y & 0x3FFF,
            angle * _ANGLE_UNIT,
            _KIND[word_x >> 14],
            quality / 100.0,
        )
    return minutiae


def _ppcm(ppi: int) -> int:
    return round(ppi / _CM_PER_INCH)


def _ppi(ppcm: int) -> int:
    return round(ppcm * _CM_PER_INCH)


def _encode_2005(views: list[FingerView]) -> bytes:
    if any(view.impression_type > 0x0F for view in views):
        raise InvalidTemplate(
            "An ISO/IEC 19794-2:2005 record holds a 4-bit impression type and cannot say "
            "'contactless' (code 24): export version 2011.",
            impression_types=sorted({view.impression_type for view in views}),
        )
    first = views[0]
    body = bytearray()
    for number, view in enumerate(views):
        body += struct.pack(
            ">BBBB",
            view.finger_position,
            ((number & 0x0F) << 4) | (view.impression_type & 0x0F),
            max(0, min(100, view.quality)),
            view.minutiae.shape[0],
        )
        body += _minutiae_bytes(view.minutiae, view.width, view.height)
        body += struct.pack(">H", 0)  # no extended data
    header = struct.pack(
        ">HHHHHBB",
        0,  # capture equipment: not certified, type unreported
        first.width,
        first.height,
        _ppcm(first.resolution_ppi),
        _ppcm(first.resolution_ppi),
        len(views),
        0,
    )
    total = 12 + len(header) + len(body)
    return _MAGIC + _VERSION_TAGS["2005"] + struct.pack(">I", total) + header + bytes(body)


def _decode_2005(data: bytes) -> list[FingerView]:
    _, width, height, res_x, _, count, _ = struct.unpack_from(">HHHHHBB", data, 12)
    offset = 24
    views = []
    for _ in range(count):
        position, view_impression, quality, n = struct.unpack_from(">BBBB", data, offset)
        offset += 4
        if offset + 6 * n + 2 > len(data):
            raise InvalidTemplate("The ISO/IEC 19794-2 record is truncated.")
        minutiae = _parse_minutiae(data, offset, n, 6)
        offset += 6 * n
        (extended,) = struct.unpack_from(">H", data, offset)
        offset += 2 + extended
        views.append(
            FingerView(
                minutiae, width, height, _ppi(res_x), position, quality, view_impression & 15
            )
        )
    return views


def _encode_2011(views: list[FingerView]) -> bytes:
    representations = bytearray()
    for number, view in enumerate(views):
        body = bytearray()
        body += b"\xff" * 9  # capture date and time: unreported
        body += struct.pack(">BHH", 0, 0, 0)  # device technology, vendor, type: unreported
        body += struct.pack(">BBHH", 1, max(0, min(100, view.quality)), 0, 0)  # one quality block
        body += struct.pack(
            _VIEW_2011,
            view.finger_position,
            number,
            _ppcm(view.resolution_ppi),
            _ppcm(view.resolution_ppi),
            view.impression_type,
            view.width,
            view.height,
            6,  # minutia field length: with quality
            0,  # ridge ending type: ridge skeleton end point
            view.minutiae.shape[0],
        )
        body += _minutiae_bytes(view.minutiae, view.width, view.height)
        body += struct.pack(">H", 0)
        representations += struct.pack(">I", 4 + len(body)) + body
    total = 15 + len(representations)
    header = _MAGIC + _VERSION_TAGS["2011"] + struct.pack(">IHB", total, len(views), 0)
    return header + bytes(representations)


def _decode_2011(data: bytes) -> list[FingerView]:
    count, certified = struct.unpack_from(">HB", data, 12)
    offset = 15
    views = []
    for _ in range(count):
        (length,) = struct.unpack_from(">I", data, offset)
        end = offset + length
        if length < 4 or end > len(data):
            raise InvalidTemplate("An ISO/IEC 19794-2 representation overruns the record.")
        cursor = offset + 4 + 9 + 5
        quality_blocks = data[cursor]
        quality = data[cursor + 1] if quality_blocks else 0
        cursor += 1 + 5 * quality_blocks
        if certified:
            cursor += 1 + 3 * data[cursor]
        fields = struct.unpack_from(_VIEW_2011, data, cursor)
        position, _, res_x, _, impression, width, height, field, _, n = fields
        cursor += struct.calcsize(_VIEW_2011)
        if field not in (5, 6) or cursor + field * n + 2 > end:
            raise InvalidTemplate("An ISO/IEC 19794-2 representation is malformed.")
        minutiae = _parse_minutiae(data, cursor, n, field)
        views.append(
            FingerView(minutiae, width, height, _ppi(res_x), position, quality, impression)
        )
        offset = end
    return views
