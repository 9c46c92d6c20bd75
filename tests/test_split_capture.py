"""A split capture (the four fingers of one photo) whose parts fail the gate one by one: the
failing parts are left out and listed while enough pass, else the capture is refused with
every part's reasons. A stand-in plug-in splits a strip of four FVC2002 DB1_B impressions
(or blank tiles, which fail the contact gate) so the rule is tested apart from photos."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.config import Settings
from biomatch.errors import QualityRejected
from biomatch.imaging import decode_image, encode_png
from biomatch.modalities import CapturePart, register_plugin, unregister_plugin
from biomatch.modalities.finger import FingerModality
from biomatch.results import SearchContext
from biomatch.service import BioMatch, ProbeItem
from tests.conftest import OPEN_POLICY, SEARCH, SHARED, settings_for_tests, shared_file

CONTEXT = SearchContext(**SEARCH)
ENROLLER = Principal(1, "eve", Role.ENROLLER)
FIELD = Principal(2, "fay", Role.FIELD_OPERATOR)
FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"
TILE = (374, 388)  # FVC2002 DB1_B: height, width
POSITIONS = (2, 3, 4, 5)  # right index .. little


class StandInStrip(FingerModality):
    """Splits a ``strip`` capture into four tiles side by side, positions 2-5."""

    capture_layouts = ("strip",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.finger)

    def split_capture(self, image: np.ndarray, layout: str, hand: str) -> list[CapturePart]:
        width = TILE[1]
        return [
            CapturePart(
                position,
                image[:, number * width : (number + 1) * width],
                (number * width, 0, (number + 1) * width, TILE[0]),
            )
            for number, position in enumerate(POSITIONS)
        ]


def strip(*names: str | None) -> ProbeItem:
    """One capture of four tiles: FVC impressions by name, None a blank (failing) tile."""
    tiles = []
    for name in names:
        if name is None:
            tiles.append(np.full(TILE, 200, np.uint8))
            continue
        data = shared_file(FVC2002 / f"{name}.tif").read_bytes()
        tiles.append(decode_image(data, max_bytes=10**7, max_pixels=10**7))
    image = encode_png(np.hstack([tile[..., 0] if tile.ndim == 3 else tile for tile in tiles]))
    return ProbeItem("finger", image, plugin="finger-strip", layout="strip", hand="right")


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BioMatch]:
    shared_file(FVC2002)
    register_plugin("finger-strip", StandInStrip)
    core = BioMatch(settings_for_tests(tmp_path_factory.mktemp("data")))
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    yield core
    core.close()
    unregister_plugin("finger-strip")


@pytest.fixture(scope="module")
def enrolled(core: BioMatch) -> BioMatch:
    for subject, first in (("a", 101), ("b", 105)):
        names = (f"{first}_1", f"{first + 1}_1", f"{first + 2}_1", None)
        out = core.enrol_probe_items(ENROLLER, "g", subject, [strip(*names)])
        assert len(out.samples) == 3
        (blank,) = out.left_out
        assert (blank.passed, blank.position, blank.region) == (
            False,
            5,
            (3 * 388, 0, 4 * 388, 374),
        )
        assert any(not check.passed for check in blank.checks)
    return core


def test_a_search_uses_the_parts_that_pass_and_lists_the_others(enrolled: BioMatch) -> None:
    probe = strip("101_3", "102_3", None, None)
    found = enrolled.identify_probe(FIELD, "g", [probe], CONTEXT, top_k=2)
    assert found.candidates[0].subject_id == "a"
    assert [(q.position, q.passed) for q in found.probe_quality] == [
        (2, True),
        (3, True),
        (4, False),
        (5, False),
    ]
    # The encounter records where each part lay and which were searched (the console draws them).
    recorded = enrolled.get_encounter(FIELD, found.encounter_id).result
    width = TILE[1]
    assert recorded["parts"] == [
        {"position": code, "region": [k * width, 0, (k + 1) * width, TILE[0]], "passed": k < 2}
        for k, code in enumerate(POSITIONS)
    ]
    assert [part["position"] for part in recorded["parts_left_out"]] == [4, 5]
    verified = enrolled.verify_probe(FIELD, "g", "a", [probe], CONTEXT)
    assert verified.decision == "match"
    assert {c.item for c in verified.comparisons} == {1, 2}  # the parts left out: no scores
    assert [q.passed for q in verified.probe_quality] == [True, True, False, False]


def test_too_few_passing_parts_refuse_the_capture_with_each_parts_reasons(
    enrolled: BioMatch,
) -> None:
    with pytest.raises(QualityRejected) as refused:
        enrolled.identify_probe(FIELD, "g", [strip("101_3", None, None, None)], CONTEXT)
    details = refused.value.details
    assert "1 of the capture's 4 parts passed" in refused.value.message
    assert [part["image"] for part in details["parts"]] == ["finger 2", "finger 3", "finger 4"]
    assert details["reasons"] and all(part["reasons"] for part in details["parts"])
    names = [reason["name"] for reason in details["reasons"]]
    assert len(names) == len(set(names))  # each reason once


def test_the_minimum_is_a_setting(core: BioMatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = settings_for_tests(tmp_path_factory.mktemp("data"))
    strict = BioMatch(settings.model_copy(update={"split_capture_min_passed": 4}))
    try:
        strict.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
        with pytest.raises(QualityRejected):
            strict.enrol_probe_items(ENROLLER, "g", "c", [strip("101_1", "102_1", "103_1", None)])
        out = strict.enrol_probe_items(
            ENROLLER, "g", "c", [strip("101_1", "102_1", "103_1", "104_1")]
        )
        assert len(out.samples) == 4 and out.left_out == []
    finally:
        strict.close()
