"""Score -> estimated false match rate, from a measured impostor score distribution."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.errors import InvalidDataset, ModelUnavailable

MIN_IMPOSTOR_SCORES = 100  # with fewer the tail has no point at FMR 1e-2


class TooFewImpostorScores(InvalidDataset):
    """The data gave too few impostor scores to calibrate a model."""


@dataclass(frozen=True)
class FmrEstimate:
    value: float
    # True where the score lies beyond every measured impostor score: the true FMR is
    # smaller than ``value``, which is then the resolution of the measurement.
    is_upper_bound: bool

    def best_of(self, comparisons: int) -> FmrEstimate:
        """The estimate for the best of ``comparisons`` scores, such as a subject's best
        over its templates: an impostor's best of k reaches an FMR f with a chance of at
        most k x f (the union bound, however the k scores depend on each other)."""
        if comparisons < 1:
            raise ValueError("the best of no comparison has no FMR")
        return FmrEstimate(min(1.0, comparisons * self.value), self.is_upper_bound)


@dataclass(frozen=True)
class ScoreCalibration:
    """A monotone table of thresholds and the impostor share scoring at or above each."""

    model_key: str
    thresholds: np.ndarray
    fmrs: np.ndarray
    n_impostor: int
    source: dict[str, Any]

    @classmethod
    def from_impostor_scores(
        cls, model_key: str, impostor: np.ndarray, source: dict[str, Any], points: int = 241
    ) -> ScoreCalibration:
        ordered = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
        n = _enough_scores(ordered.size)
        min_fmr = 1.0 / n
        levels = np.logspace(0, np.log10(min_fmr), points)
        # threshold for level f: the score of the ceil(f*n)-th highest impostor.
        ranks = np.clip(np.ceil(levels * n).astype(int) - 1, 0, n - 1)
        thresholds = ordered[ranks]
        fmrs = (ranks + 1) / n
        thresholds, keep = np.unique(thresholds, return_index=True)
        return cls(model_key, thresholds, fmrs[keep], n, source)

    @classmethod
    def from_impostor_groups(
        cls,
        model_key: str,
        groups: Sequence[np.ndarray],
        source: dict[str, Any],
        points: int = 241,
    ) -> ScoreCalibration:
        """The calibration of several groups of impostor scores (pairs of data sets), as
        high as each group needs: at each tabulated FMR f, the lowest threshold at or above
        which neither the pooled scores nor any group with at least 1/f of them has more
        than a share f (and no lower than a smaller f's), stated with the highest of their
        shares there. Pooled alone, the larger groups would hide a smaller one whose
        impostors score higher."""
        members = [np.sort(np.asarray(g, dtype=np.float64).ravel())[::-1] for g in groups]
        members = [np.sort(np.concatenate(members))[::-1], *(g for g in members if g.size)]
        n = _enough_scores(members[0].size)
        decades = 10.0 ** -np.arange(int(np.log10(n)) + 1)  # exact at the usual targets
        grid = np.concatenate([np.logspace(0, np.log10(1.0 / n), points), decades])
        levels = np.unique(np.concatenate([grid, [1.0 / g.size for g in members]]))[::-1]
        thresholds, fmrs = [], []
        threshold = -np.inf  # raised by the first level (FMR 1: the lowest score)
        for level in levels:  # from FMR 1 down: the threshold only rises
            resolving = [g for g in members if g.size * level >= 1 - 1e-9]
            for group in resolving:
                allowed = int(np.floor(group.size * level + 1e-9))
                threshold = max(threshold, _above_all_but(group, allowed))
            thresholds.append(threshold)
            fmrs.append(max(float(np.mean(g >= threshold)) for g in resolving))
        table, keep = np.unique(np.asarray(thresholds), return_index=True)
        return cls(model_key, table, np.asarray(fmrs)[keep], n, source)

    def estimate(self, score: float) -> FmrEstimate:
        if score > self.thresholds[-1]:
            return FmrEstimate(1.0 / self.n_impostor, is_upper_bound=True)
        if score <= self.thresholds[0]:
            return FmrEstimate(float(self.fmrs[0]), is_upper_bound=False)
        log_fmr = np.interp(score, self.thresholds, np.log10(self.fmrs))
        return FmrEstimate(float(10**log_fmr), is_upper_bound=False)

    def estimate_best(self, scores: np.ndarray) -> FmrEstimate:
        """The estimate for the best of ``scores`` (a subject's over its templates)."""
        return self.estimate(float(np.max(scores))).best_of(len(scores))

    def threshold_for(self, target_fmr: float) -> float:
        """Smallest tabulated score whose estimated FMR does not exceed the target."""
        if target_fmr < 1.0 / self.n_impostor:
            raise ValueError(
                f"FMR {target_fmr:g} is below what {self.n_impostor} impostor scores can resolve."
            )
        ok = np.nonzero(self.fmrs <= target_fmr)[0]
        if not ok.size:  # the top impostor scores tie: accept only scores above them all
            return float(np.nextafter(self.thresholds[-1], np.inf))
        return float(self.thresholds[ok[0]])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_key": self.model_key,
            "n_impostor": self.n_impostor,
            "source": self.source,
            "table": [
                [round(float(t), 6), float(f)]
                for t, f in zip(self.thresholds, self.fmrs, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreCalibration:
        table = np.asarray(data["table"], dtype=np.float64)
        return cls(
            model_key=data["model_key"],
            thresholds=table[:, 0],
            fmrs=table[:, 1],
            n_impostor=int(data["n_impostor"]),
            source=dict(data.get("source", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> ScoreCalibration:
        return cls.from_dict(json.loads(path.read_text()))


CHECKED_FMRS = (1e-2, 1e-3)


def calibrate_by_source_pair(
    model_key: str, groups: Sequence[tuple[str, np.ndarray]], source: dict[str, Any]
) -> ScoreCalibration:
    """``from_impostor_groups`` over named groups (one per pair of data sets), its
    provenance holding each group's share at or above the thresholds for the checked FMRs
    (``by_source_pair``), so a regenerated file shows where it is tight."""
    calibration = ScoreCalibration.from_impostor_groups(
        model_key, [scores for _, scores in groups], source
    )
    thresholds = {
        fmr: calibration.threshold_for(fmr)
        for fmr in CHECKED_FMRS
        if fmr * calibration.n_impostor >= 1
    }
    check = [
        {
            "sources": name,
            "n_impostor": int(scores.size),
            **{
                f"share_at_threshold_{fmr:g}": float(np.mean(scores >= threshold))
                for fmr, threshold in thresholds.items()
                if scores.size
            },
        }
        for name, scores in groups
    ]
    return replace(calibration, source={**source, "by_source_pair": check})


def _enough_scores(n: int) -> int:
    if n < MIN_IMPOSTOR_SCORES:
        raise TooFewImpostorScores(
            f"{n} impostor scores are too few to calibrate (at least {MIN_IMPOSTOR_SCORES})."
        )
    return n


def _above_all_but(descending: np.ndarray, allowed: int) -> float:
    """A threshold that only the ``allowed`` highest scores reach (ties with the next one
    excluded too): midway to the next higher score, so that neither float32 scores nor the
    file's 6 decimals move a score across it."""
    if allowed >= descending.size:  # every score may reach it
        return float(descending[-1])
    first_out = descending[allowed]
    reaching = descending[:allowed]
    higher = reaching[reaching > first_out]
    top = float(higher[-1]) if higher.size else first_out + 2e-6
    return float((first_out + top) / 2)


CALIBRATION_DIR = Path(__file__).parent / "data" / "calibration"


def calibration_path(model_key: str) -> Path:
    safe = model_key.replace("/", "__").replace("@", "_v")
    return CALIBRATION_DIR / f"{safe}.json"


def pair_key(first_key: str, second_key: str) -> str:
    """The calibration key of comparisons between two models' templates (either order),
    e.g. contactless photos against contact prints; one model's own key for itself."""
    if first_key == second_key:
        return first_key
    low, high = sorted((first_key, second_key))
    return f"{low}+{high}"


def load_pair_calibration(first_key: str, second_key: str) -> ScoreCalibration | None:
    """The measured calibration between two models, or None where none was measured."""
    path = calibration_path(pair_key(first_key, second_key))
    return ScoreCalibration.load(path) if path.is_file() else None


def load_calibration(model_key: str) -> ScoreCalibration:
    """The calibration of ``model_key``; 503 ``model_unavailable`` where none was measured."""
    path = calibration_path(model_key)
    if not path.is_file():
        raise ModelUnavailable(
            f"No score calibration for {model_key}: measure one (biomatch calibrate / "
            "calibrate-finger) before this model decides or searches.",
            model=model_key,
        )
    return ScoreCalibration.load(path)
