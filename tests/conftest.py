from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FACE_FIXTURES = SHARED / "face" / "fixtures"
EXAMPLES = FACE_FIXTURES / "face_recognition_repo" / "examples"
LFW = SHARED / "face" / "lfw"


def shared_file(path: Path) -> Path:
    """The path, or a skip with a clear message where ../shared/data is absent."""
    if not path.exists():
        pytest.skip(f"needs the evaluation data at {path} (../shared/data); absent here")
    return path


ReadExample = Callable[[str], bytes]


@pytest.fixture
def example() -> ReadExample:
    """example('obama.jpg') -> bytes of a face_recognition example photo."""

    def read(name: str) -> bytes:
        return shared_file(EXAMPLES / name).read_bytes()

    return read


@pytest.fixture
def grace_hopper() -> bytes:
    """A real face photo that matplotlib ships: unit tests need no shared data for it."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        data: bytes = handle.read()
    return data
