from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from biomatch.calibration import FmrEstimate, ScoreCalibration, calibration_path
from biomatch.config import Settings
from biomatch.modalities import load_modality


def make(n: int = 100_000) -> ScoreCalibration:
    impostor = np.random.default_rng(1).normal(0.0, 0.1, n)
    return ScoreCalibration.from_impostor_scores("face/test@1", impostor, {"data": "synthetic"})


def test_estimated_fmr_matches_the_empirical_tail() -> None:
    impostor = np.random.default_rng(1).normal(0.0, 0.1, 100_000)
    calibration = make()
    for score in (0.1, 0.2, 0.3):
        empirical = float(np.mean(impostor >= score))
        assert calibration.estimate(score).value == pytest.approx(empirical, rel=0.1)


def test_fmr_falls_as_score_rises() -> None:
    calibration = make()
    values = [calibration.estimate(s).value for s in np.linspace(-0.5, 0.5, 50)]
    assert all(a >= b for a, b in pairwise(values))


def test_threshold_for_target_fmr_holds_on_the_data() -> None:
    impostor = np.random.default_rng(1).normal(0.0, 0.1, 100_000)
    calibration = make()
    threshold = calibration.threshold_for(1e-3)
    assert float(np.mean(impostor >= threshold)) <= 1e-3
    assert float(np.mean(impostor >= threshold - 0.01)) > 1e-3 * 0.5


def test_score_above_every_impostor_is_an_upper_bound() -> None:
    estimate = make().estimate(0.99)
    assert estimate.is_upper_bound
    assert estimate.value == pytest.approx(1 / 100_000)


def test_target_below_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="resolve"):
        make(1000).threshold_for(1e-6)


def test_round_trip_through_file(tmp_path: Path) -> None:
    calibration = make()
    calibration.save(tmp_path / "c.json")
    loaded = ScoreCalibration.load(tmp_path / "c.json")
    assert loaded.n_impostor == calibration.n_impostor
    assert loaded.threshold_for(1e-3) == pytest.approx(calibration.threshold_for(1e-3), abs=1e-6)


@pytest.mark.parametrize(
    "model_key", ["face/dlib-resnet34-v1@1.0-flip", load_modality("face", Settings()).info.key]
)
def test_packaged_face_calibration_exists_and_is_measured_on_lfw(model_key: str) -> None:
    """dlib's and the default face model's (SFace)."""
    calibration = ScoreCalibration.load(calibration_path(model_key))
    assert calibration.model_key == model_key
    assert calibration.n_impostor > 1_000_000
    assert "LFW" in calibration.source["dataset"]
    assert 0.0 < calibration.threshold_for(1e-3) < 1.0


def test_a_model_without_a_measured_calibration_is_unavailable() -> None:
    from biomatch.calibration import load_calibration
    from biomatch.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable) as exc:
        load_calibration("face/never-measured@0")
    assert exc.value.http_status == 503
    assert load_calibration("face/dlib-resnet34-v1@1.0-flip").thresholds.size > 100


def test_the_best_of_k_comparisons_has_k_chances() -> None:
    assert FmrEstimate(1e-3, False).best_of(3) == FmrEstimate(pytest.approx(3e-3), False)
    assert FmrEstimate(0.4, False).best_of(3).value == 1.0
    assert FmrEstimate(1e-4, True).best_of(2).is_upper_bound
    with pytest.raises(ValueError):
        FmrEstimate(1e-3, False).best_of(0)


def _two_groups() -> tuple[np.ndarray, np.ndarray]:
    """A large group of impostor scores and a small one whose impostors score higher (a
    kind of capture that false-matches more often)."""
    rng = np.random.default_rng(2)
    return rng.normal(0.0, 0.1, 40_000), rng.normal(0.08, 0.1, 2_000)


def test_pooled_the_larger_group_hides_the_smaller_ones_false_matches() -> None:
    large, small = _two_groups()
    pooled = ScoreCalibration.from_impostor_scores(
        "face/test@1", np.concatenate([large, small]), {}
    )
    assert float(np.mean(small >= pooled.threshold_for(1e-2))) > 3e-2  # stated 1e-2


@pytest.mark.parametrize("target", [1e-2, 1e-3])
def test_by_groups_no_group_that_can_measure_the_target_sees_more(target: float) -> None:
    large, small = _two_groups()
    calibration = ScoreCalibration.from_impostor_groups("face/test@1", [large, small], {})
    threshold = calibration.threshold_for(target)
    for group in (large, small, np.concatenate([large, small])):
        assert float(np.mean(group >= threshold)) <= target
    # and no higher than one group needs: taking in its next score below, it sees more
    assert any(float(np.mean(g >= np.max(g[g < threshold]))) > target for g in (large, small))
    assert calibration.n_impostor == large.size + small.size


def test_by_groups_a_group_counts_at_the_rates_it_can_measure() -> None:
    large, small = _two_groups()
    few = small[:500]  # measures 1e-2 (5 false matches), not 1e-3
    calibration = ScoreCalibration.from_impostor_groups("face/test@1", [large, few], {})
    assert float(np.mean(few >= calibration.threshold_for(1e-2))) <= 1e-2
    large_alone = ScoreCalibration.from_impostor_groups("face/test@1", [large, few[:0]], {})
    assert calibration.threshold_for(1e-3) >= large_alone.threshold_for(1e-3)


def test_by_groups_the_table_is_monotone_and_one_group_is_as_the_pooled_table() -> None:
    large, small = _two_groups()
    grouped = ScoreCalibration.from_impostor_groups("face/test@1", [large, small], {})
    assert np.all(np.diff(grouped.thresholds) > 0) and np.all(np.diff(grouped.fmrs) <= 0)
    assert np.isfinite(grouped.thresholds).all()  # the file is plain JSON
    assert grouped.estimate(-10.0).value == pytest.approx(1.0, abs=1e-3)
    alone = ScoreCalibration.from_impostor_groups("face/test@1", [large], {})
    pooled = ScoreCalibration.from_impostor_scores("face/test@1", large, {})
    for target in (1e-1, 1e-2, 1e-3, 1e-4):  # the same share of false matches
        assert float(np.mean(large >= alone.threshold_for(target))) == pytest.approx(
            float(np.mean(large >= pooled.threshold_for(target))), rel=0.05
        )
