"""Safe decoding of uploaded images: size limits first, then a decode within a pixel budget.

The header is read before any pixel is decoded. A JPEG larger than the budget is decoded
already reduced (libjpeg's DCT scaling, PIL's draft mode: 1/2, 1/4 or 1/8 of each side), so
its full-size pixels are never allocated; other formats cannot be reduced while decoding, so
one larger than the budget is refused before it is decoded."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from biomatch.errors import EmptyUpload, ImageTooLarge, InvalidImage

# What PIL raises for bytes it cannot read as an image (UnidentifiedImageError is an OSError).
UNREADABLE = (OSError, SyntaxError, ValueError)


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    min_side: int = 32,
    decode_budget: int | None = None,
) -> np.ndarray:
    """Decode bytes to an RGB ``uint8`` array of shape (h, w, 3), honouring EXIF orientation.

    ``max_pixels`` bounds the image as uploaded; ``decode_budget`` (default: ``max_pixels``)
    bounds what is decoded: a JPEG above it comes out reduced to at most the budget, any
    other format above it is refused (``ImageTooLarge``) without decoding a pixel.
    """
    if not data:
        raise EmptyUpload("The upload is empty.")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"The upload has {len(data)} bytes; the limit is {max_bytes}.",
            bytes=len(data),
            limit=max_bytes,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            _check_dimensions(opened.size, max_pixels=max_pixels, min_side=min_side)
            _fit_budget(opened, decode_budget or max_pixels)
            opened.load()
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
    except (ImageTooLarge, InvalidImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"The image has too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("The upload is not an image in a supported format.") from exc
    except UNREADABLE as exc:
        raise InvalidImage(f"The image could not be decoded: {exc}") from exc
    return np.asarray(rgb, dtype=np.uint8)


def _check_dimensions(size: tuple[int, int], *, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels.",
            width=width,
            height=height,
            limit=max_pixels,
        )
    if min(width, height) < min_side:
        raise InvalidImage(
            f"The image is {width}x{height} pixels; each side must be at least {min_side}.",
            width=width,
            height=height,
        )


def _fit_budget(image: Image.Image, budget: int) -> None:
    """Arrange for ``image`` to decode to at most ``budget`` pixels, or refuse it."""
    width, height = image.size
    if width * height <= budget:
        return
    if image.format == "JPEG":
        # draft() picks the largest DCT reduction (1, 2, 4, 8) whose result is at least the
        # size asked for; asking for half the budget's side ratio keeps the result within it.
        ratio = math.sqrt(budget / (width * height)) / 2
        image.draft("RGB", (max(1, int(width * ratio)), max(1, int(height * ratio))))
        reduced_width, reduced_height = image.size
        if reduced_width * reduced_height <= budget:
            return
    raise ImageTooLarge(
        f"The image is {width}x{height} pixels; above {budget} pixels only JPEG is accepted "
        "(it is decoded reduced); scale it down or send it as JPEG.",
        width=width,
        height=height,
        limit=budget,
    )


def read_image_file(path: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    with open(path, "rb") as handle:
        return decode_image(handle.read(), max_bytes=max_bytes, max_pixels=max_pixels)


# Formats every current browser decodes in an <img>; a kept image in another (a contact
# scanner's TIFF, JPEG 2000) is shown as a PNG of its pixels.
BROWSER_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})
UNKNOWN_MEDIA_TYPE = "application/octet-stream"


def media_type_of(data: bytes) -> str:
    """The media type of an image's bytes, from its format; octet-stream where unknown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return Image.MIME.get(image.format or "", UNKNOWN_MEDIA_TYPE)
    except UNREADABLE:
        return UNKNOWN_MEDIA_TYPE


def for_browser(data: bytes) -> tuple[bytes, str]:
    """An image as a browser can show it, with its media type: the bytes as they are where
    browsers decode the format, else a lossless PNG of the same pixels (and resolution)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format in BROWSER_FORMATS:
                return data, Image.MIME[image.format]
            image.load()
            pixels = image if image.mode in ("1", "L", "RGB", "RGBA") else image.convert("RGB")
            buffer = io.BytesIO()
            dpi = image.info.get("dpi")
            pixels.save(buffer, format="PNG", **({"dpi": dpi} if dpi else {}))
            return buffer.getvalue(), "image/png"
    except UNREADABLE:
        return data, UNKNOWN_MEDIA_TYPE


def encode_png(image: np.ndarray) -> bytes:
    """Lossless bytes of an RGB (or grey) uint8 array, as ``decode_image`` reads them."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
