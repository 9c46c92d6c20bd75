"""The one search path with plug-ins it does not know: a probe of another capture kind of
the contact finger family searches a contact gallery; a second face model runs beside the
first during an upgrade of the kept reference images; reference and probe images are kept,
encrypted, by policy and shown to reviewers. FVC2002 DB1_B and the matplotlib photo."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.config import FaceConfig, Settings
from biomatch.errors import Forbidden, ImageNotKept, NoReference
from biomatch.modalities import Capture, load_modality, register_plugin, unregister_plugin
from biomatch.modalities.finger import FingerModality
from biomatch.modalities.sface import SFaceModality
from biomatch.results import SearchContext
from biomatch.service import BioMatch, ProbeItem
from tests.conftest import (
    OPEN_POLICY,
    SEARCH,
    SHARED,
    ReadExample,
    needs_dlib,
    settings_for_tests,
    shared_file,
)

CONTEXT = SearchContext(**SEARCH)
ENROLLER = Principal(1, "eve", Role.ENROLLER)
FIELD = Principal(2, "fay", Role.FIELD_OPERATOR)
REVIEWER = Principal(3, "rui", Role.REVIEWER)
ADMIN = Principal(4, "ada", Role.ADMIN)
FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"


def impression(name: str) -> bytes:
    return shared_file(FVC2002 / f"{name}.tif").read_bytes()


class StandInContactless(FingerModality):
    """Another capture kind of the contact finger family, under its own model key: it
    counts its captures, so a test can tell that it, not the contact plug-in, ran."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.finger)
        self.info = replace(self.info, model_id="standin-cl", capture_kind="contactless")
        self.captures = 0

    @property
    def calibration(self) -> Any:
        # A real contactless plug-in measures its own on contactless-to-contact pairs.
        return FingerModality(Settings().finger).calibration

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        self.captures += 1
        return super().analyse(image, primary_only=primary_only, stop_at_failure=stop_at_failure)


class SecondFaceModel(SFaceModality):
    """A second face model (here SFace's under another key): never mixed with the first."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.face, settings.finger.resolved_model_cache_dir)
        self.info = replace(self.info, model_id="second-model")

    @property
    def calibration(self) -> Any:
        return load_modality("face-sface", Settings()).calibration


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BioMatch]:
    register_plugin("finger-standin", StandInContactless)
    register_plugin("face-second", SecondFaceModel)
    core = BioMatch(settings_for_tests(tmp_path_factory.mktemp("data")))
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    yield core
    core.close()
    unregister_plugin("finger-standin")
    unregister_plugin("face-second")


@pytest.fixture(scope="module")
def contact_gallery(core: BioMatch) -> BioMatch:
    shared_file(FVC2002)
    for finger in (101, 102, 103):
        core.enrol_positions(
            ENROLLER, "g", f"f{finger}", [(2, impression(f"{finger}_1"))], "finger"
        )
    return core


def test_a_probe_of_another_capture_kind_searches_the_contact_gallery(
    contact_gallery: BioMatch,
) -> None:
    core = contact_gallery
    standin = core.modality("finger-standin")
    assert isinstance(standin, StandInContactless)
    before = standin.captures
    item = ProbeItem("finger", impression("102_3"), position=2, plugin="finger-standin")
    found = core.identify_probe(FIELD, "g", [item], CONTEXT, top_k=3)
    assert standin.captures == before + 1
    assert found.models[0].model_id == "standin-cl"
    assert found.candidates[0].subject_id == "f102"
    assert found.gallery_size == 3
    verified = core.verify_probe(FIELD, "g", "f102", [item], CONTEXT)
    assert verified.decision == "match"
    contribution = verified.contributions[0]
    assert contribution.model.startswith("finger/standin-cl@")
    assert verified.comparisons and verified.score_threshold is not None
    wrong = core.verify_probe(FIELD, "g", "f101", [item], CONTEXT)
    assert wrong.decision == "no_match"


def test_face_models_never_mix(contact_gallery: BioMatch, grace_hopper: bytes) -> None:
    core = contact_gallery
    core.enrol(ENROLLER, "g", "hopper", [grace_hopper])
    item = ProbeItem("face", grace_hopper, plugin="face-second")
    with pytest.raises(NoReference):
        core.verify_probe(FIELD, "g", "hopper", [item], CONTEXT)
    assert core.verify(FIELD, "g", "hopper", grace_hopper, CONTEXT).decision == "match"


def test_upgrade_templates_the_kept_images_and_is_resumable(
    core: BioMatch, grace_hopper: bytes
) -> None:
    core.create_gallery(SYSTEM, "up", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    core.enrol(ENROLLER, "up", "kept", [grace_hopper])
    no_images = GalleryPolicy.model_validate({**OPEN_POLICY, "keep_reference_images": False})
    core.create_gallery(SYSTEM, "bare", policy=no_images)
    core.enrol(ENROLLER, "bare", "hash-only", [grace_hopper])
    with pytest.raises(Forbidden):
        core.upgrade_templates(ENROLLER, "up", "face-second")
    steps: list[tuple[int, int]] = []
    first = core.upgrade_templates(ADMIN, "up", "face-second", progress=lambda *s: steps.append(s))
    assert (first.templated, first.already_templated, first.needs_recapture) == (1, 0, [])
    assert steps == [(1, 1)]
    again = core.upgrade_templates(ADMIN, "up", "face-second")
    assert (again.templated, again.already_templated) == (0, 1)
    subject = core.get_subject(REVIEWER, "up", "kept")
    assert sorted(subject.samples[0].models) == sorted(
        [core.modality("face").info.key, core.modality("face-second").info.key]
    )
    item = ProbeItem("face", grace_hopper, plugin="face-second")
    assert core.verify_probe(FIELD, "up", "kept", [item], CONTEXT).decision == "match"
    bare = core.upgrade_templates(ADMIN, "bare", "face-second")
    assert bare.needs_recapture == ["hash-only"] and bare.templated == 0


def test_reference_and_probe_images_are_kept_by_policy(core: BioMatch, grace_hopper: bytes) -> None:
    keeps = GalleryPolicy.model_validate({**OPEN_POLICY, "probe_retention_hours": 1})
    core.create_gallery(SYSTEM, "kept", policy=keeps)
    enrolled = core.enrol(ENROLLER, "kept", "p", [grace_hopper])
    sample = enrolled.samples[0]
    assert sample.image_kept
    assert core.reference_image(REVIEWER, "kept", "p", sample.sample_id) == grace_hopper
    with pytest.raises(Forbidden):
        core.reference_image(FIELD, "kept", "p", sample.sample_id)
    found = core.identify(FIELD, "kept", grace_hopper, CONTEXT)
    assert core.probe_image(REVIEWER, found.encounter_id, 1) == grace_hopper
    with pytest.raises(ImageNotKept):
        core.probe_image(REVIEWER, found.encounter_id, 2)
    core.erase_subject(ADMIN, "kept", "p")
    core.enrol(ENROLLER, "kept", "p2", [grace_hopper])
    with pytest.raises(Exception, match="no subject"):
        core.reference_image(REVIEWER, "kept", "p", sample.sample_id)


def test_a_command_that_needs_no_model_loads_none(tmp_path: Any) -> None:
    core = BioMatch(settings_for_tests(tmp_path))
    core.verify_audit(Principal(None, "a", Role.AUDITOR))
    assert core._plugins == {}
    core.close()


@needs_dlib
def test_a_dlib_gallery_keeps_working_and_upgrades_to_the_default_model(
    tmp_path: Path, example: ReadExample
) -> None:
    """A gallery templated with dlib (the former default) is searched with dlib after the
    default became SFace, and `templates upgrade` moves it to SFace from its kept images."""
    obama, obama2, biden = example("obama.jpg"), example("obama2.jpg"), example("biden.jpg")
    before = settings_for_tests(tmp_path)
    before.face = FaceConfig(model="dlib")
    old = BioMatch(before)
    old.create_gallery(SYSTEM, "old", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    old.enrol(ENROLLER, "old", "obama", [obama])
    old.enrol(ENROLLER, "old", "biden", [biden])
    dlib_key = old.modality("face").info.key
    old.close()

    core = BioMatch(settings_for_tests(tmp_path))  # the default face model: SFace
    sface_key = core.modality("face").info.key
    assert sface_key.startswith("face/sface") and dlib_key.startswith("face/dlib")
    verified = core.verify(FIELD, "old", "obama", obama2, CONTEXT)
    assert verified.decision == "match" and verified.contributions[0].model == dlib_key
    upgraded = core.upgrade_templates(ADMIN, "old", "face")
    assert (upgraded.templated, upgraded.needs_recapture) == (2, [])
    assert sorted(core.get_subject(REVIEWER, "old", "biden").samples[0].models) == sorted(
        [dlib_key, sface_key]
    )
    verified = core.verify(FIELD, "old", "obama", obama2, CONTEXT)
    assert verified.decision == "match" and verified.contributions[0].model == sface_key
    found = core.identify(FIELD, "old", obama2, CONTEXT, top_k=2)
    assert found.candidates[0].subject_id == "obama"
    assert core.verify(FIELD, "old", "biden", obama2, CONTEXT).decision == "no_match"
    core.close()


def test_the_fmr_of_a_subject_counts_its_templates(core: BioMatch) -> None:
    """An impostor enrolled with k templates has k chances to score high: the subject's
    estimated FMR is its best score's times the templates compared, and verification needs
    the score whose FMR is target / k."""
    shared_file(FVC2002)
    core.create_gallery(SYSTEM, "k", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    enrolled = [(2, impression(f"104_{n}")) for n in (1, 2, 4)]
    core.enrol_positions(ENROLLER, "k", "three", enrolled, "finger")
    core.enrol_positions(ENROLLER, "k", "one", [(2, impression("104_5"))], "finger")
    item = ProbeItem("finger", impression("104_3"), position=2)
    calibration = core.modality("finger").calibration
    target = core.settings.verify_target_fmr
    for subject, templates in (("three", 3), ("one", 1)):
        verified = core.verify_probe(FIELD, "k", subject, [item], CONTEXT)
        assert len(verified.comparisons) == templates
        assert verified.contributions[0].comparisons == templates
        best = max(comparison.score for comparison in verified.comparisons)
        single = calibration.estimate(best)
        assert verified.estimated_fmr == pytest.approx(min(1.0, templates * single.value))
        assert verified.fmr_is_upper_bound == single.is_upper_bound
        assert verified.score_threshold == pytest.approx(
            calibration.threshold_for(target / templates), abs=1e-6
        )
    found = core.identify_probe(FIELD, "k", [item], CONTEXT, top_k=2)
    by_subject = {candidate.subject_id: candidate for candidate in found.candidates}
    assert by_subject["three"].estimated_fmr == pytest.approx(
        min(1.0, 3 * calibration.estimate(by_subject["three"].score or 0.0).value)
    )
    # The identify target, 1e-4, is resolved by the calibration for one template, not for
    # three (1e-4 / 3 is below 1 / its impostor count): no score makes "three" strong.
    identify_target = core.settings.identify_target_fmr
    assert 3 * identify_target > 1 / calibration.n_impostor > identify_target / 3
    assert by_subject["one"].score_threshold == pytest.approx(
        calibration.threshold_for(identify_target), abs=1e-6
    )
    assert by_subject["three"].score_threshold is None and not by_subject["three"].strong
