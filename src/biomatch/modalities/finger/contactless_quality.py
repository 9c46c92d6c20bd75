"""The contactless finger gate: what a phone photo of a finger must show to be matched.

NFIQ 2 is trained on contact impressions and is not used on photos (NIST SP 500-334).
Focus and motion blur are one check (``out_of_focus``: ridge clarity); a direction measure
of motion blur did not separate blurred from sharp photos on the shared data. Each
check's ``name`` is a stable reason code and its ``message`` an instruction the operator (or
the capture app's retake loop) shows as it is: keep both stable.
"""

from __future__ import annotations

from biomatch.config import ContactlessQualityConfig
from biomatch.modalities.base import QualityCheck
from biomatch.modalities.finger.contactless import Fingertip

# Reason codes (the check names), in the order the gate reports them.
FINGER_FOUND = "finger_found"
TOO_FAR = "too_far"
TOO_CLOSE = "too_close"
OUT_OF_FOCUS = "out_of_focus"
GLARE = "glare"
TOO_DARK = "too_dark"
SCALE_UNCERTAIN = "scale_uncertain"
MINUTIAE_COUNT = "minutiae_count"
IMAGE_SIDE = "image_side_px"
FINGERS_FOUND = "fingers_found"

INSTRUCTIONS = {
    FINGER_FOUND: "No finger found: hold one fingertip in the middle of the picture, pad "
    "towards the camera, against a plain background.",
    TOO_FAR: "The finger is too far away: hold the phone closer, until the fingertip fills "
    "the guide.",
    TOO_CLOSE: "The finger is too close: move the phone a little further away.",
    OUT_OF_FOCUS: "The ridges are not sharp: hold the finger and the phone still, and tap the "
    "fingertip on the screen to focus.",
    GLARE: "Glare on the finger: move out of direct light or turn off the torch.",
    TOO_DARK: "The picture is too dark: turn on the torch or move to better light.",
    SCALE_UNCERTAIN: "The ridges could not be measured reliably: hold the finger flat "
    "towards the camera, in focus, and capture again.",
    MINUTIAE_COUNT: "Too few ridge details found: clean the camera lens, hold the finger "
    "still in good light and capture again.",
    IMAGE_SIDE: "The photo is larger than the service accepts: send the camera's photo "
    "without upscaling.",
    FINGERS_FOUND: "Not all four fingers were found: hold the four fingers of one hand "
    "together but slightly spread, pointing sideways, all inside the picture.",
}


def check(name: str, score: float, threshold: str, passed: bool) -> QualityCheck:
    return QualityCheck(name, score, threshold, passed, INSTRUCTIONS[name])


def size_check(width: int, height: int, config: ContactlessQualityConfig) -> QualityCheck:
    side = max(width, height)
    return check(IMAGE_SIDE, side, f"<= {config.max_side_px}", side <= config.max_side_px)


def no_finger() -> QualityCheck:
    return check(FINGER_FOUND, 0.0, ">= 1", False)


def fingertip_checks(tip: Fingertip, config: ContactlessQualityConfig) -> tuple[QualityCheck, ...]:
    """Everything measured on the photo before the minutiae are extracted."""
    far = tip.area_fraction < config.min_area_fraction
    return (
        check(FINGER_FOUND, 1.0, ">= 1", True),
        check(
            TOO_FAR,
            tip.ridge_period_px,
            f">= {config.min_ridge_period_px:g} px ridge period, finger >= "
            f"{config.min_area_fraction:g} of the photo",
            tip.ridge_period_px >= config.min_ridge_period_px and not far,
        ),
        check(
            TOO_CLOSE,
            tip.ridge_period_px,
            f"<= {config.max_ridge_period_px:g} px ridge period",
            tip.ridge_period_px <= config.max_ridge_period_px,
        ),
        check(
            OUT_OF_FOCUS,
            tip.clarity,
            f">= {config.min_clarity:g}",
            tip.clarity >= config.min_clarity,
        ),
        check(
            GLARE,
            tip.clipped_fraction,
            f"<= {config.max_clipped_fraction:g}",
            tip.clipped_fraction <= config.max_clipped_fraction,
        ),
        check(
            TOO_DARK,
            tip.brightness,
            f">= {config.min_brightness:g}",
            tip.brightness >= config.min_brightness,
        ),
        check(
            SCALE_UNCERTAIN,
            float(tip.scale_agrees),
            "1 (period agrees with width)",
            tip.scale_agrees,
        ),
    )


def minutiae_check(count: int, config: ContactlessQualityConfig) -> QualityCheck:
    return check(
        MINUTIAE_COUNT, float(count), f">= {config.min_minutiae}", count >= config.min_minutiae
    )


def fingers_found_check(found: int, wanted: int) -> QualityCheck:
    return check(FINGERS_FOUND, float(found), f">= {wanted}", found >= wanted)
