"""Kill -9 during enrolment (a few runs; `benchmarks/crash_consistency.py --runs 50` for
more): no acknowledged enrolment lost, no half-written subject, the audit log intact."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.crashing import crash_once

RUNS = int(os.environ.get("BIOMATCH_CRASH_RUNS", "3"))


def test_kill_minus_nine_during_enrolment_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(14)
    data = tmp_path / "data"
    runs = [crash_once(data, run, rng, dict(os.environ)) for run in range(RUNS)]
    assert [r.problems for r in runs] == [[] for _ in runs]
    assert all(r.acknowledged for r in runs)
    assert runs[-1].subjects_found >= sum(len(r.acknowledged) for r in runs)
