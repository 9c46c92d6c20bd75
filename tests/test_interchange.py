"""ISO/IEC 19794-2 through the core: export a subject, import a record made elsewhere and
find it by a live capture (FVC2002 DB1_B from ../shared/data, skipped where absent)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.errors import InvalidTemplate
from biomatch.modalities.finger import iso19794
from biomatch.modalities.finger.template import FingerTemplate
from biomatch.results import SearchContext
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, SEARCH, SHARED, settings_for_tests, shared_file

CONTEXT = SearchContext(**SEARCH)
ENROLLER = Principal(1, "eve", Role.ENROLLER)
FIELD = Principal(2, "fay", Role.FIELD_OPERATOR)

FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"


def image(name: str) -> bytes:
    return shared_file(FVC2002 / f"{name}.tif").read_bytes()


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> BioMatch:
    shared_file(FVC2002)
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    core = BioMatch(settings, modalities=("finger",))
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    core.enrol_positions(ENROLLER, "g", "decoy", [(1, image("106_1"))], "finger")
    return core


def foreign_record(minutiae: np.ndarray, width: int, height: int) -> bytes:
    """A 2005 record written field by field here, not by the module under test."""
    body = struct.pack(">BBBB", 1, 0, 70, len(minutiae))
    for x, y, theta, kind, quality in minutiae:
        type_bits = {0: 1, 1: 2}.get(int(kind), 0)
        angle = round(np.degrees(theta) / (360 / 256)) % 256
        body += struct.pack(
            ">HHBB", (type_bits << 14) | round(x), round(y), angle, round(quality * 100)
        )
    body += b"\x00\x00"
    header = struct.pack(">HHHHHBB", 0, width, height, 197, 197, 1, 0)
    return b"FMR\x00020\x00" + struct.pack(">I", 24 + len(body)) + header + body


def test_an_imported_record_is_found_by_a_live_capture(core: BioMatch) -> None:
    plugin = core.modality("finger")
    sample = core.extract(image("105_1"), "finger")
    template = FingerTemplate.from_bytes(sample.template)
    record = foreign_record(template.minutiae, template.width, template.height)
    core.import_iso19794(ENROLLER, "g", "imported", record)
    result = core.identify(FIELD, "g", image("105_3"), CONTEXT, "finger", top_k=2)
    assert result.candidates[0].subject_id == "imported"
    assert result.candidates[0].estimated_fmr <= core.settings.verify_target_fmr
    assert plugin.info.modality == "finger"


def test_export_then_import_keeps_the_subject_searchable(core: BioMatch) -> None:
    core.enrol_positions(
        ENROLLER, "g", "exported", [(2, image("107_1")), (7, image("108_1"))], "finger"
    )
    for version in ("2005", "2011"):
        record = core.export_iso19794(ENROLLER, "g", "exported", version)
        views = iso19794.decode(record)
        assert [view.finger_position for view in views] == [2, 7]
        core.import_iso19794(ENROLLER, "g", f"copy-{version}", record)
    for probe in ("107_2", "108_2"):
        verdict = core.verify(FIELD, "g", "copy-2011", image(probe), CONTEXT, "finger")
        assert verdict.decision == "match"


def test_a_malformed_record_is_refused(core: BioMatch) -> None:
    with pytest.raises(InvalidTemplate):
        core.import_iso19794(ENROLLER, "g", "broken", b"FMR\x00020\x00\x00\x00\x00\x0c")
