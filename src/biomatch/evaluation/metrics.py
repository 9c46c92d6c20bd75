"""Verification and identification error measures (higher score = more alike)."""

from __future__ import annotations

from collections.abc import Callable
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


# ---- Error rates in the ISO/IEC 19795-1 sense -------------------------------------------


def min_trials_for(rate: float) -> int:
    """Fewest trials that can support a claimed error rate (the rule of 3): with zero
    errors in N trials, the 95% upper bound of the rate is about 3/N."""
    return int(np.ceil(3.0 / rate))


def fmr_at(impostor: np.ndarray, threshold: float) -> float:
    return float(np.mean(impostor >= threshold)) if len(impostor) else float("nan")


def fnmr_at(genuine: np.ndarray, threshold: float) -> float:
    return float(np.mean(genuine < threshold)) if len(genuine) else float("nan")


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float | None:
    """FNMR at the threshold where FMR <= ``fmr``; None where the impostor sample is too
    small to say (see ``min_trials_for``)."""
    if len(impostor) < min_trials_for(fmr) or not len(genuine):
        return None
    return fnmr_at(genuine, threshold_at_fmr(impostor, fmr))


def det_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, ...]:
    """(thresholds, fmr, fnmr) at every distinct score, threshold ascending."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    thresholds = thresholds[np.isfinite(thresholds)]
    impostor_sorted, genuine_sorted = np.sort(impostor), np.sort(genuine)
    fmr = 1.0 - np.searchsorted(impostor_sorted, thresholds, side="left") / len(impostor)
    fnmr = np.searchsorted(genuine_sorted, thresholds, side="left") / len(genuine)
    return thresholds, fmr, fnmr


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold): the midpoint of FMR and FNMR where they cross."""
    thresholds, fmr, fnmr = det_curve(genuine, impostor)
    if not len(thresholds):
        return float("nan"), float("nan")
    gap = fmr - fnmr  # decreasing in the threshold
    crossing = int(np.argmax(gap <= 0)) if np.any(gap <= 0) else len(gap) - 1
    candidates = [crossing] if crossing == 0 else [crossing - 1, crossing]
    best = min(candidates, key=lambda i: abs(gap[i]))
    return float((fmr[best] + fnmr[best]) / 2), float(thresholds[best])


def clopper_pearson(errors: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of an error rate (assumes independent trials)."""
    from scipy.stats import beta

    if trials == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low = 0.0 if errors == 0 else float(beta.ppf(tail, errors, trials - errors + 1))
    high = 1.0 if errors == trials else float(beta.ppf(1 - tail, errors + 1, trials - errors))
    return low, high


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


class _Resampler:
    """Draws the indices of one bootstrap replicate; whole clusters (e.g. subjects) are drawn
    where given, so that scores sharing a subject widen the interval as they should."""

    def __init__(self, count: int, clusters: np.ndarray | None) -> None:
        self._count = count
        self._members: list[np.ndarray] | None = None
        if clusters is not None:
            _, inverse = np.unique(clusters, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            self._members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self._members is None:
            return rng.integers(0, self._count, self._count)
        drawn = rng.integers(0, len(self._members), len(self._members))
        return np.concatenate([self._members[i] for i in drawn])


def bootstrap(
    statistic: Callable[[np.ndarray, np.ndarray], float | None],
    genuine: np.ndarray,
    impostor: np.ndarray,
    *,
    replicates: int = 500,
    level: float = 0.95,
    seed: int = 0,
    genuine_clusters: np.ndarray | None = None,
    impostor_clusters: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(genuine, impostor)``; genuine and
    impostor scores are resampled independently."""
    value = statistic(genuine, impostor)
    if value is None or replicates <= 0:
        return Interval(value, None, None)
    rng = np.random.default_rng(seed)
    genuine_draw = _Resampler(len(genuine), genuine_clusters)
    impostor_draw = _Resampler(len(impostor), impostor_clusters)
    samples = []
    for _ in range(replicates):
        result = statistic(genuine[genuine_draw.draw(rng)], impostor[impostor_draw.draw(rng)])
        if result is not None:
            samples.append(result)
    if not samples:
        return Interval(value, None, None)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(value, float(low), float(high))


# ---- Identification ---------------------------------------------------------------------


def cmc(ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """Identification rate at ranks 1..max_rank (a miss has a rank above every k)."""
    return np.array([identification_rate(ranks, k) for k in range(1, max_rank + 1)])


def threshold_at_fpir(nonmated_top: np.ndarray, fpir: float) -> float:
    """Lowest threshold at which at most ``fpir`` of non-mated searches return a candidate."""
    return threshold_at_fmr(nonmated_top, fpir)


def fnir_at_fpir(
    mated_ranks: np.ndarray, mated_scores: np.ndarray, nonmated_top: np.ndarray, fpir: float
) -> float | None:
    """FNIR at rank 1: share of mated searches whose mate is not the top candidate at or
    above the threshold where FPIR <= ``fpir``. None where there are too few non-mated
    searches to say (rule of 3)."""
    if len(nonmated_top) < min_trials_for(fpir) or not len(mated_ranks):
        return None
    threshold = threshold_at_fpir(nonmated_top, fpir)
    hit = (mated_ranks <= 1) & (mated_scores >= threshold)
    return float(1.0 - np.mean(hit))


# ---- Differences between groups (ISO/IEC 19795-10) --------------------------------------


@dataclass(frozen=True)
class GroupRates:
    group: str
    genuine: int
    impostor: int
    false_non_matches: int
    false_matches: int

    @property
    def fnmr(self) -> float:
        return self.false_non_matches / self.genuine if self.genuine else float("nan")

    @property
    def fmr(self) -> float:
        return self.false_matches / self.impostor if self.impostor else float("nan")


def ratio_interval(
    errors: int, trials: int, best_errors: int, best_trials: int, level: float = 0.95
) -> Interval:
    """Ratio of two error rates with the Katz log interval; None where either rate is 0
    (the ratio is then unbounded or undefined: the counts are reported instead)."""
    from scipy.stats import norm

    if not (errors and trials and best_errors and best_trials):
        return Interval(None, None, None)
    ratio = (errors / trials) / (best_errors / best_trials)
    spread = np.sqrt(1 / errors - 1 / trials + 1 / best_errors - 1 / best_trials)
    z = float(norm.ppf(1 - (1 - level) / 2))
    return Interval(ratio, float(ratio * np.exp(-z * spread)), float(ratio * np.exp(z * spread)))


def fvc_fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """FVC's FMR100 / FMR1000: the false non-match rate at the threshold for ``fmr``, stated
    as FVC reports it whatever the impostor count (``fnmr_at_fmr`` declines below 3/fmr)."""
    return 1.0 - tar_at_fmr(genuine, impostor, fmr)[0]
