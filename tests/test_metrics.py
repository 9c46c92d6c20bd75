import numpy as np
import pytest

from biomatch.evaluation import metrics


def test_best_threshold_separates_separable_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([False, False, False, True, True, True])
    threshold = metrics.best_accuracy_threshold(scores, same)
    assert 0.3 < threshold < 0.7


def test_ten_fold_uses_other_folds_for_the_threshold() -> None:
    rng = np.random.default_rng(0)
    folds = np.repeat(np.arange(10), 100)
    same = np.tile(np.r_[np.ones(50, bool), np.zeros(50, bool)], 10)
    scores = np.where(same, rng.normal(1, 0.3, 1000), rng.normal(0, 0.3, 1000))
    # Poison fold 0's scores: its own best threshold would differ, the protocol's must not.
    fold0 = folds == 0
    scores[fold0 & same] = rng.normal(3, 0.1, 50)
    scores[fold0 & ~same] = rng.normal(0, 0.1, 50)
    own = metrics.best_accuracy_threshold(scores[fold0], same[fold0])
    assert own > 1.0  # the poison works: fold 0 alone would pick a threshold far above 0.5
    results = metrics.ten_fold_accuracy(scores, same, folds)
    assert len(results) == 10
    assert all(0.8 < r.accuracy <= 1.0 for r in results)
    assert all(0.2 < r.threshold < 0.8 for r in results)
    # Each fold's threshold is the one chosen on the other nine, and its accuracy is
    # measured with it on its own pairs.
    for result in results:
        train, test = folds != result.fold, folds == result.fold
        assert result.threshold == metrics.best_accuracy_threshold(scores[train], same[train])
        accepted = scores[test] >= result.threshold
        assert result.accuracy == float(np.mean(accepted == same[test]))
    assert [r.fold for r in results] == list(range(10))
    assert results[0].threshold != own


def test_tar_at_fmr_counts_accepted_impostors_correctly() -> None:
    impostor = np.arange(1000) / 1000.0
    genuine = np.array([0.9985, 0.999, 0.5])
    tar, threshold = metrics.tar_at_fmr(genuine, impostor, 1e-3)
    assert np.mean(impostor >= threshold) <= 1e-3
    assert tar == pytest.approx(2 / 3)


def test_rank_of_mate_counts_ties_against_the_mate() -> None:
    assert metrics.rank_of_mate(np.array([0.2, 0.9, 0.5]), 1) == 1
    assert metrics.rank_of_mate(np.array([0.9, 0.9, 0.5]), 1) == 2
    assert metrics.identification_rate(np.array([1, 2, 11]), 10) == pytest.approx(2 / 3)
