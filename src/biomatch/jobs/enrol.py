"""Bulk enrolment as a job: images extracted in chunks of subjects (here or on Ray), each
subject enrolled by this process as its chunk comes back. Resumable: subjects the gallery
already holds are skipped, so a job started again after an interruption enrols only the rest.
On a Ray cluster the folder must be readable at the same path on every node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomatch.batch import extract_path
from biomatch.config import Settings
from biomatch.extraction import ExtractedSample
from biomatch.modalities import Modality, load_modality

# One subject's images: (subject id, [image path, ...]); a chunk is a list of them.
SubjectImages = tuple[str, list[str]]
# Per image of a subject: (path, sample or None, error or None).
Extracted = tuple[str, ExtractedSample | None, dict[str, Any] | None]


@dataclass(frozen=True)
class ExtractContext:
    modality: str
    settings: Settings
    primary_only: bool


_plugins: dict[str, Modality] = {}


def extract_chunk(
    context: ExtractContext, chunk: list[SubjectImages]
) -> list[tuple[str, list[Extracted]]]:
    """Each subject's images through the same extraction as ``enrol-bulk``'s workers."""
    if context.modality not in _plugins:
        _plugins[context.modality] = load_modality(context.modality, context.settings)
    plugin = _plugins[context.modality]
    results = []
    for subject, paths in chunk:
        extracted: list[Extracted] = []
        for path in paths:
            sample, error = extract_path(
                Path(path), plugin, context.settings,
                primary_only=context.primary_only, keep_image=True,
            )  # fmt: skip
            extracted.append((path, sample, error))
        results.append((subject, extracted))
    return results


def subject_chunks(
    by_subject: dict[str, list[Path]], skip: set[str], subjects_per_chunk: int
) -> list[tuple[int, list[SubjectImages]]]:
    """Numbered chunks of the subjects not in ``skip``, in folder order."""
    todo = [
        (name, [str(p) for p in paths]) for name, paths in by_subject.items() if name not in skip
    ]
    return [
        (number, todo[start : start + subjects_per_chunk])
        for number, start in enumerate(range(0, len(todo), subjects_per_chunk))
    ]


# progress(images done, images in all)
Progress = Callable[[int, int], None]
