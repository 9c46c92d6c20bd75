"""Score fusion across fingers and modalities, on calibrated false match rates.

Each contributing comparison (a face, a finger) brings its estimated FMR ``p`` from its own
model's impostor calibration and a quality weight ``w`` in (0, 1]. The fused evidence is
``S = sum(w * -ln p)``. For an impostor, each ``p`` is (close to) uniform, so ``-ln p`` is
exponential; if the comparisons are independent, ``sum(-ln p)`` over ``k`` of them follows an
Erlang(k) law (Fisher's method) and ``P(Erlang(k) >= S) = exp(-S) sum_{j<k} S^j / j!``.
Since every ``w <= 1``, ``sum(w * -ln p) <= sum(-ln p)``, so that tail is a conservative
estimate of the fused FMR. Quality weights thus only ever discount a poor capture's evidence.

A lone item is its own evidence: its FMR is its calibrated FMR, unweighted, since weights
only balance several items against each other.

Independence is an assumption: an impostor's fingers are not entirely independent of each
other, so a deployment should check fused FMRs on its own multi-finger impostor data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_WEIGHT = 0.05


@dataclass(frozen=True)
class Evidence:
    """One comparison's contribution: which modality (and finger), its calibrated FMR."""

    modality: str
    estimated_fmr: float
    fmr_is_upper_bound: bool = False
    quality_weight: float = 1.0
    position: int | None = None
    score: float = float("nan")  # the model's raw score, for reporting only
    item: int = 1  # the probe item it came from
    model: str = ""
    # The subject's templates the item was compared with; estimated_fmr is the best one's,
    # times this (``FmrEstimate.best_of``).
    comparisons: int = 1


@dataclass(frozen=True)
class FusedScore:
    estimated_fmr: float
    # True where an input FMR was itself an upper bound: the fused FMR is one too.
    fmr_is_upper_bound: bool
    evidence: float
    contributions: tuple[Evidence, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted({item.modality for item in self.contributions}))


def quality_weight(score: float, floor: float, full: float) -> float:
    """1 at or above ``full``, falling linearly to MIN_WEIGHT at ``floor`` (both inclusive)."""
    if full <= floor:
        raise ValueError("full must exceed floor")
    share = (score - floor) / (full - floor)
    return float(min(1.0, max(MIN_WEIGHT, MIN_WEIGHT + (1 - MIN_WEIGHT) * share)))


def erlang_tail(evidence: float, k: int) -> float:
    """P(sum of k independent unit exponentials >= evidence)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if evidence <= 0:
        return 1.0
    term, total = 1.0, 1.0
    for j in range(1, k):
        term *= evidence / j
        total += term
    return min(1.0, math.exp(-evidence) * total)


def fuse(items: Sequence[Evidence]) -> FusedScore:
    if not items:
        raise ValueError("Nothing to fuse.")
    for item in items:
        if not 0.0 < item.estimated_fmr <= 1.0:
            raise ValueError(f"An estimated FMR must be in (0, 1], not {item.estimated_fmr}.")
        if not 0.0 < item.quality_weight <= 1.0:
            raise ValueError(f"A quality weight must be in (0, 1], not {item.quality_weight}.")
    if len(items) == 1:
        evidence = -math.log(items[0].estimated_fmr)
    else:
        evidence = sum(-item.quality_weight * math.log(item.estimated_fmr) for item in items)
    lone = items[0].estimated_fmr if len(items) == 1 else None
    return FusedScore(
        estimated_fmr=lone if lone is not None else erlang_tail(evidence, len(items)),
        fmr_is_upper_bound=any(item.fmr_is_upper_bound for item in items),
        evidence=evidence,
        contributions=tuple(items),
    )
