"""Who may do what: the one place that decides it. The test suite walks this whole matrix."""

from __future__ import annotations

from enum import StrEnum

from biomatch.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    ENROLLER = "enroller"
    FIELD_OPERATOR = "field_operator"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


class Action(StrEnum):
    GALLERY_CREATE = "gallery.create"
    GALLERY_READ = "gallery.read"
    GALLERY_DELETE = "gallery.delete"
    OPERATOR_MANAGE = "operator.manage"
    SUBJECT_ENROL = "subject.enrol"
    SUBJECT_READ = "subject.read"
    SUBJECT_ERASE = "subject.erase"
    OPTOUT_RECORD = "optout.record"
    SEARCH = "search"
    ENCOUNTER_READ = "encounter.read"
    ADJUDICATE = "encounter.adjudicate"
    AUDIT_READ = "audit.read"
    RETENTION_RUN = "retention.run"
    IMAGE_READ = "image.read"
    TEMPLATES_UPGRADE = "templates.upgrade"
    CAPTURE_CHECK = "capture.check"
    CANDIDATE_IMAGE_READ = "image.candidate.read"


# Separation of duties: those who search do not adjudicate or audit; admins run the system
# but neither search nor adjudicate; auditors only read.
MATRIX: dict[Action, frozenset[Role]] = {
    Action.GALLERY_CREATE: frozenset({Role.ADMIN}),
    Action.GALLERY_READ: frozenset(Role),
    Action.GALLERY_DELETE: frozenset({Role.ADMIN}),
    Action.OPERATOR_MANAGE: frozenset({Role.ADMIN}),
    Action.SUBJECT_ENROL: frozenset({Role.ENROLLER}),
    Action.SUBJECT_READ: frozenset({Role.ENROLLER, Role.REVIEWER, Role.ADMIN}),
    Action.SUBJECT_ERASE: frozenset({Role.ADMIN}),
    Action.OPTOUT_RECORD: frozenset({Role.ENROLLER, Role.ADMIN}),
    Action.SEARCH: frozenset({Role.FIELD_OPERATOR}),
    Action.ENCOUNTER_READ: frozenset({Role.FIELD_OPERATOR, Role.REVIEWER, Role.AUDITOR}),
    Action.ADJUDICATE: frozenset({Role.REVIEWER}),
    Action.AUDIT_READ: frozenset({Role.AUDITOR}),
    Action.RETENTION_RUN: frozenset({Role.ADMIN}),
    # Enrolment and probe images, for the people who compare them with a lead.
    Action.IMAGE_READ: frozenset({Role.REVIEWER}),
    Action.TEMPLATES_UPGRADE: frozenset({Role.ADMIN}),
    # The quality gate alone (no search, nothing stored), for those who capture.
    Action.CAPTURE_CHECK: frozenset({Role.FIELD_OPERATOR, Role.ENROLLER}),
    # A 1:N candidate's reference photo: its reviewers, and the searcher of that encounter.
    Action.CANDIDATE_IMAGE_READ: frozenset({Role.FIELD_OPERATOR, Role.REVIEWER}),
}


def allowed(role: Role, action: Action) -> bool:
    return role in MATRIX[action]


def require(role: Role, action: Action, operator: str) -> None:
    if not allowed(role, action):
        raise Forbidden(
            f"Operator {operator!r} (role {role.value}) may not {action.value}.",
            action=action.value,
            role=role.value,
        )
