"""The 19795-style error measures on synthetic scores with known answers."""

import numpy as np
import pytest
from scipy.stats import norm

from biomatch.evaluation import analysis, metrics


def normal_scores(n_genuine: int, n_impostor: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 0.25, n_genuine), rng.normal(0.0, 0.25, n_impostor)


def test_eer_of_two_equal_variance_normals() -> None:
    genuine, impostor = normal_scores(200_000, 200_000)
    eer, threshold = metrics.eer(genuine, impostor)
    # Equal variances cross half-way: EER = Phi(-0.5 / 0.25).
    assert eer == pytest.approx(norm.cdf(-2.0), abs=2e-3)
    assert threshold == pytest.approx(0.5, abs=0.02)


def test_fnmr_at_fmr_uses_the_impostor_quantile() -> None:
    impostor = np.arange(30_000) / 30_000.0  # uniform on [0, 1)
    genuine = np.array([0.95, 0.985, 0.9995, 0.99995])
    # FMR 1e-2 -> accept above 0.99: two of four genuine scores are below.
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-2) == pytest.approx(0.5)
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-3) == pytest.approx(0.5)
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-4) == pytest.approx(0.75)


def test_fmr_targets_the_sample_cannot_support_are_not_stated() -> None:
    genuine, impostor = normal_scores(100, 2_999)
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-3) is None
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-2) is not None
    result = analysis.verification(
        genuine,
        impostor,
        threshold=0.5,
        threshold_source="test",
        plan=analysis.BootstrapPlan(replicates=20),
    )
    assert result["fnmr_at_fmr_1e-3"] is None
    assert "not enough data" in result["fnmr_at_fmr_1e-3_status"]
    assert result["fnmr_at_fmr_1e-2_status"] == "measured"


def test_det_curve_rates_match_direct_counts() -> None:
    genuine, impostor = normal_scores(500, 700, seed=3)
    thresholds, fmr, fnmr = metrics.det_curve(genuine, impostor)
    for i in (0, 100, 600, len(thresholds) - 1):
        assert fmr[i] == pytest.approx(np.mean(impostor >= thresholds[i]))
        assert fnmr[i] == pytest.approx(np.mean(genuine < thresholds[i]))
    assert np.all(np.diff(fmr) <= 0) and np.all(np.diff(fnmr) >= 0)


def test_a_failed_comparison_counts_as_a_non_match() -> None:
    genuine = np.array([0.9, 0.9, -np.inf, 0.9])
    impostor = np.zeros(400)
    assert metrics.fnmr_at_fmr(genuine, impostor, 1e-2) == pytest.approx(0.25)


def test_clopper_pearson_matches_the_rule_of_three() -> None:
    low, high = metrics.clopper_pearson(0, 300)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 300), rel=1e-6)
    low, high = metrics.clopper_pearson(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.2, abs=0.02)


def test_bootstrap_interval_narrows_with_more_data() -> None:
    small = metrics.bootstrap(lambda g, i: metrics.eer(g, i)[0], *normal_scores(200, 200))
    large = metrics.bootstrap(lambda g, i: metrics.eer(g, i)[0], *normal_scores(5000, 5000))
    assert small.low is not None and small.high is not None
    assert large.low is not None and large.high is not None
    assert small.low <= small.value <= small.high  # type: ignore[operator]
    assert large.high - large.low < (small.high - small.low) / 2


def test_resampling_subjects_widens_the_interval_of_correlated_scores() -> None:
    rng = np.random.default_rng(1)
    # 40 subjects, 50 genuine scores each, with a strong per-subject offset.
    subjects = np.repeat(np.arange(40), 50)
    genuine = rng.normal(1.0, 0.1, 40)[subjects] + rng.normal(0, 0.05, len(subjects))
    impostor = rng.normal(0.0, 0.3, 5000)

    def fnmr(g: np.ndarray, i: np.ndarray) -> float:
        return metrics.fnmr_at(g, 0.9)

    independent = metrics.bootstrap(fnmr, genuine, impostor, replicates=300)
    clustered = metrics.bootstrap(
        fnmr, genuine, impostor, replicates=300, genuine_clusters=subjects
    )
    assert clustered.high - clustered.low > 2 * (independent.high - independent.low)  # type: ignore[operator]


def test_fnir_at_fpir() -> None:
    nonmated_top = np.arange(1000) / 1000.0
    ranks = np.array([1, 1, 1, 2])
    scores = np.array([0.995, 0.5, 0.999, 0.999])
    # FPIR 0.01 -> threshold just above 0.99: one hit at rank 1 below it, one not at rank 1.
    assert metrics.fnir_at_fpir(ranks, scores, nonmated_top, 0.01) == pytest.approx(0.5)
    assert metrics.fnir_at_fpir(ranks, scores, nonmated_top, 0.001) is None


def test_identification_ranks_leave_mate_out_and_distractors() -> None:
    # 3 enrolled subjects + 1 distractor column; probe 2 is of a subject not enrolled.
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # mate 0 at rank 1
            [0.8, 0.7, 0.1, 0.95],  # mate 1 at rank 2 enrolled-only, rank 3 with distractor
            [0.2, 0.3, 0.4, 0.1],  # non-mated probe
        ]
    )
    search = analysis.SearchScores(scores, np.array([0, 1, -1]), enrolled=3)
    ranks, _ = analysis.mated_ranks(search, 3)
    assert ranks.tolist() == [1, 2]
    assert analysis.mated_ranks(search, 4)[0].tolist() == [1, 3]
    assert analysis.nonmated_top(search, 3).tolist() == [0.2, 0.8, 0.4]
    result = analysis.identification(
        search, failures_to_acquire=2, threshold=0.85, threshold_source="test", max_rank=3
    )
    # Two failures to acquire are misses at every rank: 1 of 4 at rank 1, 2 of 4 at rank 2.
    assert result["rank1"] == pytest.approx(0.25)
    assert result["cmc"] == pytest.approx([0.25, 0.5, 0.5])
    rows = result["distractor_expansion"]
    assert [r["gallery_size"] for r in rows] == [3, 4]
    # The distractor (0.95) makes probe 1's leave-mate-out search a false positive.
    assert rows[0]["fpir"] == pytest.approx(0.0)
    assert rows[1]["fpir"] == pytest.approx(1 / 3)


def test_group_ratios_point_at_the_worse_group() -> None:
    rng = np.random.default_rng(2)
    genuine = np.r_[
        np.where(rng.random(2000) < 0.02, 0.0, 1.0), np.where(rng.random(2000) < 0.08, 0.0, 1.0)
    ]
    genuine_group = np.array(["a"] * 2000 + ["b"] * 2000)
    impostor = np.zeros(1000)
    pair_groups = (np.array(["a"] * 500 + ["b"] * 500), np.array(["a"] * 500 + ["c"] * 500))
    result = analysis.group_differences(genuine, genuine_group, impostor, pair_groups, 0.5)
    rows = {row["group"]: row for row in result["groups"]}
    assert result["cross_group_impostor_pairs"] == 500
    assert rows["a"]["fnmr_ratio_to_best"] == pytest.approx(1.0)
    low, high = rows["b"]["fnmr_ratio_ci_95"]
    assert 2.5 < low < 4.0 < high
    assert rows["b"]["n_impostor"] == 0  # its impostor pairs cross groups
    # No false matches anywhere: the FMR ratio is undefined and said to be so.
    assert rows["a"]["fmr_ratio_to_best"] is None


def test_quality_bins_split_by_gate_and_measure() -> None:
    genuine = np.array([0.9, 0.1, 0.9, 0.9])
    impostor = np.array([0.1, 0.1])
    quality = [{"sharpness": v} for v in (10.0, 20.0, 30.0, 40.0)]
    result = analysis.quality_bins(
        genuine,
        impostor,
        quality,
        [{"sharpness": 5.0}, None],
        np.array([True, False, True, True]),
        np.array([True, True]),
        threshold=0.5,
        bins=2,
    )
    passed, failed = result["gate"]
    assert (passed["n_genuine"], passed["fnmr"]) == (3, 0.0)
    assert (failed["n_genuine"], failed["fnmr"]) == (1, 1.0)
    sharpness = result["by_measure"]["sharpness"]
    assert sum(row["n_genuine"] for row in sharpness) == 4
    assert sum(row["n_impostor"] for row in sharpness) == 1
