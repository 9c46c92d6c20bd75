"""Verification and identification error measures (higher score = more alike)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FoldResult:
    fold: int
    threshold: float
    accuracy: float


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold (accept when score >= t) with the highest accuracy on these pairs."""
    order = np.argsort(scores)
    sorted_scores = scores[order]
    sorted_same = same[order].astype(np.int64)
    # Accepting everything from position i on: correct = genuine at/after i + impostors before i.
    genuine_from = np.concatenate([np.cumsum(sorted_same[::-1])[::-1], [0]])
    impostor_before = np.concatenate([[0], np.cumsum(1 - sorted_same)])
    correct = genuine_from + impostor_before
    best = int(np.argmax(correct))
    if best == 0:
        return float(sorted_scores[0] - 1e-6)
    if best == len(sorted_scores):
        return float(sorted_scores[-1] + 1e-6)
    return float((sorted_scores[best - 1] + sorted_scores[best]) / 2)


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> list[FoldResult]:
    """LFW protocol: each fold is tested with the threshold chosen on the other folds."""
    results = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        threshold = best_accuracy_threshold(scores[train], same[train])
        accepted = scores[test] >= threshold
        accuracy = float(np.mean(accepted == same[test]))
        results.append(FoldResult(int(fold), threshold, accuracy))
    return results


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Lowest threshold at which at most ``fmr`` of the impostor scores are accepted."""
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(fmr * len(ordered)))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # Accept scores strictly above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(ordered[allowed], np.inf))


def tar_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> tuple[float, float]:
    threshold = threshold_at_fmr(impostor, fmr)
    return float(np.mean(genuine >= threshold)), threshold


def rank_of_mate(scores: np.ndarray, mate_column: int) -> int:
    """1-based rank of the mate among all gallery entries (ties counted against the mate)."""
    return int(np.sum(scores >= scores[mate_column]))


def identification_rate(ranks: np.ndarray, rank: int) -> float:
    return float(np.mean(ranks <= rank)) if len(ranks) else float("nan")


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false match and false non-match rates cross, taking the
    mean of the two rates at the threshold where they are closest."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    impostor_sorted = np.sort(impostor)
    genuine_sorted = np.sort(genuine)
    fmr = 1.0 - np.searchsorted(impostor_sorted, thresholds, side="left") / len(impostor)
    fnmr = np.searchsorted(genuine_sorted, thresholds, side="left") / len(genuine)
    best = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[best] + fnmr[best]) / 2), float(thresholds[best])


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """FVC's FMR100 / FMR1000: the false non-match rate at the threshold for ``fmr``."""
    return 1.0 - tar_at_fmr(genuine, impostor, fmr)[0]
