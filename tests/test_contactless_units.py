"""Contactless finger captures on synthetic images: scale from the ridge period, tip-up
rotation, contact-like polarity, the contactless gate's named reasons, the contactless
template marking and its ISO/IEC 19794-2 export, capture-kind and calibration choice."""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import pytest

from biomatch import extraction
from biomatch.calibration import pair_key
from biomatch.config import ContactlessQualityConfig, Settings
from biomatch.errors import InvalidRequest, InvalidTemplate, QualityRejected
from biomatch.imaging import encode_png
from biomatch.modalities import Capture, Modality, QualityReport, load_modality, plugin_for_capture
from biomatch.modalities.finger import contactless, contactless_quality, four_finger, iso19794
from biomatch.modalities.finger.template import CONTACTLESS_PLAIN, FingerTemplate

PERIOD = 10.0  # ridge period of the synthetic photos, pixels (a third of a finger width)


def finger_photo(
    period: float = PERIOD,
    tip: str = "right",
    size: tuple[int, int] = (600, 800),
    brightness: float = 150.0,
    contrast: float = 40.0,
) -> np.ndarray:
    """A grey 'finger' lying horizontally on a dark background: a rounded bar with
    concentric ridges (bright ridges, as in a photo), its tip on the given side."""
    height, width = size
    mask = np.zeros(size, np.uint8)
    half = height // 4
    centre_y = height // 2
    tip_x = int(width * 0.8) if tip == "right" else int(width * 0.2)
    body = (0, centre_y - half, tip_x - half, centre_y + half)
    if tip == "left":
        body = (tip_x + half, centre_y - half, width, centre_y + half)
    cv2.rectangle(mask, body[:2], body[2:], 1, -1)
    cv2.circle(mask, (tip_x - half if tip == "right" else tip_x + half, centre_y), half, 1, -1)
    ys, xs = np.mgrid[0:height, 0:width]
    radius = np.hypot(
        xs - (tip_x - 1.5 * half if tip == "right" else tip_x + 1.5 * half), ys - centre_y
    )
    ridges = brightness + contrast * np.cos(2 * np.pi * radius / period)
    image = np.where(mask > 0, ridges, 10.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_the_ridge_period_of_a_grating_is_measured() -> None:
    ys, xs = np.mgrid[0:384, 0:384]
    for period in (6.0, 9.0, 15.0):
        grating = 128 + 60 * np.cos(2 * np.pi * (xs * 0.8 + ys * 0.6) / period)
        found = contactless.ridge_period(grating.astype(np.float32), np.ones((384, 384), bool))
        assert found == pytest.approx(period, rel=0.05)


def test_the_ridge_period_is_the_blocks_median_not_the_strongest_region() -> None:
    # Three fifths of the finger at period 9 with faint ridges, two fifths at 14 with strong
    # ones: the summed spectrum peaks at 14, the median over the blocks is 9.
    ys, xs = np.mgrid[0:384, 0:640]
    faint = 128 + 15 * np.cos(2 * np.pi * (xs * 0.8 + ys * 0.6) / 9.0)
    strong = 128 + 90 * np.cos(2 * np.pi * (xs * 0.8 + ys * 0.6) / 14.0)
    image = np.where(xs < 384, faint, strong).astype(np.float32)
    spectrum = contactless.ridge_spectrum(image, np.ones(image.shape, bool))
    summed = contactless.RidgeSpectrum(spectrum.radial[np.newaxis], spectrum.block)
    assert summed.peak_period() == pytest.approx(14.0, rel=0.06)
    assert spectrum.peak_period() == pytest.approx(9.0, rel=0.06)


@pytest.mark.parametrize("tip", ["right", "left"])
def test_a_photo_becomes_a_tip_up_contact_like_impression_at_500_ppi(tip: str) -> None:
    found = contactless.contactless_to_contact(finger_photo(tip=tip))
    assert found is not None
    assert found.ridge_period_px == pytest.approx(PERIOD, rel=0.08)
    assert found.scale == pytest.approx(contactless.CONTACT_RIDGE_PERIOD_PX / PERIOD, rel=0.08)
    rows = np.nonzero(found.mask.any(axis=1))[0]
    widths = found.mask.sum(axis=1)
    top, bottom = widths[rows[: len(rows) // 8]], widths[rows[-len(rows) // 8 :]]
    assert top.mean() < bottom.mean()  # the rounded tip is at the top
    # Contact polarity: white background, dark ridges inside the finger.
    assert found.image[~found.mask].mean() > 250
    assert found.image[found.mask].mean() < 200
    measured = contactless.ridge_period(found.image.astype(np.float32), found.mask)
    assert measured == pytest.approx(contactless.CONTACT_RIDGE_PERIOD_PX, rel=0.12)


def test_an_empty_photo_has_no_finger() -> None:
    assert contactless.contactless_to_contact(np.full((300, 300), 12, np.uint8)) is None


def failed(photo: np.ndarray) -> set[str]:
    found = contactless.contactless_to_contact(photo)
    assert found is not None
    checks = contactless_quality.fingertip_checks(found, ContactlessQualityConfig())
    return {check.name for check in checks if not check.passed}


def test_a_good_synthetic_photo_passes_the_photo_checks() -> None:
    assert failed(finger_photo()) == set()


def test_the_gate_names_what_is_wrong_with_a_photo() -> None:
    assert contactless_quality.TOO_DARK in failed(finger_photo(brightness=25, contrast=10))
    assert contactless_quality.GLARE in failed(finger_photo(brightness=250, contrast=30))
    assert contactless_quality.OUT_OF_FOCUS in failed(
        cv2.GaussianBlur(finger_photo(), (0, 0), 5)
        + np.random.default_rng(0).integers(0, 40, (600, 800), dtype=np.uint8)
    )
    assert contactless_quality.TOO_CLOSE in failed(finger_photo(period=34, size=(1600, 2600)))
    # Every reason carries a plain instruction for the operator and the capture app.
    for name, message in contactless_quality.INSTRUCTIONS.items():
        assert message.endswith(".") and len(message) > 20, name


def skin_photo(white_patch: bool = False) -> np.ndarray:
    """The synthetic finger in colour under a torch: the red channel saturated over the whole
    finger, the ridges in green and blue; optionally a specular spot inside the finger (a
    fifth of it), white in every channel."""
    ridges = finger_photo().astype(np.float32)
    inside = ridges > 10
    rgb = np.stack([np.where(inside, 255.0, 10.0), ridges * 0.8, ridges * 0.6], axis=-1)
    if white_patch:
        rgb[240:360, 200:600] = 255.0  # rows 150-450 and columns 0-630 are the finger
    return rgb.astype(np.uint8)


def test_glare_is_white_in_every_channel_not_a_saturated_red_channel() -> None:
    assert contactless_quality.GLARE not in failed(skin_photo())
    assert contactless_quality.GLARE in failed(skin_photo(white_patch=True))


def test_a_photo_the_service_will_refuse_skips_the_minutiae(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = load_modality("finger-contactless", Settings())
    extracted: list[tuple[int, int]] = []

    def minutiae(impression: np.ndarray) -> np.ndarray:
        extracted.append(impression.shape)
        return np.zeros((0, 5), np.float32)

    monkeypatch.setattr(plugin, "_contact_like_minutiae", minutiae)
    dark = finger_photo(brightness=25, contrast=10)
    refused = plugin.analyse(dark, stop_at_failure=True)
    assert extracted == []
    names = {check.name for check in refused.quality.failures}
    assert contactless_quality.TOO_DARK in names
    assert contactless_quality.MINUTIAE_COUNT not in {c.name for c in refused.quality.checks}
    assert refused.region is not None and not refused.has_subject
    # An evaluation scores every capture: the same photo still goes through the extractor.
    scored = plugin.analyse(dark)
    assert len(extracted) == 1
    assert {c.name for c in scored.quality.failures} >= names | {contactless_quality.MINUTIAE_COUNT}
    # A photo that passes the photo checks is extracted either way.
    plugin.analyse(finger_photo(), stop_at_failure=True)
    assert len(extracted) == 2


def test_the_service_lets_a_plug_in_stop_at_the_first_failure() -> None:
    asked: list[bool] = []

    class Recording:
        def analyse(
            self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
        ) -> Capture:
            asked.append(stop_at_failure)
            return Capture(QualityReport(()))

    photo = encode_png(finger_photo())
    plugin = cast(Modality, Recording())
    for enforce_quality in (True, False):
        with pytest.raises(QualityRejected):  # no subject: refused either way
            extraction.extract(photo, plugin, Settings(), enforce_quality=enforce_quality)
    extraction.assess(photo, plugin, Settings())
    # The search and the quality check refuse a failing capture; an evaluation scores it.
    assert asked == [True, False, True]


def test_contactless_templates_are_marked_and_exported_as_contactless() -> None:
    plugin = load_modality("finger-contactless", Settings())
    assert plugin.info.capture_kind == "contactless"
    assert plugin.info.comparison_family == load_modality("finger", Settings()).info.family
    rng = np.random.default_rng(1)
    minutiae = np.column_stack(
        (
            rng.uniform(20, 280, 30),
            rng.uniform(20, 380, 30),
            rng.uniform(0, 6, 30),
            rng.integers(0, 2, 30),
            rng.uniform(0.5, 1, 30),
        )
    ).astype(np.float32)
    template = plugin.template_from_minutiae(minutiae, 300, 400, 2)  # type: ignore[attr-defined]
    data = template.to_bytes()
    assert FingerTemplate.from_bytes(data).impression_type == CONTACTLESS_PLAIN
    record = plugin.export_record([data], "2011")  # type: ignore[attr-defined]
    assert iso19794.decode(record)[0].impression_type == CONTACTLESS_PLAIN
    imported = plugin.import_record(record)[0]  # type: ignore[attr-defined]
    assert FingerTemplate.from_bytes(imported.template).impression_type == CONTACTLESS_PLAIN
    with pytest.raises(InvalidTemplate, match="contactless"):
        plugin.export_record([data], "2005")  # type: ignore[attr-defined]


def test_a_capture_kind_names_its_plug_in() -> None:
    settings = Settings()
    assert plugin_for_capture("finger", None, settings) == "finger"
    assert plugin_for_capture("finger", "contact", settings) == "finger"
    assert plugin_for_capture("finger", "contactless", settings) == "finger-contactless"
    with pytest.raises(InvalidRequest):
        plugin_for_capture("face", "contactless", settings)


def test_a_pair_calibration_key_is_one_for_either_order() -> None:
    assert pair_key("a@1", "b@1") == pair_key("b@1", "a@1") == "a@1+b@1"
    assert pair_key("a@1", "a@1") == "a@1"


def hand_photo(hand: str) -> np.ndarray:
    """Four skin-coloured fingers, pads to the camera, on a grey background: a left hand's
    enter from the left, index at the top; a right hand is its mirror image."""
    photo = np.full((900, 1200, 3), (120, 125, 130), np.uint8)
    lengths = (700, 780, 740, 600)  # index, middle, ring, little
    for number, length in enumerate(lengths):
        top = 150 + number * 150
        cv2.rectangle(photo, (0, top + 6), (length, top + 144), (200, 140, 120), -1)
        cv2.circle(photo, (length, top + 75), 69, (200, 140, 120), -1)
        cv2.line(photo, (0, top + 148), (length, top + 148), (90, 60, 50), 6)  # the gap's shadow
    return photo if hand == "left" else np.ascontiguousarray(photo[:, ::-1])


@pytest.mark.parametrize("hand", ["left", "right"])
def test_a_four_finger_photo_splits_into_labelled_fingertips(hand: str) -> None:
    parts = four_finger.split_four_fingers(hand_photo(hand), hand)
    assert [part.position for part in parts] == list(four_finger.POSITIONS[hand])
    tips = {"left": (769, 849, 809, 669), "right": (431, 351, 391, 531)}[hand]
    for number, (part, tip) in enumerate(zip(parts, tips, strict=True)):
        left, top, right, bottom = part.region
        # Each crop holds its own finger's tip, and is turned tip up.
        assert left <= tip <= right and top <= 225 + number * 150 <= bottom, part.region
        assert part.image.shape[0] > part.image.shape[1] * 0.8


def test_a_skin_coloured_surface_touching_the_hand_is_not_taken_for_it() -> None:
    photo = hand_photo("left")
    for number, length in enumerate((700, 740, 600)):  # fingers touching, a thin crease
        top = 150 + number * 150
        photo[top + 140 : top + 160, : length - 40] = (200, 140, 120)
        photo[top + 148 : top + 152, : length - 40] = (170, 115, 100)
    photo[740:] = (165, 140, 90)  # a wooden desk under the little finger, to the far edge
    noise = np.random.default_rng(2).integers(-3, 4, photo.shape)
    photo = np.clip(photo.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    mask = four_finger.skin_mask(photo)
    assert mask[225, 300] and mask[675, 300]  # the index and the little finger
    assert not mask[800:, 900:].any()  # the desk, which reaches the photo's right edge
    parts = four_finger.split_four_fingers(photo, "left")
    for number, (part, tip) in enumerate(zip(parts, (769, 849, 809, 669), strict=True)):
        left, top, right, bottom = part.region
        assert left <= tip <= right and top <= 225 + number * 150 <= bottom, part.region


def test_a_photo_without_four_fingers_is_refused_with_a_reason() -> None:
    plugin = load_modality("finger-contactless", Settings())
    blank = np.full((600, 800, 3), 128, np.uint8)
    with pytest.raises(QualityRejected) as refused:
        plugin.split_capture(blank, "four_finger", "left")  # type: ignore[attr-defined]
    assert refused.value.details["reasons"][0]["name"] == "fingers_found"
    with pytest.raises(InvalidRequest):
        plugin.split_capture(blank, "four_finger", "middle")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "photo",
    [
        np.full((600, 800), 128, np.uint8),  # a grey photo, as a 2-D array
        cv2.cvtColor(hand_photo("left"), cv2.COLOR_RGB2GRAY),  # a hand, in grey
        np.full((1, 3000, 3), (200, 140, 120), np.uint8),  # a line of skin colour
        np.full((40, 40, 3), (200, 140, 120), np.uint8),  # too small to show four fingers
    ],
    ids=["grey", "grey-hand", "one-row", "tiny"],
)
def test_a_photo_that_cannot_show_four_fingers_is_refused_not_a_crash(photo: np.ndarray) -> None:
    plugin = load_modality("finger-contactless", Settings())
    with pytest.raises(QualityRejected) as refused:
        plugin.split_capture(photo, "four_finger", "left")  # type: ignore[attr-defined]
    assert refused.value.details["reasons"][0]["name"] == "fingers_found"
