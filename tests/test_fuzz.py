"""A bounded schemathesis run over every operation of /openapi.json, as every role: no 5xx,
and every response's status, content type, headers and body as the document says.

BIOMATCH_FUZZ_EXAMPLES (default 3) sets the examples per operation and role; the run prints
how many requests it made and how many answered 5xx."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from biomatch.api import create_app
from biomatch.service import BioMatch
from tests.conftest import OPEN_POLICY, ROLES, issue_tokens, settings_for_tests

pytestmark = pytest.mark.store("sqlite")  # the API is the same on either store: fuzz once

EXAMPLES = int(os.environ.get("BIOMATCH_FUZZ_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
HEADERS: dict[str, dict[str, str]] = {}
TALLY: Counter[str] = Counter()

# The document is the app's own; the core behind it is attached by the fixture below.
APP = create_app(settings_for_tests(Path(tempfile.mkdtemp(prefix="biomatch-fuzz-doc-"))))
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BioMatch]:
    """A core with one operator per role and an open gallery ``g``, behind ``APP``."""
    from biomatch.accountability.policy import GalleryPolicy
    from biomatch.accountability.principal import SYSTEM

    core = BioMatch(settings_for_tests(tmp_path_factory.mktemp("fuzz")))
    APP.state.core = core  # the lifespan does this in a served app
    HEADERS.update(issue_tokens(core))
    core.create_gallery(SYSTEM, "g", policy=GalleryPolicy.model_validate(OPEN_POLICY))
    yield core
    print(f"\nfuzz: {sum(TALLY.values())} requests, {TALLY['5xx']} answered 5xx: {dict(TALLY)}")
    core.close()


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_fuzzed_requests_get_documented_answers(served: BioMatch, label: str) -> None:
    """Each generated request is sent as every role and without a token."""
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        for role in (*ROLES, None):
            response = case.call(headers=HEADERS[role] if role else {})
            TALLY["5xx" if response.status_code >= 500 else f"{response.status_code // 100}xx"] += 1
            case.validate_response(response, checks=CHECKS)

    fuzz()
