"""The small interface every modality plug-in implements.

The data path for one capture is: ``analyse`` (find the subject, measure quality) ->
quality gate (the caller decides on the report) -> ``make_template`` -> ``compare``.
Templates are opaque bytes to the rest of BioMatch; ``index_vector`` gives the fixed-length
unit vector the 1:N shortlist index searches by inner product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from biomatch.calibration import ScoreCalibration


@dataclass(frozen=True)
class ModelInfo:
    modality: str
    model_id: str
    version: str
    dimensions: int

    @property
    def key(self) -> str:
        """Identifies templates that may be compared with each other."""
        return f"{self.modality}/{self.model_id}@{self.version}"


@dataclass(frozen=True)
class QualityCheck:
    name: str
    score: float
    threshold: str
    passed: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "passed": self.passed,
            "message": self.message,
        }


@dataclass(frozen=True)
class QualityReport:
    checks: tuple[QualityCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[QualityCheck, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def scores(self) -> dict[str, float]:
        return {check.name: round(check.score, 4) for check in self.checks}


@dataclass(frozen=True)
class Capture:
    """What ``analyse`` found in one image: quality, and the subject region if any."""

    quality: QualityReport
    region: tuple[int, int, int, int] | None = None
    subjects_found: int = 0
    # Modality-internal data that ``make_template`` needs (e.g. aligned face chip).
    payload: Any = field(default=None, repr=False, compare=False)

    @property
    def has_subject(self) -> bool:
        return self.payload is not None


@runtime_checkable
class Modality(Protocol):
    info: ModelInfo

    @property
    def calibration(self) -> ScoreCalibration:
        """Maps this model's scores to estimated false match rates."""
        ...

    @property
    def shortlist_subjects(self) -> int:
        """Subjects the 1:N index hands to ``compare`` at least: more where the index
        vector is coarser than the matcher (0: just the requested top-k)."""
        ...

    def analyse(self, image: np.ndarray, *, primary_only: bool = False) -> Capture:
        """Find the subject in an RGB image and measure capture quality."""
        ...

    def make_template(self, capture: Capture) -> bytes:
        """Template of the capture's subject; only for captures with a subject."""
        ...

    def index_vector(self, template: bytes) -> np.ndarray:
        """Unit float32 vector for the 1:N shortlist index (inner-product search)."""
        ...

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        """Similarity scores (higher is more alike) of the probe against each reference."""
        ...
