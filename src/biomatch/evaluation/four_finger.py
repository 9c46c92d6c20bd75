"""``eval folder DIR --capture contactless --layout four_finger``: one sub-folder per hand
(its name ends ``_left`` or ``_right``), each photo split into its four fingertips.

Per finger: the same finger in two photos of one hand is mated, any finger pair of photos of
two different hands is non-mated. Fused: the four fingers of one photo against the four of
another, position by position, through the service's calibrated-FMR fusion
(``fusion.fuse``); the fused score is -log10 of the fused FMR. A photo whose four
fingertips were not found is a segmentation failure: its mated comparisons are false
non-matches, and it brings no impostor score.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from biomatch.config import Settings
from biomatch.errors import BioMatchError
from biomatch.evaluation import analysis, dataset, runs
from biomatch.fusion import Evidence, fuse
from biomatch.imaging import read_image_file
from biomatch.modalities import Modality, MultiCapture, load_modality

HANDS = ("left", "right")


@dataclass
class Photo:
    key: str
    hand_folder: str
    templates: dict[int, bytes] = field(default_factory=dict)  # position -> template
    weights: dict[int, float] = field(default_factory=dict)
    segmented: bool = False
    seconds: float = 0.0


def evaluate(
    root: Path, settings: Settings, options: runs.RunOptions, layout: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    plugin = load_modality(options.modality, settings)
    if not isinstance(plugin, MultiCapture) or layout not in plugin.capture_layouts:
        raise dataset.DatasetError(f"the {options.modality} plug-in does not split {layout!r}")
    labels = dataset.label_folder(root, None)
    photos = [_photo(root, key, folder, plugin, settings, layout) for key, folder in tqdm(
        sorted(labels.items()), desc="photos"
    )]  # fmt: skip
    genuine, impostor, fused_genuine, fused_impostor = _scores(plugin, photos)
    plan = analysis.BootstrapPlan(options.bootstrap, options.seed, None, None)
    threshold, source = runs.thresholds(plugin, settings)["verify"]
    result: dict[str, Any] = {
        "title": f"BioMatch four-finger evaluation: {root.name}",
        "evaluation": "four-finger photos: per finger and fused per photo pair",
        "photos": len(photos),
        "hands": len({p.hand_folder for p in photos}),
        "segmentation_failures": sum(not p.segmented for p in photos),
        "segmentation_failed_photos": [p.key for p in photos if not p.segmented],
        "failures_to_enrol": sum(4 - len(p.templates) for p in photos if p.segmented),
        **analysis.verification(
            genuine, impostor, threshold=threshold, threshold_source=source, plan=plan
        ),
    }
    fused = analysis.verification(
        fused_genuine,
        fused_impostor,
        threshold=-math.log10(settings.verify_target_fmr),
        threshold_source=f"fused FMR {settings.verify_target_fmr:g} (verify_target_fmr)",
        plan=plan,
    )
    result.update({f"fused_{key}": value for key, value in fused.items()})
    seconds = [p.seconds for p in photos]
    result["ms_per_photo_mean"] = float(np.mean(seconds) * 1000) if seconds else None
    result["provenance"] = runs.provenance(
        root, [root / p.key for p in photos], plugin, {"layout": layout}
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result, {}


def hand_of(folder: str) -> str:
    for hand in HANDS:
        if folder.lower().endswith(f"_{hand}"):
            return hand
    raise dataset.DatasetError(f"{folder}: a hand's folder name ends _left or _right")


def _photo(
    root: Path, key: str, folder: str, plugin: Modality, settings: Settings, layout: str
) -> Photo:
    assert isinstance(plugin, MultiCapture)
    photo = Photo(key, folder)
    started = time.perf_counter()
    image = read_image_file(
        str(root / key), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )
    try:
        parts = plugin.split_capture(image, layout, hand_of(folder))
    except BioMatchError:
        return photo
    photo.segmented = True
    for part in parts:
        capture = plugin.analyse(part.image)
        if capture.has_subject:
            photo.templates[part.position] = plugin.make_template(capture)
            photo.weights[part.position] = plugin.quality_weight(capture.quality.scores())
    photo.seconds = time.perf_counter() - started
    return photo


def _scores(
    plugin: Modality, photos: list[Photo]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    genuine: list[float] = []
    impostor: list[float] = []
    fused_genuine: list[float] = []
    fused_impostor: list[float] = []
    calibration = plugin.calibration
    for a, b in itertools.combinations(photos, 2):
        mated = a.hand_folder == b.hand_folder
        if not (a.segmented and b.segmented):
            if mated:  # a segmentation failure: every mated comparison is a miss
                genuine.extend([-np.inf] * 4)
                fused_genuine.append(-np.inf)
            continue
        evidence = []
        for position in sorted(set(a.templates) | set(b.templates)):
            score = _score(plugin, a.templates.get(position), b.templates.get(position))
            if mated:
                genuine.append(score)
            elif position in a.templates and b.templates:
                others = list(b.templates.values())
                impostor.extend(float(s) for s in plugin.compare(a.templates[position], others))
            if np.isfinite(score):
                estimate = calibration.estimate(score)
                weight = min(a.weights[position], b.weights[position])
                evidence.append(
                    Evidence("finger", estimate.value, estimate.is_upper_bound, weight, position)
                )
        fused = -math.log10(fuse(evidence).estimated_fmr) if evidence else -np.inf
        (fused_genuine if mated else fused_impostor).append(fused)
    return (
        np.asarray(genuine),
        np.asarray(impostor),
        np.asarray(fused_genuine),
        np.asarray(fused_impostor),
    )


def _score(plugin: Modality, first: bytes | None, second: bytes | None) -> float:
    """The comparison's score; -inf where either fingertip has no template (a miss)."""
    if first is None or second is None:
        return -np.inf
    return float(plugin.compare(first, [second])[0])
