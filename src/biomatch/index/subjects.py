"""From template hits to subject hits: the best template of each of the top subjects."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from biomatch.index.base import SearchHit, VectorIndex


def search_subjects(
    index: VectorIndex, subject_of: Mapping[int, int], vector: np.ndarray, subjects: int
) -> list[tuple[int, SearchHit]]:
    """Best hit of each of the top ``subjects`` subjects, as (subject id, hit), best first.
    Subjects with several templates take several hits, so the search widens until it has
    enough subjects or has seen the whole index."""
    if subjects <= 0 or len(index) == 0:
        return []
    want = subjects
    while True:
        hits = index.search(vector, want)
        best: dict[int, SearchHit] = {}
        for hit in hits:
            best.setdefault(subject_of[hit.template_id], hit)
        if len(best) >= subjects or len(hits) >= len(index):
            return list(best.items())[:subjects]
        want *= 4
