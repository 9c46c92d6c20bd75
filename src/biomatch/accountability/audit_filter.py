"""Which audit entries an auditor asks for: by operator, gallery, action, purpose and date."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement

from biomatch.store.models import AuditEntry


class AuditFilter(BaseModel):
    actor: str | None = Field(None, max_length=64, description="The operator who acted.")
    gallery: str | None = Field(None, max_length=64)
    action: str | None = Field(
        None, max_length=64, description="An action, or a prefix ending in '.' (search.)."
    )
    purpose: str | None = Field(None, max_length=64, description="A search's stated purpose.")
    since: date | None = Field(None, description="From this day (UTC), inclusive.")
    until: date | None = Field(None, description="To this day (UTC), inclusive.")
    before_seq: int | None = Field(None, ge=1, le=2**31 - 1, description="Entries before this one.")

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.actor:
            found.append(AuditEntry.actor == self.actor)
        if self.gallery:
            found.append(AuditEntry.gallery == self.gallery)
        if self.action and self.action.endswith("."):
            found.append(AuditEntry.action.startswith(self.action, autoescape=True))
        elif self.action:
            found.append(AuditEntry.action == self.action)
        if self.purpose:
            found.append(AuditEntry.details["purpose"].as_string() == self.purpose)
        # Entries' times are ISO 8601 in UTC, so a day bound is a string bound.
        if self.since:
            found.append(AuditEntry.at >= self.since.isoformat())
        if self.until:
            found.append(AuditEntry.at < (self.until + timedelta(days=1)).isoformat())
        if self.before_seq:
            found.append(AuditEntry.seq < self.before_seq)
        return found
