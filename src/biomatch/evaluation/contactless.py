"""Contactless finger evaluations and calibrations.

``eval folder --capture contactless --probe-glob P --reference-glob R``: subject = first
sub-folder (or ``--label-regex``); each probe file against each reference file, mated where
both share a subject. Probes are extracted by the capture kind's plug-in, references by the
reference capture kind's (contact prints: the ``finger`` plug-in), and every score comes
from the probe plug-in's ``compare``, as a contactless search of a contact gallery does.

``calibrate-contactless SPEC...``: the impostor distributions of contactless-contactless
and contactless-contact comparisons, written as the contactless plug-in's own calibration
and the pair's (``calibration.pair_key``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.calibration import (
    ScoreCalibration,
    calibrate_by_source_pair,
    load_pair_calibration,
    pair_key,
)
from biomatch.config import Settings
from biomatch.evaluation import dataset, four_finger, runs
from biomatch.modalities import Modality, load_modality, plugin_for_capture
from biomatch.modalities.finger.four_finger import FOUR_FINGER

CONTACT = "contact"
CONTACTLESS = "contactless"


def select(root: Path, pattern: str | None, label_regex: str | None) -> dict[str, str]:
    """Image key -> subject for the images under root whose file name matches the glob."""
    return dataset.label_folder(root, label_regex, pattern)


@dataclass(frozen=True)
class CrossOptions:
    probe_glob: str | None
    reference_glob: str | None
    capture: str = CONTACTLESS
    reference_capture: str = CONTACT


def evaluate_cross(
    root: Path, settings: Settings, options: runs.RunOptions, cross: CrossOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    probe_name = plugin_for_capture(options.modality, cross.capture, settings)
    reference_name = plugin_for_capture(options.modality, cross.reference_capture, settings)
    probes = select(root, cross.probe_glob, options.label_regex)
    references = select(root, cross.reference_glob, options.label_regex)
    if not probes or not references:
        raise dataset.DatasetError(
            f"{root}: no labelled probe ({cross.probe_glob}) or reference "
            f"({cross.reference_glob}) images"
        )
    plugin = load_modality(probe_name, settings)
    reference_plugin = load_modality(reference_name, settings)
    found = _templates(root, probes, probe_name, settings, options)
    found_refs = _templates(root, references, reference_name, settings, options)
    pairs = [(p, r) for p in sorted(probes) for r in sorted(references) if p != r]
    same = np.array([probes[p] == references[r] for p, r in pairs], dtype=bool)
    merged = {**found_refs.templates, **found.templates}
    scores = dataset.scores_of_pairs(plugin, merged, pairs)
    # A failed capture is a false non-match on mated pairs, never an impostor score.
    usable = same | np.isfinite(scores)
    comparisons = runs.Comparisons(
        [p for p, keep in zip(pairs, usable, strict=True) if keep], same[usable], scores[usable]
    )
    calibration = calibration_between(plugin, reference_plugin)
    templates = dataset.Templates(
        plugin.info.key,
        merged,
        {**found_refs.quality, **found.quality},
        {**found_refs.gate_passed, **found.gate_passed},
        {**found_refs.failures, **found.failures},
    )
    result: dict[str, Any] = {
        "title": f"BioMatch contactless evaluation: {root.name}",
        "evaluation": "each probe file against each reference file; mated: same subject",
        "probe_model": plugin.info.key,
        "reference_model": reference_plugin.info.key,
        "calibration": calibration.model_key,
        "probes": len(probes),
        "references": len(references),
        "subjects": len(set(probes.values()) | set(references.values())),
        **runs.failures(templates, set(probes) | set(references)),
        "probe_failures_to_enrol": len(set(probes) & set(found.failures)),
        "reference_failures_to_enrol": len(set(references) & set(found_refs.failures)),
    }
    labels = {**references, **probes}
    figures = runs.verification_part(
        result, comparisons, templates, plugin, settings, options, labels, calibration
    )
    files = [root / k for k in sorted(labels)]
    extra = {"probe_glob": cross.probe_glob, "reference_glob": cross.reference_glob}
    result["provenance"] = runs.provenance(root, files, plugin, extra)
    result["extraction_ms_mean"] = _mean_ms(found.run_seconds + found_refs.run_seconds)
    result["elapsed_s"] = time.perf_counter() - started
    return result, figures


def calibration_between(plugin: Modality, reference: Modality) -> ScoreCalibration:
    """As the core's ``calibration_between``: the pair's where measured, else the probe's."""
    if plugin.info.key == reference.info.key:
        return plugin.calibration
    return load_pair_calibration(plugin.info.key, reference.info.key) or plugin.calibration


def _templates(
    root: Path,
    labels: Mapping[str, str],
    plugin_name: str,
    settings: Settings,
    options: runs.RunOptions,
) -> dataset.Templates:
    return dataset.extract(
        root,
        labels,
        settings,
        plugin_name,
        workers=options.workers,
        cache=_cache(options, plugin_name),
    )


def _cache(options: runs.RunOptions, plugin_name: str) -> Path | None:
    """One cache file per plug-in (a cache file holds one model's templates)."""
    if options.cache is None:
        return None
    return options.cache.with_name(f"{options.cache.stem}.{plugin_name}{options.cache.suffix}")


def _mean_ms(seconds: list[float]) -> float | None:
    return float(np.mean(seconds) * 1000) if seconds else None


# -- calibration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """``kind:folder:glob[:label_regex]``: images of one capture kind, labelled by their
    first sub-folder or by the regex's first group on the file name. Kind ``four_finger``:
    contactless photos of four fingers, one hand per sub-folder (``..._left``,
    ``..._right``), each split into the fingertips a search would use."""

    kind: str
    root: Path
    pattern: str
    label_regex: str | None

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.root}:{self.pattern}"

    @property
    def capture(self) -> str:
        return CONTACT if self.kind == CONTACT else CONTACTLESS

    @classmethod
    def parse(cls, spec: str) -> Source:
        parts = spec.split(":", 3)
        if len(parts) < 3 or parts[0] not in (CONTACT, CONTACTLESS, FOUR_FINGER):
            raise dataset.DatasetError(
                f"{spec!r}: a source is contact|contactless|four_finger:FOLDER:GLOB[:LABEL_REGEX]"
            )
        if parts[0] == FOUR_FINGER and len(parts) > 3:
            raise dataset.DatasetError(
                f"{spec!r}: a four_finger source names its hands by sub-folder, not a regex"
            )
        root = Path(parts[1])
        if not root.is_dir():
            raise dataset.DatasetError(f"{root}: no such folder")
        return cls(parts[0], root, parts[2], parts[3] if len(parts) > 3 else None)


@dataclass
class _Set:
    source: Source
    labels: list[str]
    templates: list[bytes]


def calibrate(
    specs: list[str], settings: Settings, workers: int = 2, cache: Path | None = None
) -> tuple[ScoreCalibration, ScoreCalibration]:
    """(contactless-contactless, contactless-contact) impostor calibrations: every pair of
    images of different fingers, within and across the sources (sources are different
    people, so every pair across two sources is non-mated). Each calibration's provenance
    checks it source pair by source pair (``by_source_pair``): a pooled calibration can
    understate the false match rate of one kind of capture."""
    sources = [Source.parse(spec) for spec in specs]
    options = runs.RunOptions("finger", workers, cache)
    contactless = plugin_for_capture("finger", CONTACTLESS, settings)
    plugin = load_modality(contactless, settings)
    contact_plugin = load_modality("finger", settings)
    sets = [_source_set(source, plugin, settings, options) for source in sources]
    probes = [s for s in sets if s.source.capture == CONTACTLESS]
    contacts = [s for s in sets if s.source.capture == CONTACT]
    same_kind = [
        _impostors(plugin, a, b) for i, a in enumerate(probes) for b in probes[i:]
    ]  # fmt: skip
    cross = [_impostors(plugin, a, b) for a in probes for b in contacts]
    described = [s.source.name for s in sets]
    provenance = {
        "sources": described,
        "pairs": "every pair of images of different fingers, within and across sources",
        "n_contactless_images": sum(len(s.templates) for s in probes),
        "n_contact_images": sum(len(s.templates) for s in contacts),
        # of them from four-finger photos: the fingertips a search would use
        "n_four_finger_fingertips": sum(
            len(s.templates) for s in sets if s.source.kind == FOUR_FINGER
        ),
    }
    return (
        calibrate_by_source_pair(plugin.info.key, same_kind, provenance),
        calibrate_by_source_pair(
            pair_key(plugin.info.key, contact_plugin.info.key), cross, provenance
        ),
    )


def _source_set(
    source: Source, plugin: Modality, settings: Settings, options: runs.RunOptions
) -> _Set:
    # A finger is named by its folder's root and label: the contact prints and photos of
    # one folder share them, different data sets never do.
    root = source.root.resolve()
    if source.kind == FOUR_FINGER:
        found = four_finger.searched_fingertips(source.root, source.pattern, plugin, settings)
        return _Set(source, [f"{root}/{finger}" for finger, _ in found], [t for _, t in found])
    labels = select(source.root, source.pattern, source.label_regex)
    name = plugin_for_capture("finger", source.capture, settings)
    templates = _templates(source.root, labels, name, settings, options).templates
    keys = sorted(k for k in labels if k in templates)
    return _Set(source, [f"{root}/{labels[k]}" for k in keys], [templates[k] for k in keys])


def _impostors(plugin: Modality, first: _Set, second: _Set) -> tuple[str, np.ndarray]:
    """The two sets' names and every pair of images of different fingers, one from each set;
    within one set (the same set twice), each pair once."""
    sources = f"{first.source.name} + {second.source.name}"
    if first is second:
        return sources, dataset.impostor_scores(plugin, first.templates, first.labels)
    return sources, dataset.cross_impostor_scores(
        plugin, (first.templates, first.labels), (second.templates, second.labels)
    )
