"""Minutiae matcher: local neighbourhood descriptors propose alignments, a rigid
transform per proposal pairs the minutiae that agree in place and direction.

Each minutia gets a descriptor of its neighbours in its own frame (distance, bearing,
relative direction, soft-binned), so it is invariant to translation and rotation. The most
similar descriptor pairs are the alignment hypotheses; under each, minutiae are paired one to
one within a distance and angle tolerance, each pair counting its descriptor similarity
(``weight_floor`` mixes in a constant). The score is the best hypothesis's total, squared,
over the product of the two minutiae counts. The loops are compiled by numba: over ten
thousand comparisons a second on one core (benchmarks/finger_search.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class MatcherParams:
    radius: float = 90.0
    distance_centres: tuple[float, ...] = (18.0, 40.0, 62.0, 84.0)
    distance_sigma: float = 11.0
    bearing_bins: int = 8
    direction_bins: int = 4
    angular_kappa: float = 3.0
    hypotheses: int = 20
    distance_tolerance: float = 12.0
    angle_tolerance: float = 0.3
    # A paired minutia counts weight_floor + (1 - weight_floor) x its descriptor similarity.
    weight_floor: float = 0.0

    @property
    def descriptor_size(self) -> int:
        return len(self.distance_centres) * self.bearing_bins * self.direction_bins


DEFAULT_PARAMS = MatcherParams()


def matching_frame(minutiae: np.ndarray) -> np.ndarray:
    """x, y, theta with y pointing up, so that theta (counter-clockwise as viewed) and the
    coordinates rotate the same way."""
    frame = np.asarray(minutiae[:, :3], dtype=np.float64).copy()
    frame[:, 1] = -frame[:, 1]
    return frame


def _circular_bins(angles: np.ndarray, bins: int, kappa: float) -> np.ndarray:
    centres = np.arange(bins) * (TWO_PI / bins)
    weights: np.ndarray = np.exp(kappa * (np.cos(angles[..., None] - centres) - 1.0))
    return weights


def descriptors(minutiae: np.ndarray, params: MatcherParams = DEFAULT_PARAMS) -> np.ndarray:
    """Unit descriptors (N x descriptor_size, float32) of minutiae given as x, y, theta."""
    n = minutiae.shape[0]
    if n == 0:
        return np.zeros((0, params.descriptor_size), dtype=np.float32)
    x, y, theta = minutiae[:, 0], minutiae[:, 1], minutiae[:, 2]
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    dist = np.hypot(dx, dy)
    bearing = np.mod(np.arctan2(dy, dx) - theta[:, None], TWO_PI)
    direction = np.mod(theta[None, :] - theta[:, None], TWO_PI)
    near = (dist > 0) & (dist <= params.radius)
    centres = np.asarray(params.distance_centres)
    w_dist = np.exp(-((dist[..., None] - centres) ** 2) / (2 * params.distance_sigma**2))
    w_dist *= near[..., None]
    w_bearing = _circular_bins(bearing, params.bearing_bins, params.angular_kappa)
    w_direction = _circular_bins(direction, params.direction_bins, params.angular_kappa)
    desc = np.einsum("ija,ijb,ijc->iabc", w_dist, w_bearing, w_direction).reshape(n, -1)
    norms = np.linalg.norm(desc, axis=1, keepdims=True)
    unit: np.ndarray = (desc / np.maximum(norms, 1e-9)).astype(np.float32)
    return unit


@njit(cache=True, nogil=True, fastmath=True)
def _score_pair(
    pa: np.ndarray,
    da: np.ndarray,
    pb: np.ndarray,
    db: np.ndarray,
    hypotheses: int,
    dist_tol: float,
    angle_tol: float,
    weight_floor: float,
) -> float:
    na = pa.shape[0]
    nb = pb.shape[0]
    if na < 3 or nb < 3:
        return 0.0
    dims = da.shape[1]
    sim = np.empty(na * nb, dtype=np.float32)
    # The k most similar descriptor pairs, kept without sorting all na * nb of them.
    k_top = min(hypotheses, na * nb)
    top_val = np.full(k_top, -1.0, dtype=np.float32)
    order = np.zeros(k_top, dtype=np.int64)
    floor_at = 0
    for i in range(na):
        for j in range(nb):
            acc = np.float32(0.0)
            for k in range(dims):
                acc += da[i, k] * db[j, k]
            sim[i * nb + j] = acc
            if acc > top_val[floor_at]:
                top_val[floor_at] = acc
                order[floor_at] = i * nb + j
                for t in range(k_top):
                    if top_val[t] < top_val[floor_at]:
                        floor_at = t
    tol2 = dist_tol * dist_tol
    used = np.zeros(nb, dtype=np.bool_)
    best = 0.0
    for h in range(k_top):
        i0 = order[h] // nb
        j0 = order[h] % nb
        rot = pb[j0, 2] - pa[i0, 2]
        c = np.cos(rot)
        s = np.sin(rot)
        used[:] = False
        matched = 0.0
        for i in range(na):
            ux = pa[i, 0] - pa[i0, 0]
            uy = pa[i, 1] - pa[i0, 1]
            tx = c * ux - s * uy + pb[j0, 0]
            ty = s * ux + c * uy + pb[j0, 1]
            tt = pa[i, 2] + rot
            best_j = -1
            best_d = tol2
            for j in range(nb):
                if used[j]:
                    continue
                ex = pb[j, 0] - tx
                ey = pb[j, 1] - ty
                d2 = ex * ex + ey * ey
                if d2 > best_d:
                    continue
                dt = abs((pb[j, 2] - tt + np.pi) % (2 * np.pi) - np.pi)
                if dt > angle_tol:
                    continue
                best_d = d2
                best_j = j
            if best_j >= 0:
                used[best_j] = True
                matched += weight_floor + (1.0 - weight_floor) * max(sim[i * nb + best_j], 0.0)
        best = max(best, matched)
    return float(best * best / (na * nb))


@njit(cache=True, nogil=True, fastmath=True)
def _score_many(
    pa: np.ndarray,
    da: np.ndarray,
    points: np.ndarray,
    descs: np.ndarray,
    offsets: np.ndarray,
    hypotheses: int,
    dist_tol: float,
    angle_tol: float,
    weight_floor: float,
) -> np.ndarray:
    out = np.empty(offsets.shape[0] - 1, dtype=np.float32)
    for r in range(offsets.shape[0] - 1):
        lo = offsets[r]
        hi = offsets[r + 1]
        out[r] = _score_pair(
            pa, da, points[lo:hi], descs[lo:hi], hypotheses, dist_tol, angle_tol, weight_floor
        )
    return out


def score_stacked(
    probe: tuple[np.ndarray, np.ndarray],
    stacked: tuple[np.ndarray, np.ndarray, np.ndarray],
    params: MatcherParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """``score`` for references already stacked (points, descriptors, row offsets)."""
    points, descs, offsets = stacked
    result: np.ndarray = _score_many(
        np.ascontiguousarray(probe[0], dtype=np.float64),
        np.ascontiguousarray(probe[1], dtype=np.float32),
        points,
        descs,
        offsets,
        params.hypotheses,
        params.distance_tolerance,
        params.angle_tolerance,
        params.weight_floor,
    )
    return result


def score(
    probe: tuple[np.ndarray, np.ndarray],
    references: list[tuple[np.ndarray, np.ndarray]],
    params: MatcherParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Scores in [0, 1] of one probe (points, descriptors) against each reference."""
    if not references:
        return np.empty(0, dtype=np.float32)
    counts = np.array([ref[0].shape[0] for ref in references], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = np.ascontiguousarray(np.concatenate([ref[0] for ref in references]), np.float64)
    descs = np.ascontiguousarray(np.concatenate([ref[1] for ref in references]), np.float32)
    return score_stacked(probe, (points, descs, offsets), params)
