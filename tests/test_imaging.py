import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from biomatch.errors import EmptyUpload, ImageTooLarge, InvalidImage
from biomatch.imaging import decode_image, for_browser, media_type_of

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 4_000_000}


def png_bytes(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color=0).save(buffer, format="PNG")
    return buffer.getvalue()


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's header to claim another size (a decompression-bomb header)."""
    header = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF)
    return data[:16] + header + crc + data[33:]


def test_decodes_to_rgb_uint8() -> None:
    image = decode_image(png_bytes(), **LIMITS)
    assert image.shape == (48, 64, 3)
    assert image.dtype == np.uint8


def test_greyscale_and_alpha_become_rgb() -> None:
    assert decode_image(png_bytes(mode="L"), **LIMITS).shape == (48, 64, 3)
    assert decode_image(png_bytes(mode="RGBA"), **LIMITS).shape == (48, 64, 3)


def test_exif_orientation_is_applied() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    Image.new("RGB", (80, 40)).save(buffer, format="JPEG", exif=exif)
    assert decode_image(buffer.getvalue(), **LIMITS).shape == (80, 40, 3)


def test_empty_upload() -> None:
    with pytest.raises(EmptyUpload):
        decode_image(b"", **LIMITS)


def test_not_an_image() -> None:
    with pytest.raises(InvalidImage, match="not an image"):
        decode_image(b"%PDF-1.4 definitely not a face", **LIMITS)


def test_truncated_image() -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG")
    with pytest.raises(InvalidImage, match="could not be decoded"):
        decode_image(buffer.getvalue()[:2000], **LIMITS)


def test_too_many_bytes() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(png_bytes(), max_bytes=20, max_pixels=LIMITS["max_pixels"])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = with_png_size(png_bytes(), 50_000, 50_000)
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(bomb, **LIMITS)


def test_tiny_image_is_refused() -> None:
    with pytest.raises(InvalidImage, match="at least"):
        decode_image(png_bytes(8, 8), **LIMITS)


def test_images_browsers_cannot_show_become_png_with_the_same_pixels() -> None:
    grey = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64)
    tiff = io.BytesIO()
    Image.fromarray(grey).save(tiff, format="TIFF", dpi=(500, 500))
    assert media_type_of(tiff.getvalue()) == "image/tiff"
    shown, media_type = for_browser(tiff.getvalue())
    assert media_type == "image/png"
    with Image.open(io.BytesIO(shown)) as png:
        assert png.format == "PNG"
        assert np.array_equal(np.asarray(png), grey)
        assert round(png.info["dpi"][0]) == 500  # the scanner's resolution goes with it
    # A format browsers show is left as it is; bytes that are no image are too.
    assert for_browser(png_bytes()) == (png_bytes(), "image/png")
    assert for_browser(b"not an image") == (b"not an image", "application/octet-stream")
    assert media_type_of(b"not an image") == "application/octet-stream"
