"""The same core on PostgreSQL (chosen by BIOMATCH_DATABASE_URL), where one is reachable.

Set BIOMATCH_TEST_POSTGRES to another URL to point this test elsewhere. Each run works in a
schema of its own and drops it afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM
from biomatch.accountability.roles import Role
from biomatch.results import SearchContext
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, settings_for_tests


def test_core_runs_on_postgresql(postgres_url: str, tmp_path: Path, grace_hopper: bytes) -> None:
    settings = settings_for_tests(tmp_path).model_copy(update={"database_url": postgres_url})
    core = BioMatch(settings)
    enroller = core.authenticate(core.create_operator(SYSTEM, "eve", Role.ENROLLER).token)
    field = core.authenticate(core.create_operator(SYSTEM, "fay", Role.FIELD_OPERATOR).token)
    core.create_gallery(SYSTEM, "pg", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    core.enrol(enroller, "pg", "hopper", [grace_hopper])
    context = SearchContext(purpose="identity_check", legal_authority="Identity Checks Act s.4")
    found = core.identify(field, "pg", grace_hopper, context)
    assert found.candidates[0].subject_id == "hopper"
    core.close()
    reopened = BioMatch(settings)  # the index is rebuilt from PostgreSQL
    again = reopened.identify(field, "pg", grace_hopper, context)
    assert again.candidates[0].score == pytest.approx(found.candidates[0].score)
    report = reopened.verify_audit(SYSTEM.__class__(None, "a", Role.AUDITOR))
    assert report.intact and report.entries == 6
    reopened.close()
