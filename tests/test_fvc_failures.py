"""FVC scoring: a capture failure is a failure (a false non-match on mated pairs), never an
impostor score, and never enters the calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biomatch.evaluation import fvc


class DotProduct:
    """compare() of 2-float templates: enough to see which pairs are scored."""

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        p = np.frombuffer(probe, np.float32)
        return np.array([float(np.frombuffer(r, np.float32) @ p) for r in references])


def template(*values: float) -> bytes:
    return np.array(values, np.float32).tobytes()


def test_a_failed_capture_is_a_false_non_match_and_no_impostor_score() -> None:
    names = ["1_1", "1_2", "2_1", "2_2"]
    templates = {"1_1": template(1, 0), "1_2": template(1, 0), "2_1": template(0, 1)}
    fingers = fvc.FingerSet(names, ["1", "1", "2", "2"], templates, {"2_2": "no_subject"}, [])
    scored = fvc.pair_scores(DotProduct(), fingers)  # type: ignore[arg-type]
    # Mated: (1_1, 1_2) scores 1; (2_1, 2_2) has a failure and never matches.
    assert sorted(scored.genuine.tolist()) == [-np.inf, 1.0]
    # Non-mated: 1_1/1_2 against 2_1 are scored; the two against 2_2 are not scores.
    assert scored.impostor.tolist() == [0.0, 0.0]
    assert scored.non_mated_without_template == 2
