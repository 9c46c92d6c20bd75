"""Extraction of many image files in worker processes (bulk enrolment, evaluations)."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomatch.config import Settings
from biomatch.errors import BioMatchError
from biomatch.extraction import ExtractedSample, extract
from biomatch.modalities import Modality, load_modality


@dataclass(frozen=True)
class FileResult:
    path: Path
    sample: ExtractedSample | None
    error: dict[str, Any] | None
    seconds: float


@dataclass(frozen=True)
class _Job:
    modality: str
    primary_only: bool
    enforce_quality: bool
    keep_image: bool


_worker: tuple[Modality, Settings, _Job] | None = None


def extract_files(
    paths: Iterable[Path],
    settings: Settings,
    modality: str = "face",
    *,
    workers: int = 1,
    primary_only: bool = False,
    enforce_quality: bool = True,
    keep_image: bool = False,
) -> Iterator[FileResult]:
    """Yield one result per file, in input order; failures are results, never exceptions.
    ``keep_image`` hands each image back with its sample (enrolment keeps reference images)."""
    job = _Job(modality, primary_only, enforce_quality, keep_image)
    paths = list(paths)
    if workers <= 1:
        _init_worker(settings, job)
        yield from map(_extract_file, paths)
        return
    # One BLAS thread per worker: the workers already use every core.
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(settings, job)
        ) as pool:
            yield from pool.map(_extract_file, paths, chunksize=8)
    finally:
        if previous is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous


def _init_worker(settings: Settings, job: _Job) -> None:
    global _worker
    _worker = (load_modality(job.modality, settings), settings, job)


def _extract_file(path: Path) -> FileResult:
    assert _worker is not None
    modality, settings, job = _worker
    started = time.perf_counter()
    sample, error = extract_path(
        path,
        modality,
        settings,
        primary_only=job.primary_only,
        enforce_quality=job.enforce_quality,
        keep_image=job.keep_image,
    )
    return FileResult(path, sample, error, time.perf_counter() - started)


def extract_path(
    path: Path,
    modality: Modality,
    settings: Settings,
    *,
    primary_only: bool,
    enforce_quality: bool = True,
    keep_image: bool = False,
) -> tuple[ExtractedSample | None, dict[str, Any] | None]:
    """(sample, None), or (None, the error as its code and message): never an exception."""
    try:
        sample = extract(
            path.read_bytes(),
            modality,
            settings,
            primary_only=primary_only,
            label=path.name,
            enforce_quality=enforce_quality,
            keep_image=keep_image,
        )
        return sample, None
    except BioMatchError as exc:
        return None, exc.to_dict()
    except OSError as exc:
        return None, {"code": "unreadable_file", "message": str(exc)}


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def images_by_subject(folder: Path) -> dict[str, list[Path]]:
    """A bulk-enrolment folder laid out <subject>/<image>: subject -> its images, sorted."""
    return {
        sub.name: sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
    }
