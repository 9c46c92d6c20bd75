"""A user's labelled data: a pairs list or a labelled folder, and its templates.

Images are named by their path relative to the data root. An image whose template cannot
be made is a failure (to enrol or to acquire, depending on its role) and stays in every
count: its comparisons score -inf, which never matches.
"""

from __future__ import annotations

import base64
import csv
import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from biomatch.batch import extract_files
from biomatch.config import Settings
from biomatch.errors import InvalidDataset
from biomatch.index import create_index, search_subjects
from biomatch.modalities import Modality, load_modality

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm"}
TRUE_WORDS = {"1", "true", "yes", "y", "same", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "different", "f"}


class DatasetError(InvalidDataset):
    """The data does not follow the documented layout (message says where)."""


@dataclass(frozen=True)
class PairRow:
    first: str
    second: str
    same: bool


def read_pairs_csv(path: Path) -> list[PairRow]:
    """CSV with the header ``img_a,img_b,same_identity``; paths relative to the root."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"img_a", "img_b", "same_identity"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return [_pair_row(path, line, row) for line, row in enumerate(reader, start=2)]


def _pair_row(path: Path, line: int, row: dict[str, str]) -> PairRow:
    word = row["same_identity"].strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise DatasetError(f"{path}:{line}: same_identity {word!r} is not 1/0 or true/false")
    return PairRow(row["img_a"].strip(), row["img_b"].strip(), word in TRUE_WORDS)


def label_folder(
    root: Path, label_regex: str | None, file_glob: str | None = None
) -> dict[str, str]:
    """Image (relative path) -> subject for every image under the root that has a label
    (and whose file name matches the glob). Images without one are left out and counted by
    the caller (``unlabelled``)."""
    keys = [image.relative_to(root).as_posix() for image in images_under(root)]
    if file_glob is not None:
        keys = [key for key in keys if fnmatch.fnmatch(key.rsplit("/", 1)[-1], file_glob)]
    labelled = subjects_of(keys, label_regex)
    return {key: subject for key, subject in labelled.items() if subject is not None}


def subjects_of(keys: Iterable[str], label_regex: str | None) -> dict[str, str | None]:
    """Subject of each image key: its first folder, or with a regex the first group (or
    the group named ``subject``) matched in the file name; None where there is none."""
    pattern = _label_pattern(label_regex) if label_regex else None
    subjects: dict[str, str | None] = {}
    for key in keys:
        parts = key.split("/")
        if pattern is None:
            subjects[key] = parts[0] if len(parts) > 1 else None
            continue
        match = pattern.search(parts[-1])
        subjects[key] = (match.groupdict().get("subject") or match.group(1)) if match else None
    return subjects


def _label_pattern(label_regex: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(label_regex)
    except re.error as error:
        raise DatasetError(f"label regex {label_regex!r}: {error}") from None
    if not pattern.groups:
        raise DatasetError(
            f"label regex {label_regex!r} has no group: the subject is its first group, "
            "or the group named 'subject', e.g. '^(\\d+)_'"
        )
    return pattern


def images_under(root: Path) -> list[Path]:
    """Image files under the root, sorted; symbolic links to folders are followed."""
    found: list[Path] = []
    for folder, _, names in os.walk(root, followlinks=True):
        found.extend(Path(folder) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found)


def read_groups(path: Path) -> dict[str, str]:
    """The user's CSV ``subject,group`` (header required). BioMatch never infers groups."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"subject", "group"} <= set(reader.fieldnames or ()):
            raise DatasetError(f"{path}: needs the columns subject,group")
        return {row["subject"].strip(): row["group"].strip() for row in reader}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checksum(files: Iterable[Path], root: Path) -> str:
    """SHA-256 over the relative names and bytes of the files, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class Templates:
    """Templates by image key; keys in ``failures`` have none (reason code as value)."""

    model_key: str
    templates: dict[str, bytes] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    gate_passed: dict[str, bool] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # Extraction times of the images extracted in this run (cached ones were not timed).
    run_seconds: list[float] = field(default_factory=list)


@dataclass
class _Extracted:
    template: bytes
    quality: dict[str, float]
    gate_passed: bool


def extract(
    root: Path,
    keys: Iterable[str],
    settings: Settings,
    modality: str,
    *,
    workers: int,
    cache: Path | None = None,
) -> Templates:
    """Templates of the images, without the quality gate (evaluations score every capture
    with a subject; the gate's verdict is kept for the quality-vs-accuracy table)."""
    plugin = load_modality(modality, settings)
    wanted = sorted(set(keys))
    for key in wanted:
        if not (root / key).is_file():
            raise DatasetError(f"{root / key}: no such image")
    digests = {key: file_sha256(root / key) for key in wanted}
    cached = _load_cache(cache, plugin.info.key)
    todo = [k for k in wanted if digests[k] not in cached]
    found = Templates(plugin.info.key)
    results = extract_files(
        [root / k for k in todo], settings, modality, workers=workers, enforce_quality=False
    )
    for key, result in tqdm(
        zip(todo, results, strict=True), total=len(todo), desc="templates", disable=not todo
    ):
        found.run_seconds.append(result.seconds)
        if result.sample is None:
            found.failures[key] = str((result.error or {}).get("code", "unknown"))
            continue
        sample = result.sample
        cached[digests[key]] = _Extracted(
            sample.template, sample.quality_scores(), sample.quality.passed
        )
    for key in wanted:
        if digests[key] in cached:
            entry = cached[digests[key]]
            found.templates[key] = entry.template
            found.quality[key] = entry.quality
            found.gate_passed[key] = entry.gate_passed
    if cache is not None and todo:
        _save_cache(cache, plugin.info.key, cached)
    return found


def scores_of_pairs(
    plugin: Modality, templates: Mapping[str, bytes], pairs: list[tuple[str, str]]
) -> np.ndarray:
    """The modality's score of each pair, -inf where either image has no template; one
    ``compare`` call per first image."""
    scores = np.full(len(pairs), -np.inf)
    by_first: dict[str, list[int]] = {}
    for row, (first, second) in enumerate(pairs):
        if first in templates and second in templates:
            by_first.setdefault(first, []).append(row)
    for first, rows in by_first.items():
        references = [templates[pairs[r][1]] for r in rows]
        scores[rows] = plugin.compare(templates[first], references)
    return scores


def impostor_scores(
    plugin: Modality, templates: Sequence[bytes], subjects: Sequence[str]
) -> np.ndarray:
    """Scores of every pair of images of different subjects, each pair once, through the
    plug-in's ``compare``: one call per image against the block of every later image."""
    subject = np.asarray(subjects)
    chunks = [np.empty(0, dtype=np.float32)]
    for row in range(len(templates) - 1):
        scores = np.asarray(plugin.compare(templates[row], templates[row + 1 :]))
        chunks.append(scores[subject[row + 1 :] != subject[row]].astype(np.float32))
    return np.concatenate(chunks)


def cross_impostor_scores(
    plugin: Modality,
    probes: tuple[Sequence[bytes], Sequence[str]],
    references: tuple[Sequence[bytes], Sequence[str]],
) -> np.ndarray:
    """Scores of every (probe, reference) pair of different subjects: one ``compare`` per
    probe against every reference. Each side is (templates, subjects)."""
    reference_subjects = np.asarray(references[1])
    chunks = [np.empty(0, dtype=np.float32)]
    for template, subject in zip(*probes, strict=True):
        scores = np.asarray(plugin.compare(template, references[0]), dtype=np.float32)
        chunks.append(scores[reference_subjects != subject])
    return np.concatenate(chunks)


def search_scores(
    plugin: Modality,
    templates: Mapping[str, bytes],
    probes: Sequence[str],
    enrolled: Sequence[str],
    settings: Settings,
    *,
    depth: int,
    gallery_sizes: Iterable[int] = (),
) -> np.ndarray:
    """Each probe's scores against the enrolled entries (one per subject) as the service's
    1:N search finds them (``core/search.py``): the index of the plug-in's index vectors
    (``create_index``, ``settings.index``) shortlists ``max(depth,
    plugin.shortlist_subjects) + 1`` subjects (``search_subjects``; one more than the
    service's width, so that a search with the mate left out still has its whole
    shortlist), and the plug-in's ``compare`` re-scores the shortlist. Entries outside it
    score -inf: the service never returns them. ``gallery_sizes``: the first n entries are
    searched as galleries of their own too, each through its own index (distractor
    expansion)."""
    scores = np.full((len(probes), len(enrolled)), -np.inf, dtype=np.float32)
    if not len(probes) or not len(enrolled):
        return scores
    width = max(depth, plugin.shortlist_subjects) + 1
    vectors = np.stack([plugin.index_vector(templates[k]) for k in enrolled]).astype(np.float32)
    probe_vectors = [plugin.index_vector(templates[k]) for k in probes]
    shortlists: list[set[int]] = [set() for _ in probes]
    for size in sorted({len(enrolled), *(n for n in gallery_sizes if 0 < n < len(enrolled))}):
        index = create_index(plugin.info.dimensions, settings.index)
        index.add(np.arange(size, dtype=np.int64), vectors[:size])
        subject_of = {row: row for row in range(size)}
        for row, vector in enumerate(probe_vectors):
            hits = search_subjects(index, subject_of, vector, width)
            shortlists[row].update(subject for subject, _ in hits)
    references = [templates[k] for k in enrolled]
    for row, probe in enumerate(probes):
        columns = sorted(shortlists[row])
        scores[row, columns] = plugin.compare(templates[probe], [references[c] for c in columns])
    return scores


@dataclass
class ClosedSetSplit:
    """Image keys of a closed-set 1:N run; ``mates[i]`` indexes the gallery entry of probe i."""

    gallery: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    mates: list[int] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)
    missed: int = 0  # searches whose probe failed to enrol: misses at every rank
    subjects_not_enrolled: int = 0  # subjects with 2+ images none of which enrolled

    @property
    def enrolled(self) -> list[str]:
        """The gallery with the distractors added."""
        return self.gallery + self.distractors


def closed_set_split(by_subject: Mapping[str, list[str]], usable: Container[str]) -> ClosedSetSplit:
    """The one closed-set protocol: each subject with 2+ images enrols its first usable one
    and searches with every other; subjects with one image are the distractors."""
    split = ClosedSetSplit()
    for keys in by_subject.values():
        enrolled = [k for k in keys if k in usable]
        if len(keys) < 2:
            split.distractors.extend(enrolled)
            continue
        if not enrolled:
            split.subjects_not_enrolled += 1
            split.missed += len(keys) - 1
            continue
        split.gallery.append(enrolled[0])
        for key in keys:
            if key == enrolled[0]:
                continue
            if key in usable:
                split.probes.append(key)
                split.mates.append(len(split.gallery) - 1)
            else:
                split.missed += 1
    return split


def _load_cache(path: Path | None, model_key: str) -> dict[str, _Extracted]:
    """Cached templates by the SHA-256 of the image's bytes, so one cache file can serve
    several folders (and a changed image is extracted again). Failures are not cached."""
    if path is None or not path.exists():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}  # not this cache's format (an older cache file): extracted again
    if data.get("model_key") != model_key or data.get("keyed_by") != "sha256":
        return {}
    return {
        digest: _Extracted(base64.b64decode(entry["template"]), entry["quality"], entry["gate"])
        for digest, entry in data["images"].items()
    }


def _save_cache(path: Path, model_key: str, cached: dict[str, _Extracted]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = {
        digest: {
            "template": base64.b64encode(entry.template).decode(),
            "quality": entry.quality,
            "gate": entry.gate_passed,
        }
        for digest, entry in cached.items()
    }
    data = {"model_key": model_key, "keyed_by": "sha256", "images": images}
    path.write_text(json.dumps(data))
