"""Gallery de-duplication: every subject searched against the rest of the gallery, a report
of likely duplicates (pairs of subjects) with their scores and estimated FMRs.

The driver decrypts the gallery's templates of one model once; each chunk of subjects is
shortlisted against the whole gallery by exact inner product of index vectors, and every
shortlisted pair is scored through the plug-in's own ``compare``. A pair's score is the
best over their templates, taken from both sides; its FMR is that score's times the number
of template pairs (an impostor pair has that many chances to score high). Finished chunks
are kept (``checkpoint`` folder, named after the gallery revision and the job's settings),
so a job started again after an interruption runs only the chunks that are left, and never
mixes two revisions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.config import Settings
from biomatch.jobs.runner import ChunkRunner
from biomatch.modalities import Modality, load_modality

# (subject index a, subject index b) -> best score, a < b
PairScores = dict[tuple[int, int], float]


@dataclass(frozen=True)
class DedupContext:
    """What every chunk shares: the gallery's templates of one model, in subject order."""

    plugin_name: str
    settings: Settings
    templates: list[bytes]
    owners: np.ndarray  # subject index of each template
    vectors: np.ndarray  # index vector of each template (unit rows)
    shortlist: int


@dataclass(frozen=True)
class DuplicatePair:
    subject_a: str
    subject_b: str
    score: float
    estimated_fmr: float
    fmr_is_upper_bound: bool


_plugins: dict[str, Modality] = {}


def _plugin(context: DedupContext) -> Modality:
    if context.plugin_name not in _plugins:
        _plugins[context.plugin_name] = load_modality(context.plugin_name, context.settings)
    return _plugins[context.plugin_name]


def score_chunk(context: DedupContext, subjects: list[int]) -> list[tuple[int, int, float]]:
    """(a, b, best score) of every pair of a subject of the chunk and another subject among
    its templates' shortlists."""
    plugin = _plugin(context)
    best: PairScores = {}
    for subject in subjects:
        own = np.flatnonzero(context.owners == subject)
        for row in own:
            scores = context.vectors @ context.vectors[row]
            scores[own] = -np.inf
            for other in _shortlisted_subjects(scores, context.owners, context.shortlist):
                theirs = np.flatnonzero(context.owners == other)
                compared = plugin.compare(
                    context.templates[row], [context.templates[t] for t in theirs]
                )
                pair = (min(subject, other), max(subject, other))
                best[pair] = max(best.get(pair, -np.inf), float(np.max(compared)))
    return [(a, b, score) for (a, b), score in sorted(best.items())]


def _shortlisted_subjects(scores: np.ndarray, owners: np.ndarray, subjects: int) -> list[int]:
    """The ``subjects`` other subjects with the best-scoring templates, best first."""
    order = np.argsort(-scores, kind="stable")
    found: list[int] = []
    for index in order:
        if not np.isfinite(scores[index]) or len(found) >= subjects:
            break
        owner = int(owners[index])
        if owner not in found:
            found.append(owner)
    return found


def find_duplicates(
    context: DedupContext,
    subject_names: list[str],
    runner: ChunkRunner,
    *,
    max_fmr: float,
    chunk_subjects: int = 64,
    checkpoint: Path | None = None,
    fingerprint: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> list[DuplicatePair]:
    """Likely duplicates (estimated FMR at most ``max_fmr``), most alike first."""
    order = list(range(len(subject_names)))
    chunks = [
        (number, order[start : start + chunk_subjects])
        for number, start in enumerate(range(0, len(order), chunk_subjects))
    ]
    done = _load_finished(checkpoint, fingerprint, len(chunks))
    todo = [(number, chunk) for number, chunk in chunks if number not in done]
    if progress is not None:
        progress(len(done), len(chunks))
    for number, result in runner.run(score_chunk, context, todo):
        done[number] = result
        _save_finished(checkpoint, fingerprint, number, result)
        if progress is not None:
            progress(len(done), len(chunks))
    best: PairScores = {}
    for result in done.values():
        for a, b, score in result:
            best[a, b] = max(best.get((a, b), -np.inf), score)
    calibration = load_modality(context.plugin_name, context.settings).calibration
    templates_of = np.bincount(context.owners, minlength=len(subject_names))
    pairs = []
    for (a, b), score in best.items():
        # Rounded first: the last bits of a score may differ with the BLAS threads a worker
        # runs, and the report must not.
        score = round(score, 6)
        # The best of every template pair of the two subjects (``FmrEstimate.best_of``).
        estimate = calibration.estimate(score).best_of(int(templates_of[a] * templates_of[b]))
        if estimate.value <= max_fmr:
            pairs.append(
                DuplicatePair(
                    subject_names[a], subject_names[b], score,
                    estimate.value, estimate.is_upper_bound,
                )
            )  # fmt: skip
    return sorted(pairs, key=lambda p: (-p.score, p.subject_a, p.subject_b))


def job_fingerprint(**fields: Any) -> str:
    """Names a job's checkpoint files: the same gallery revision and settings, the same name."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _load_finished(
    checkpoint: Path | None, fingerprint: str, chunks: int
) -> dict[int, list[tuple[int, int, float]]]:
    if checkpoint is None:
        return {}
    done = {}
    for number in range(chunks):
        path = checkpoint / f"dedup-{fingerprint}-{number:05d}.json"
        if path.is_file():
            done[number] = [(int(a), int(b), float(s)) for a, b, s in json.loads(path.read_text())]
    return done


def _save_finished(
    checkpoint: Path | None, fingerprint: str, number: int, result: list[tuple[int, int, float]]
) -> None:
    if checkpoint is None:
        return
    checkpoint.mkdir(parents=True, exist_ok=True)
    path = checkpoint / f"dedup-{fingerprint}-{number:05d}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(result))
    partial.replace(path)  # a chunk file is whole or absent
