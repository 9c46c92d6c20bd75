"""From scores to the numbers of an evaluation report (ISO/IEC 19795-1 and -10 terms).

Every function takes plain arrays (higher score = more alike), so the same analysis serves
any modality and any data source: LFW, a pairs list, a labelled folder.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biomatch.evaluation import metrics

FMR_TARGETS = (1e-2, 1e-3, 1e-4)
FPIR_TARGETS = (0.01, 0.003)
LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapPlan:
    replicates: int = 500
    seed: int = 0
    # What one bootstrap draw resamples: per-subject clusters where the caller knows them.
    genuine_clusters: np.ndarray | None = None
    impostor_clusters: np.ndarray | None = None

    @property
    def resampled(self) -> str:
        return "subjects" if self.genuine_clusters is not None else "comparisons"


def rate_label(rate: float) -> str:
    """1e-2 for 0.01: the spelling of FMR targets in result keys."""
    mantissa, exponent = f"{rate:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _as_scores(scores: np.ndarray) -> np.ndarray:
    """A failed comparison (-inf: no template) stays in: it never matches."""
    return np.asarray(scores, dtype=np.float64)


def not_enough(trials: int, rate: float, what: str) -> str:
    need = metrics.min_trials_for(rate)
    return f"not enough data: {trials} {what} < {need} needed to state {rate:g} (rule of 3)"


def verification(
    genuine: np.ndarray,
    impostor: np.ndarray,
    *,
    threshold: float,
    threshold_source: str,
    plan: BootstrapPlan,
) -> dict[str, Any]:
    """EER and FNMR at each FMR target with bootstrap intervals, and the error rates at the
    operating threshold with exact binomial intervals."""
    genuine, impostor = _as_scores(genuine), _as_scores(impostor)
    result: dict[str, Any] = {"n_genuine": len(genuine), "n_impostor": len(impostor)}
    ci_key = f"_ci_{int(LEVEL * 100)}"

    def interval(statistic: Any) -> metrics.Interval:
        return metrics.bootstrap(
            statistic,
            genuine,
            impostor,
            replicates=plan.replicates,
            level=LEVEL,
            seed=plan.seed,
            genuine_clusters=plan.genuine_clusters,
            impostor_clusters=plan.impostor_clusters,
        )

    eer = interval(lambda g, i: metrics.eer(g, i)[0])
    result["eer"] = eer.value
    result["eer" + ci_key] = [eer.low, eer.high]
    result["eer_threshold"] = metrics.eer(genuine, impostor)[1]
    for target in FMR_TARGETS:
        key = f"fnmr_at_fmr_{rate_label(target)}"
        rate = interval(lambda g, i, t=target: metrics.fnmr_at_fmr(g, i, t))
        result[key] = rate.value
        result[key + ci_key] = [rate.low, rate.high]
        if rate.value is None:
            result[key + "_status"] = not_enough(len(impostor), target, "impostor comparisons")
        else:
            result[key + "_status"] = "measured"
            threshold_key = f"threshold_at_fmr_{rate_label(target)}"
            result[threshold_key] = metrics.threshold_at_fmr(impostor, target)
    result["operating_point"] = operating_point(genuine, impostor, threshold, threshold_source)
    result["bootstrap"] = {
        "replicates": plan.replicates,
        "level": LEVEL,
        "resampled": plan.resampled,
        "seed": plan.seed,
    }
    return result


def operating_point(
    genuine: np.ndarray, impostor: np.ndarray, threshold: float, source: str
) -> dict[str, Any]:
    false_non_matches = int(np.sum(genuine < threshold))
    false_matches = int(np.sum(impostor >= threshold))
    return {
        "threshold": threshold,
        "source": source,
        "fnmr": metrics.fnmr_at(genuine, threshold),
        "fnmr_ci_95": list(metrics.clopper_pearson(false_non_matches, len(genuine), LEVEL)),
        "fmr": metrics.fmr_at(impostor, threshold),
        "fmr_ci_95": list(metrics.clopper_pearson(false_matches, len(impostor), LEVEL)),
        "false_non_matches": false_non_matches,
        "false_matches": false_matches,
    }


@dataclass(frozen=True)
class SearchScores:
    """Scores of every search against every gallery entry (one reference per subject).

    Columns ``[0, enrolled)`` are the enrolled subjects, the rest are distractors (non-mated
    entries). ``mate[p]`` is the probe's column, or -1 for a probe of a subject not enrolled.
    """

    scores: np.ndarray
    mate: np.ndarray
    enrolled: int


def mated_ranks(search: SearchScores, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(rank of the mate, mate score) of the mated searches against the first ``columns``."""
    mated = search.mate >= 0
    block = search.scores[mated, :columns]
    mate_scores = block[np.arange(len(block)), search.mate[mated]]
    ranks = np.sum(block >= mate_scores[:, None], axis=1)
    return ranks, mate_scores


def nonmated_top(search: SearchScores, columns: int) -> np.ndarray:
    """Top score of each non-mated search against the first ``columns``: probes of subjects
    not enrolled, and every mated probe with its own mate left out (a search of a gallery
    without that subject)."""
    block = search.scores[:, :columns].copy()
    mated = np.flatnonzero(search.mate >= 0)
    block[mated, search.mate[mated]] = -np.inf
    return block.max(axis=1) if columns else np.full(len(block), -np.inf)


def identification(
    search: SearchScores,
    *,
    failures_to_acquire: int,
    threshold: float,
    threshold_source: str,
    ranks: Sequence[int] = (1, 5, 10),
    max_rank: int = 20,
    expansion_steps: int = 5,
) -> dict[str, Any]:
    """Closed-set rank-k and CMC, open-set FNIR at FPIR, and FPIR as distractors are added.

    A probe that failed to acquire is a miss at every rank and in every open-set search.
    """
    found, mate_scores = mated_ranks(search, search.enrolled)
    misses = np.full(failures_to_acquire, np.iinfo(np.int64).max)
    all_ranks = np.concatenate([found, misses])
    trials = len(all_ranks)
    result: dict[str, Any] = {
        "gallery_subjects": search.enrolled,
        "distractors": search.scores.shape[1] - search.enrolled,
        "n_mated_searches": trials,
        "failures_to_acquire": failures_to_acquire,
    }
    for rank in ranks:
        hits = int(np.sum(all_ranks <= rank))
        result[f"rank{rank}"] = metrics.identification_rate(all_ranks, rank)
        result[f"rank{rank}_ci_95"] = list(_rate_interval(hits, trials))
    result["cmc"] = metrics.cmc(all_ranks, min(max_rank, max(search.enrolled, 1))).tolist()
    top = nonmated_top(search, search.enrolled)
    result["n_nonmated_searches"] = len(top)
    open_ranks = np.concatenate([found, misses])
    open_scores = np.concatenate([mate_scores, np.full(failures_to_acquire, -np.inf)])
    for target in FPIR_TARGETS:
        key = f"fnir_at_fpir_{target:g}"
        value = metrics.fnir_at_fpir(open_ranks, open_scores, top, target)
        result[key] = value
        result[key + "_status"] = (
            "measured" if value is not None else not_enough(len(top), target, "non-mated searches")
        )
    result["operating_point"] = _open_set_at(
        open_ranks, open_scores, top, threshold, threshold_source
    )
    result["distractor_expansion"] = distractor_expansion(
        search, failures_to_acquire, threshold, expansion_steps
    )
    return result


def _rate_interval(hits: int, trials: int) -> tuple[float, float]:
    low, high = metrics.clopper_pearson(trials - hits, trials, LEVEL)
    return 1 - high, 1 - low


def _open_set_at(
    ranks: np.ndarray, scores: np.ndarray, top: np.ndarray, threshold: float, source: str
) -> dict[str, Any]:
    false_positives = int(np.sum(top >= threshold))
    misses = int(np.sum(~((ranks <= 1) & (scores >= threshold))))
    return {
        "threshold": threshold,
        "source": source,
        "fpir": false_positives / len(top) if len(top) else float("nan"),
        "fpir_ci_95": list(metrics.clopper_pearson(false_positives, len(top), LEVEL)),
        "fnir": misses / len(ranks) if len(ranks) else float("nan"),
        "fnir_ci_95": list(metrics.clopper_pearson(misses, len(ranks), LEVEL)),
    }


def expansion_sizes(enrolled: int, total: int, steps: int = 5) -> list[int]:
    """Gallery sizes of the distractor expansion: from the enrolled subjects alone to every
    entry, in ``steps`` steps (each is searched as a gallery of its own)."""
    return [int(n) for n in np.unique(np.linspace(enrolled, total, max(steps, 1) + 1).astype(int))]


def distractor_expansion(
    search: SearchScores, failures_to_acquire: int, threshold: float, steps: int
) -> list[dict[str, Any]]:
    """Open-set error rates at a fixed threshold as non-mated entries join the gallery."""
    rows = []
    for columns in expansion_sizes(search.enrolled, search.scores.shape[1], steps):
        found, mate_scores = mated_ranks(search, int(columns))
        found = np.concatenate([found, np.full(failures_to_acquire, np.iinfo(np.int64).max)])
        mate_scores = np.concatenate([mate_scores, np.full(failures_to_acquire, -np.inf)])
        point = _open_set_at(
            found, mate_scores, nonmated_top(search, int(columns)), threshold, "fixed"
        )
        rows.append(
            {
                "gallery_size": int(columns),
                "distractors": int(columns) - search.enrolled,
                "fpir": point["fpir"],
                "fpir_ci_95": point["fpir_ci_95"],
                "fnir": point["fnir"],
                "rank1": metrics.identification_rate(found, 1),
            }
        )
    return rows


def group_differences(
    genuine: np.ndarray,
    genuine_group: np.ndarray,
    impostor: np.ndarray,
    impostor_groups: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> dict[str, Any]:
    """FMR and FNMR per group at one threshold, as ratios to the best group (ISO/IEC
    19795-10). Impostor pairs count for a group when both subjects belong to it."""
    first, second = impostor_groups
    same_group = first == second
    rates = []
    for group in sorted(set(genuine_group.tolist()) | set(first[same_group].tolist())):
        if group == "":
            continue  # subjects the user's CSV does not label
        g = genuine[genuine_group == group]
        i = impostor[same_group & (first == group)]
        rates.append(
            metrics.GroupRates(
                group, len(g), len(i), int(np.sum(g < threshold)), int(np.sum(i >= threshold))
            )
        )
    return {
        "threshold": threshold,
        "impostor_pairs": "both subjects in the group",
        "cross_group_impostor_pairs": int(np.sum(~same_group)),
        "groups": _group_rows(rates),
    }


def _group_rows(rates: list[metrics.GroupRates]) -> list[dict[str, Any]]:
    measured_fnmr = [r for r in rates if r.genuine]
    measured_fmr = [r for r in rates if r.impostor]
    best_fnmr = min(measured_fnmr, key=lambda r: r.fnmr, default=None)
    best_fmr = min(measured_fmr, key=lambda r: r.fmr, default=None)
    rows = []
    for r in rates:
        row: dict[str, Any] = {
            "group": r.group,
            "n_genuine": r.genuine,
            "n_impostor": r.impostor,
            "false_non_matches": r.false_non_matches,
            "false_matches": r.false_matches,
            "fnmr": r.fnmr,
            "fnmr_ci_95": list(metrics.clopper_pearson(r.false_non_matches, r.genuine, LEVEL)),
            "fmr": r.fmr,
            "fmr_ci_95": list(metrics.clopper_pearson(r.false_matches, r.impostor, LEVEL)),
        }
        for name, best, errors, trials in (
            ("fnmr", best_fnmr, r.false_non_matches, r.genuine),
            ("fmr", best_fmr, r.false_matches, r.impostor),
        ):
            if best is None:
                continue
            best_errors = best.false_non_matches if name == "fnmr" else best.false_matches
            best_trials = best.genuine if name == "fnmr" else best.impostor
            ratio = metrics.ratio_interval(errors, trials, best_errors, best_trials, LEVEL)
            row[f"{name}_ratio_to_best"] = ratio.value
            row[f"{name}_ratio_ci_95"] = [ratio.low, ratio.high]
            row[f"{name}_best_group"] = best.group
        rows.append(row)
    return rows


def quality_bins(
    genuine: np.ndarray,
    impostor: np.ndarray,
    genuine_quality: list[dict[str, float] | None],
    impostor_quality: list[dict[str, float] | None],
    genuine_gate: np.ndarray,
    impostor_gate: np.ndarray,
    threshold: float,
    bins: int = 4,
) -> dict[str, Any]:
    """Error rates at the threshold by quality: pairs whose captures both pass the quality
    gate against the rest, and per quality measure by quantile bin of the probe (the
    second capture of the pair)."""
    result: dict[str, Any] = {"threshold": threshold, "gate": [], "by_measure": {}}
    for label, g_mask, i_mask in (
        ("both captures pass the gate", genuine_gate, impostor_gate),
        ("a capture fails the gate", ~genuine_gate, ~impostor_gate),
    ):
        result["gate"].append(_bin_row(label, genuine[g_mask], impostor[i_mask], threshold))
    names = sorted({name for q in genuine_quality if q for name in q})
    for name in names:
        g_values = np.array([q.get(name, np.nan) if q else np.nan for q in genuine_quality])
        i_values = np.array([q.get(name, np.nan) if q else np.nan for q in impostor_quality])
        known = np.concatenate([g_values, i_values])
        known = known[np.isfinite(known)]
        if len(np.unique(known)) < 2:
            continue
        edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)))
        rows = []
        for low, high in itertools.pairwise(edges):
            last = high == edges[-1]
            g_in = (g_values >= low) & ((g_values <= high) if last else (g_values < high))
            i_in = (i_values >= low) & ((i_values <= high) if last else (i_values < high))
            label = f"[{low:.3g}, {high:.3g}{']' if last else ')'}"
            rows.append(_bin_row(label, genuine[g_in], impostor[i_in], threshold))
        result["by_measure"][name] = rows
    return result


def _bin_row(label: str, genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> Any:
    fnm, fm = int(np.sum(genuine < threshold)), int(np.sum(impostor >= threshold))
    return {
        "bin": label,
        "n_genuine": len(genuine),
        "n_impostor": len(impostor),
        "fnmr": metrics.fnmr_at(genuine, threshold),
        "fnmr_ci_95": list(metrics.clopper_pearson(fnm, len(genuine), LEVEL)),
        "fmr": metrics.fmr_at(impostor, threshold),
        "fmr_ci_95": list(metrics.clopper_pearson(fm, len(impostor), LEVEL)),
    }
