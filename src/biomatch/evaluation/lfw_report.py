"""The LFW evaluation report: View-2 and all-pairs verification, closed- and open-set
identification, from the one evaluation template cache. Every score is the plug-in's
``compare``; searches go through the service's index path (``dataset.search_scores``)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.config import Settings
from biomatch.evaluation import analysis, dataset, lfw, metrics, report, runs
from biomatch.modalities import load_modality

FNMR_KEYS = [f"fnmr_at_fmr_{analysis.rate_label(t)}" for t in analysis.FMR_TARGETS]
Scores = tuple[np.ndarray, np.ndarray]


def evaluate(
    lfw_dir: Path,
    pairs_file: Path,
    settings: Settings,
    *,
    workers: int = 2,
    cache: Path | None = None,
    impostor_pairs: int = 1_000_000,
    bootstrap: int = 200,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    plugin = load_modality("face", settings)
    ids = lfw.all_image_ids(lfw_dir)
    templates = lfw.compute_templates(lfw_dir, ids, settings, workers, cache)
    limits = runs.thresholds(plugin, settings)
    result: dict[str, Any] = {
        "title": "BioMatch evaluation report: LFW (face)",
        "images": len(ids),
        "failures_to_enrol": len(templates.failures),
        "failure_reasons": {i: r for i, r in sorted(templates.failures.items())},
        "quality_vs_accuracy": "not in this report: the LFW template cache holds no quality "
        "scores (`biomatch eval folder` on the LFW folder measures them)",
        "groups": "not in this report: LFW carries no group labels given by a user, and "
        "BioMatch never infers them from images",
    }
    view2, view2_scores = _view2(templates, pairs_file, limits["verify"], bootstrap, seed)
    result["verification_view2"] = view2
    every, every_scores = _all_pairs(templates, limits["verify"], impostor_pairs, bootstrap, seed)
    result["verification_all_pairs"] = every
    curves = {"View-2 pairs": view2_scores, "all mated, sampled non-mated": every_scores}
    figures = {
        "det": report.det_plot(curves, f"DET, LFW ({plugin.info.key})"),
        "scores": report.score_histogram(*every_scores, limits["verify"][0]),
    }
    identification, id_figures = _identification(lfw_dir, templates, settings, limits["identify"])
    result["identification"] = identification
    figures.update(id_figures)
    result["headline"] = {
        "view2_accuracy_mean": view2["accuracy_mean"],
        "view2_eer": view2["eer"],
        "all_pairs_eer": every["eer"],
        **{f"all_pairs_{k}": every[k] for k in FNMR_KEYS},
        "rank1": identification["rank1"],
        "rank1_with_distractors": identification["distractor_expansion"][-1]["rank1"],
        "fnir_at_fpir_0.01": identification["fnir_at_fpir_0.01"],
        "failures_to_enrol": len(templates.failures),
    }
    files = [lfw.image_path(lfw_dir, i) for i in ids]
    extra = {
        "pairs_file": str(pairs_file.resolve()),
        "pairs_sha256": dataset.file_sha256(pairs_file),
    }
    result["provenance"] = runs.provenance(lfw_dir, files, plugin, extra)
    result["elapsed_s"] = time.perf_counter() - started
    return result, figures


def _view2(
    templates: lfw.TemplateSet,
    pairs_file: Path,
    operating: tuple[float, str],
    bootstrap: int,
    seed: int,
) -> tuple[dict[str, Any], Scores]:
    pairs = lfw.read_pairs(pairs_file)
    scores = lfw.pair_scores(templates, pairs)
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])
    person = np.array([pair.first[:-5] for pair in pairs])
    accuracies = np.array([f.accuracy for f in metrics.ten_fold_accuracy(scores, same, folds)])
    plan = analysis.BootstrapPlan(bootstrap, seed, person[same], person[~same])
    result: dict[str, Any] = {
        "protocol": "LFW View-2: 3,000 mated and 3,000 non-mated pairs in 10 folds",
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "pairs_with_a_failure_to_enrol": int(np.sum(~np.isfinite(scores))),
    }
    result.update(
        analysis.verification(
            scores[same],
            scores[~same],
            threshold=operating[0],
            threshold_source=operating[1],
            plan=plan,
        )
    )
    return result, (scores[same], scores[~same])


def _all_pairs(
    templates: lfw.TemplateSet,
    operating: tuple[float, str],
    impostor_pairs: int,
    bootstrap: int,
    seed: int,
) -> tuple[dict[str, Any], Scores]:
    """Every mated pair of LFW and a seeded sample of non-mated pairs (errata left out)."""
    by_person: dict[str, list[str]] = {}
    for image_id in sorted({*templates.templates, *templates.failures} - lfw.ERRATA):
        by_person.setdefault(image_id[:-5], []).append(image_id)
    mated, genuine_person = [], []
    for person, ids in by_person.items():
        for a, b in itertools.combinations(ids, 2):
            mated.append((a, b))
            genuine_person.append(person)
    genuine = dataset.scores_of_pairs(templates.plugin, templates.templates, mated)
    usable = sorted(i for i in templates.templates if i not in lfw.ERRATA)
    people = np.array([i[:-5] for i in usable])
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(usable), 2 * impostor_pairs)
    second = rng.integers(0, len(usable), 2 * impostor_pairs)
    keep = people[first] != people[second]
    first, second = first[keep][:impostor_pairs], second[keep][:impostor_pairs]
    sampled = [(usable[a], usable[b]) for a, b in zip(first.tolist(), second.tolist(), strict=True)]
    impostor = dataset.scores_of_pairs(templates.plugin, templates.templates, sampled)
    plan = analysis.BootstrapPlan(bootstrap, seed, np.array(genuine_person), people[first])
    result: dict[str, Any] = {
        "protocol": "every mated pair; non-mated pairs drawn at random (seeded) among images "
        "with templates; a mated pair with a failure to enrol is a false non-match",
        "impostor_sample_seed": seed,
    }
    result.update(
        analysis.verification(
            genuine,
            impostor,
            threshold=operating[0],
            threshold_source=operating[1],
            plan=plan,
        )
    )
    return result, (genuine, impostor)


def _identification(
    lfw_dir: Path, templates: lfw.TemplateSet, settings: Settings, operating: tuple[float, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The split of ``lfw.evaluate_identification`` (``dataset.closed_set_split``), run as
    ``eval folder`` runs it (``runs.identification``)."""
    split = dataset.closed_set_split(lfw.images_by_person(lfw_dir), templates.templates)
    return runs.identification(split, templates.templates, templates.plugin, settings, operating)
