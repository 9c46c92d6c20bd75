"""Verification against enrolled subjects, decided as the service decides.

Each labelled image is a probe against subjects enrolled with all their images (its own
subject: all but the probe). A subject counts its best score over its k templates, and the
decision variable is -log10 of that score's calibrated FMR times k
(``FmrEstimate.best_of``), the estimate ``core.search`` applies the target FMR to. This is
the protocol of a gallery that enrols several captures of a person (photos, impressions,
views of one fingertip), where ``eval folder``'s pairs are one image against one.

Mated: every probe whose subject has another image; a probe without a template, or a subject
none of whose other images has one, is a miss. Non-mated: (probe, other subject) among
images with templates, all of them or a seeded sample of about ``count``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biomatch.calibration import ScoreCalibration
from biomatch.config import Settings
from biomatch.evaluation import analysis, dataset
from biomatch.modalities import Modality

PROTOCOL = (
    "each image against subjects enrolled with their images (its own: the others); a "
    "subject's best score over its k templates, its FMR times k, as the service decides"
)


@dataclass
class SubjectScores:
    """-log10 estimated FMR of each trial, with the probe's subject (bootstrap clusters)."""

    genuine: list[float] = field(default_factory=list)
    impostor: list[float] = field(default_factory=list)
    genuine_subjects: list[str] = field(default_factory=list)
    impostor_subjects: list[str] = field(default_factory=list)

    def add(self, mated: bool, value: float, subject: str) -> None:
        (self.genuine if mated else self.impostor).append(value)
        (self.genuine_subjects if mated else self.impostor_subjects).append(subject)


def subject_scores(
    by_subject: Mapping[str, Sequence[str]],
    templates: Mapping[str, bytes],
    plugin: Modality,
    calibration: ScoreCalibration,
    count: int,
    rng: np.random.Generator,
) -> SubjectScores:
    """The protocol's mated and non-mated trials (the module's docstring says which)."""
    enrolled = {s: [k for k in keys if k in templates] for s, keys in by_subject.items()}
    subjects = sorted(s for s, keys in enrolled.items() if keys)
    probes = [(k, s) for s, keys in sorted(by_subject.items()) for k in keys if k in templates]
    width = _rivals_per_probe(len(probes), len(subjects) - 1, count)
    found = SubjectScores()
    for subject, keys in sorted(by_subject.items()):
        for _ in [k for k in keys if k not in templates] if len(keys) > 1 else []:
            found.add(True, -math.inf, subject)
    for key, subject in probes:
        rivals = [s for s in subjects if s != subject]
        if width < len(rivals):
            rivals = [rivals[i] for i in np.sort(rng.choice(len(rivals), width, False))]
        trials = [(False, enrolled[rival]) for rival in rivals]
        own = [k for k in enrolled[subject] if k != key]
        if own:
            trials.append((True, own))
        elif len(by_subject[subject]) > 1:
            found.add(True, -math.inf, subject)  # no other image of the subject enrolled
        for mated, value in _decided(plugin, calibration, templates, key, trials):
            found.add(mated, value, subject)
    return found


def _rivals_per_probe(probes: int, rivals: int, count: int) -> int:
    """Every rival subject where probes x rivals fits in ``count``; else about count in all."""
    if probes * rivals <= count:
        return max(rivals, 0)
    return max(1, count // max(probes, 1))


def _decided(
    plugin: Modality,
    calibration: ScoreCalibration,
    templates: Mapping[str, bytes],
    probe: str,
    trials: list[tuple[bool, list[str]]],
) -> list[tuple[bool, float]]:
    """(mated, -log10 estimated FMR) of each trial, from one ``compare`` of the probe with
    every trial's references."""
    references = [templates[k] for _, keys in trials for k in keys]
    scores = plugin.compare(templates[probe], references) if references else np.empty(0)
    bounds = np.cumsum([0, *(len(keys) for _, keys in trials)])
    return [
        (mated, -math.log10(calibration.estimate_best(scores[lo:hi]).value))
        for (mated, _), lo, hi in zip(trials, bounds[:-1], bounds[1:], strict=True)
    ]


def evaluate(
    by_subject: Mapping[str, Sequence[str]],
    templates: dataset.Templates,
    plugin: Modality,
    settings: Settings,
    bootstrap: int,
    seed: int,
    count: int,
) -> dict[str, Any]:
    calibration = plugin.calibration
    found = subject_scores(
        by_subject, templates.templates, plugin, calibration, count, np.random.default_rng(seed)
    )
    plan = analysis.BootstrapPlan(
        bootstrap, seed, np.asarray(found.genuine_subjects), np.asarray(found.impostor_subjects)
    )
    target = settings.verify_target_fmr
    return {
        "protocol": PROTOCOL,
        "calibration": calibration.model_key,
        "score": "-log10 estimated FMR of the subject",
        **analysis.verification(
            np.asarray(found.genuine),
            np.asarray(found.impostor),
            threshold=-math.log10(target),
            threshold_source=f"estimated FMR {target:g} (verify_target_fmr)",
            plan=plan,
        ),
    }
