"""Fusion of calibrated FMRs: exactness for one item, the Erlang tail, conservativeness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biomatch.fusion import Evidence, erlang_tail, fuse, quality_weight


def test_one_item_keeps_its_fmr() -> None:
    fused = fuse([Evidence("finger", 1e-3)])
    assert fused.estimated_fmr == pytest.approx(1e-3)
    assert fused.modalities == ("finger",)


def test_two_items_follow_fishers_method() -> None:
    fused = fuse([Evidence("face", 1e-2), Evidence("finger", 1e-3)])
    t = 1e-5
    assert fused.estimated_fmr == pytest.approx(t * (1 - math.log(t)))
    assert fused.modalities == ("face", "finger")


def test_fused_fmr_is_calibrated_on_independent_uniform_impostors() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(100_000, 3))
    fused = np.array([fuse([Evidence("f", v) for v in row]).estimated_fmr for row in p[:20_000]])
    for level in (0.1, 0.01, 0.001):
        assert np.mean(fused <= level) == pytest.approx(level, rel=0.25, abs=2e-4)


def test_quality_weights_only_discount() -> None:
    full = fuse([Evidence("face", 1e-4), Evidence("finger", 1e-4)])
    weak = fuse([Evidence("face", 1e-4, quality_weight=0.3), Evidence("finger", 1e-4)])
    assert weak.estimated_fmr > full.estimated_fmr
    assert quality_weight(80, 20, 60) == 1.0
    assert quality_weight(10, 20, 60) == pytest.approx(0.05)
    assert 0.05 < quality_weight(40, 20, 60) < 1.0


def test_upper_bounds_propagate_and_bad_input_is_refused() -> None:
    assert fuse([Evidence("finger", 1e-4, fmr_is_upper_bound=True)]).fmr_is_upper_bound
    with pytest.raises(ValueError):
        fuse([])
    with pytest.raises(ValueError):
        fuse([Evidence("finger", 0.0)])
    with pytest.raises(ValueError):
        erlang_tail(1.0, 0)


def test_a_lone_item_keeps_its_fmr_whatever_its_weight() -> None:
    # Weights balance items against each other; one item is its own evidence.
    lone = fuse([Evidence("finger", 1e-3, quality_weight=0.2)])
    assert lone.estimated_fmr == 1e-3
    pair = fuse([Evidence("finger", 1e-3, quality_weight=0.2), Evidence("finger", 0.5)])
    unweighted = fuse([Evidence("finger", 1e-3), Evidence("finger", 0.5)])
    assert pair.estimated_fmr > unweighted.estimated_fmr
