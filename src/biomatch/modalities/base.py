"""The small interface every modality plug-in implements.

The data path for one capture is: ``analyse`` (find the subject, measure quality) ->
quality gate (the caller decides on the report) -> ``make_template`` -> ``compare``.
Templates are opaque bytes to the rest of BioMatch; ``index_vector`` gives the fixed-length
unit vector the 1:N shortlist index searches by inner product.

A plug-in declares what the core needs to know, so that the core never looks inside a
modality: its comparison family (which templates ``compare`` accepts), its capture kind, how
much a capture's quality counts in fusion, how many items of it one probe may hold, and
where the subject's position (a finger) lives in its template. Plug-ins are found through
the ``biomatch.modalities`` entry-point group (see ``modalities/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    # Templates of one family compare with each other (e.g. contact and contactless finger
    # templates of one minutiae format); "" means the model's own key: it compares only
    # with itself, as face models do.
    family: str = ""
    capture_kind: str = "default"

    @property
    def key(self) -> str:
        """Identifies the model that made a template."""
        return f"{self.modality}/{self.model_id}@{self.version}"

    @property
    def comparison_family(self) -> str:
        return self.family or self.key


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

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        """Find the subject in an RGB image and measure capture quality.

        ``stop_at_failure``: the caller refuses a capture that fails the gate (the service;
        evaluations score every capture), so the plug-in may stop at the first stage that
        fails and skip the costly ones; it then reports the checks it ran and no subject.
        """
        ...

    def make_template(self, capture: Capture) -> bytes:
        """Template of the capture's subject; only for captures with a subject."""
        ...

    def index_vector(self, template: bytes) -> np.ndarray:
        """Unit float32 vector for the 1:N shortlist index (inner-product search)."""
        ...

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        """Similarity scores (higher is more alike) of the probe against each reference:
        templates of any model of this plug-in's comparison family."""
        ...

    @property
    def max_probe_items(self) -> int:
        """How many captures of this modality one probe may hold (a face, four fingers)."""
        ...

    def quality_weight(self, quality: Mapping[str, float]) -> float:
        """Weight in (0, 1] of a capture's evidence in fusion, from its quality scores."""
        ...

    def position_of(self, template: bytes) -> int:
        """The subject position the template is tagged with (a finger code; 0: none)."""
        ...

    def with_position(self, template: bytes, position: int) -> bytes:
        """The template tagged with a position; raises ``InvalidRequest`` for a bad one."""
        ...


@dataclass(frozen=True)
class ImportedTemplate:
    """A template made from an interchange record rather than an image."""

    template: bytes
    width: int
    height: int
    quality: QualityReport
    label: str


@runtime_checkable
class InterchangeFormat(Protocol):
    """A plug-in that reads and writes a standard template record (ISO/IEC 19794-2)."""

    interchange_name: str

    def export_record(self, templates: Sequence[bytes], version: str) -> bytes: ...

    def import_record(self, data: bytes) -> list[ImportedTemplate]: ...


@dataclass(frozen=True)
class CapturePart:
    """One subject cut out of a multi-subject capture (a finger of a four-finger photo)."""

    position: int  # e.g. the ANSI/NIST finger code
    image: np.ndarray  # RGB, what ``analyse`` takes
    region: tuple[int, int, int, int]  # in the capture: left, top, right, bottom


@runtime_checkable
class MultiCapture(Protocol):
    """A plug-in that splits one capture into several (four fingers of one hand)."""

    capture_layouts: tuple[str, ...]

    def split_capture(self, image: np.ndarray, layout: str, hand: str) -> list[CapturePart]:
        """The parts, in position order; raises ``QualityRejected`` (named reasons) where
        the layout's parts are not all found, ``InvalidRequest`` for a bad layout or hand."""
        ...
