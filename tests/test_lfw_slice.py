"""The LFW evaluation code on a small real slice (the full run is `make eval-lfw`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biomatch.config import Settings
from biomatch.evaluation import lfw
from biomatch.modalities import load_modality
from tests.conftest import LFW, shared_file


def test_pairs_file_follows_view2() -> None:
    pairs = lfw.read_pairs(shared_file(LFW / "pairs.txt"))
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    assert {p.fold for p in pairs} == set(range(10))
    assert all(p.same for p in pairs[:300]) and not any(p.same for p in pairs[300:600])


def test_a_slice_of_view2_is_scored_well(tmp_path: Path) -> None:
    root = shared_file(LFW / "lfw")
    pairs = lfw.read_pairs(LFW / "pairs.txt")
    chosen = pairs[:40] + pairs[300:340]
    ids = [i for p in chosen for i in (p.first, p.second)]
    templates = lfw.compute_templates(root, ids, Settings(), workers=1, cache=tmp_path / "c.json")
    assert len(templates.run_seconds) == len(set(ids))  # every image extracted once
    scores = lfw.pair_scores(templates, chosen)
    same = np.array([p.same for p in chosen])
    # The packaged calibration's 1:1 threshold (FMR 1e-3) decides the pairs.
    threshold = load_modality("face", Settings()).calibration.threshold_for(1e-3)
    accuracy = float(np.mean((scores >= threshold) == same))
    assert accuracy >= 0.9
    assert np.mean(scores[~same] >= threshold) <= 0.05
    # The cache is reused: nothing is recomputed on the second call, the same bytes come back.
    again = lfw.compute_templates(root, ids, Settings(), workers=1, cache=tmp_path / "c.json")
    assert again.run_seconds == []
    assert again.templates == templates.templates
    np.testing.assert_array_equal(lfw.pair_scores(again, chosen), scores)
    # Scores are the plug-in's compare, not a shortcut of their own.
    plugin = templates.plugin
    first = chosen[0]
    direct = plugin.compare(templates.templates[first.first], [templates.templates[first.second]])
    assert scores[0] == direct[0]
