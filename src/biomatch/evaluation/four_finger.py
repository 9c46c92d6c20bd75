"""``eval folder DIR --capture contactless --layout four_finger``: one sub-folder per hand
(its name ends ``_left`` or ``_right``), each photo split into its four fingertips.

Per finger: the same finger in two photos of one hand is mated, any finger pair of photos of
two different hands is non-mated. Fused: the four fingers of one photo against the four of
another, position by position, through the service's calibrated-FMR fusion
(``fusion.fuse``); the fused score is -log10 of the fused FMR. A photo whose four
fingertips were not found is a segmentation failure: its mated comparisons are false
non-matches, and it brings no impostor score.

As searched (``searched_*``): the service leaves out the fingertips that fail the quality
gate and refuses a photo with fewer than ``split_capture_min_passed`` passing ones
(``CoreState.extract_items``). So the same fused comparisons again over the fingertips that
passed in both photos; a refused photo is a failure to acquire, and its mated comparisons
count as false non-matches (ISO/IEC 19795-1's generalized FNMR), so the figures hide no
refusals.

Enrolled hands (``enrolled_fused_*``): each photo against every hand enrolled with its
photos (its own: the others), fused as the service fuses a four-finger search of a hand
enrolled from several photos: each position's best score over the hand's templates at that
position, its FMR times their number, weighted by the probe fingertip's quality.
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
from biomatch.modalities.finger.four_finger import FOUR_FINGER

HANDS = ("left", "right")


@dataclass
class Photo:
    key: str
    hand_folder: str
    templates: dict[int, bytes] = field(default_factory=dict)  # position -> template
    weights: dict[int, float] = field(default_factory=dict)
    passed: set[int] = field(default_factory=set)  # positions whose fingertip passed the gate
    segmented: bool = False
    seconds: float = 0.0

    def acquired(self, min_passed: int) -> bool:
        """Whether the service would search this photo (enough fingertips pass the gate)."""
        return self.segmented and len(self.passed) >= min_passed


def evaluate(
    root: Path, settings: Settings, options: runs.RunOptions, layout: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    plugin = load_modality(options.modality, settings)
    if not isinstance(plugin, MultiCapture) or layout not in plugin.capture_layouts:
        raise dataset.DatasetError(f"the {options.modality} plug-in does not split {layout!r}")
    if options.label_regex is not None:
        raise dataset.DatasetError(
            "a four-finger folder names its hands by sub-folder: --label-regex does not apply"
        )
    labels = hand_photos(root, options.file_glob)
    photos = [_photo(root, key, folder, plugin, settings, layout) for key, folder in tqdm(
        sorted(labels.items()), desc="photos"
    )]  # fmt: skip
    genuine, impostor, fused_genuine, fused_impostor = _scores(plugin, photos)
    min_passed = settings.split_capture_min_passed
    searched_genuine, searched_impostor = _searched_scores(plugin, photos, min_passed)
    plan = analysis.BootstrapPlan(options.bootstrap, options.seed, None, None)
    threshold, source = runs.thresholds(plugin, settings)["verify"]
    fused_threshold = -math.log10(settings.verify_target_fmr)
    fused_source = f"fused FMR {settings.verify_target_fmr:g} (verify_target_fmr)"
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
        fused_genuine, fused_impostor, threshold=fused_threshold, threshold_source=fused_source,
        plan=plan,
    )  # fmt: skip
    result.update({f"fused_{key}": value for key, value in fused.items()})
    searched = analysis.verification(
        searched_genuine, searched_impostor, threshold=fused_threshold,
        threshold_source=fused_source, plan=plan,
    )  # fmt: skip
    refused = [p.key for p in photos if not p.acquired(min_passed)]
    result["searched_min_passed"] = min_passed
    result["searched_failures_to_acquire"] = len(refused)
    result["searched_refused_photos"] = refused
    result["fingertips_passed"] = {
        str(n): sum(len(p.passed) == n for p in photos if p.segmented) for n in range(5)
    }  # photos by how many of their fingertips pass the gate
    result.update({f"searched_fused_{key}": value for key, value in searched.items()})
    enrolled_genuine, enrolled_impostor = _enrolled_scores(plugin, photos)
    against_hands = analysis.verification(
        enrolled_genuine, enrolled_impostor, threshold=fused_threshold,
        threshold_source=fused_source, plan=plan,
    )  # fmt: skip
    result.update({f"enrolled_fused_{key}": value for key, value in against_hands.items()})
    seconds = [p.seconds for p in photos]
    result["ms_per_photo_mean"] = float(np.mean(seconds) * 1000) if seconds else None
    result["provenance"] = runs.provenance(
        root, [root / p.key for p in photos], plugin, {"layout": layout}
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result, {}


def searched_fingertips(
    root: Path, file_glob: str | None, plugin: Modality, settings: Settings
) -> list[tuple[str, bytes]]:
    """(finger, template) of every fingertip a search would use: each photo of each
    hand folder split, the fingertips that pass the gate of the photos that are not refused
    (``split_capture_min_passed``). The finger is ``hand_folder/position``."""
    found = []
    for key, folder in tqdm(sorted(hand_photos(root, file_glob).items()), desc="photos"):
        photo = _photo(root, key, folder, plugin, settings, FOUR_FINGER)
        if not photo.acquired(settings.split_capture_min_passed):
            continue
        for position in sorted(photo.passed):
            found.append((f"{folder}/{position}", photo.templates[position]))
    return found


def hand_photos(root: Path, file_glob: str | None) -> dict[str, str]:
    """Photo key -> hand folder; every folder's hand checked before a photo is split."""
    labels = dataset.label_folder(root, None, file_glob)
    if not labels:
        raise dataset.DatasetError(f"{root}: no photos in hand sub-folders (..._left, ..._right)")
    for folder in sorted(set(labels.values())):
        hand_of(folder)
    return labels


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
            if capture.quality.passed:
                photo.passed.add(part.position)
    photo.seconds = time.perf_counter() - started
    return photo


def _scores(
    plugin: Modality, photos: list[Photo]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    genuine: list[float] = []
    impostor: list[float] = []
    fused_genuine: list[float] = []
    fused_impostor: list[float] = []
    for a, b in itertools.combinations(photos, 2):
        mated = a.hand_folder == b.hand_folder
        if not (a.segmented and b.segmented):
            if mated:  # a segmentation failure: every mated comparison is a miss
                genuine.extend([-np.inf] * 4)
                fused_genuine.append(-np.inf)
            continue
        for position in sorted(set(a.templates) | set(b.templates)):
            if mated:
                genuine.append(_score(plugin, a.templates.get(position), b.templates.get(position)))
            elif position in a.templates and b.templates:
                others = list(b.templates.values())
                impostor.extend(float(s) for s in plugin.compare(a.templates[position], others))
        fused = _fused(plugin, a, b, set(a.templates) & set(b.templates))
        (fused_genuine if mated else fused_impostor).append(fused)
    return (
        np.asarray(genuine),
        np.asarray(impostor),
        np.asarray(fused_genuine),
        np.asarray(fused_impostor),
    )


def _searched_scores(
    plugin: Modality, photos: list[Photo], min_passed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores over the fingertips that passed the gate in both photos; a mated pair
    with a refused photo is a miss."""
    genuine: list[float] = []
    impostor: list[float] = []
    for a, b in itertools.combinations(photos, 2):
        mated = a.hand_folder == b.hand_folder
        if not (a.acquired(min_passed) and b.acquired(min_passed)):
            if mated:
                genuine.append(-np.inf)
            continue
        (genuine if mated else impostor).append(_fused(plugin, a, b, a.passed & b.passed))
    return np.asarray(genuine), np.asarray(impostor)


def _enrolled_scores(plugin: Modality, photos: list[Photo]) -> tuple[np.ndarray, np.ndarray]:
    """Each photo against each hand enrolled with its segmented photos (its own: the
    others); a mated trial without a segmented photo on either side is a miss."""
    hands: dict[str, list[Photo]] = {}
    for photo in photos:
        hands.setdefault(photo.hand_folder, []).append(photo)
    genuine: list[float] = []
    impostor: list[float] = []
    for probe in photos:
        for hand, members in sorted(hands.items()):
            mated = hand == probe.hand_folder
            enrolled = [p for p in members if p is not probe and p.segmented]
            if probe.segmented and enrolled:
                (genuine if mated else impostor).append(_fused_against(plugin, probe, enrolled))
            elif mated and len(members) > 1:
                genuine.append(-np.inf)
    return np.asarray(genuine), np.asarray(impostor)


def _fused_against(plugin: Modality, probe: Photo, enrolled: list[Photo]) -> float:
    """-log10 fused FMR of the probe's fingertips against the enrolled photos' templates of
    the same positions, each position's best counting its templates (``best_of``)."""
    evidence = []
    for position, template in sorted(probe.templates.items()):
        references = [p.templates[position] for p in enrolled if position in p.templates]
        if not references:
            continue
        estimate = plugin.calibration.estimate_best(plugin.compare(template, references))
        weight = probe.weights[position]
        evidence.append(
            Evidence("finger", estimate.value, estimate.is_upper_bound, weight, position)
        )
    return -math.log10(fuse(evidence).estimated_fmr) if evidence else -np.inf


def _fused(plugin: Modality, a: Photo, b: Photo, positions: set[int]) -> float:
    """-log10 of the calibrated-FMR fusion of the two photos' fingertips at ``positions``
    (each in both photos); -inf where there is none."""
    evidence = []
    for position in sorted(positions):
        estimate = plugin.calibration.estimate(
            _score(plugin, a.templates[position], b.templates[position])
        )
        weight = min(a.weights[position], b.weights[position])
        evidence.append(
            Evidence("finger", estimate.value, estimate.is_upper_bound, weight, position)
        )
    return -math.log10(fuse(evidence).estimated_fmr) if evidence else -np.inf


def _score(plugin: Modality, first: bytes | None, second: bytes | None) -> float:
    """The comparison's score; -inf where either fingertip has no template (a miss)."""
    if first is None or second is None:
        return -np.inf
    return float(plugin.compare(first, [second])[0])
