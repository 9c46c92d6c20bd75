"""What auditors take away: the audit log as CSV/JSON and a transparency report."""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.results import AuditEntryOut
from biomatch.store.models import AuditEntry, Encounter, Gallery

DELETION_ACTIONS = (
    "subject.erase",
    "retention.subject_deleted",
    "retention.probe_deleted",
    "optout.record",
)


def audit_csv(entries: list[AuditEntryOut]) -> str:
    buffer = io.StringIO()
    fields = list(AuditEntryOut.model_fields)
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for entry in entries:
        row = entry.model_dump()
        row["details"] = json.dumps(row["details"], sort_keys=True)
        writer.writerow(row)
    return buffer.getvalue()


def transparency(session: Session) -> dict[str, Any]:
    """Searches by purpose, gallery and outcome; adjudication rate; deletions."""
    names: dict[int, str] = {
        gid: name for gid, name in session.execute(select(Gallery.id, Gallery.name))
    }
    encounters = session.scalars(select(Encounter)).all()
    identify = [e for e in encounters if e.kind == "identify"]
    adjudicated = [e for e in identify if e.adjudications]
    deletions = Counter(
        session.scalars(select(AuditEntry.action).where(AuditEntry.action.in_(DELETION_ACTIONS)))
    )
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "searches": len(encounters),
        "searches_by_kind": dict(Counter(e.kind for e in encounters)),
        "searches_by_purpose": dict(Counter(e.purpose for e in encounters)),
        "searches_by_gallery": dict(Counter(names.get(e.gallery_id, "?") for e in encounters)),
        "outcomes": dict(Counter(_outcome(e) for e in encounters)),
        "identify_searches": len(identify),
        "identify_adjudicated": len(adjudicated),
        "adjudication_rate": len(adjudicated) / len(identify) if identify else None,
        "adjudication_decisions": dict(
            Counter(a.decision for e in identify for a in e.adjudications)
        ),
        "deletions": dict(deletions),
    }


def _outcome(encounter: Encounter) -> str:
    if encounter.kind == "verify":
        return f"verify:{encounter.result.get('decision')}"
    strong = any(c.get("strong") for c in encounter.result.get("candidates", []))
    return "identify:strong_candidate" if strong else "identify:no_strong_candidate"


def transparency_html(report: dict[str, Any]) -> str:
    sections = []
    for key, value in report.items():
        if isinstance(value, dict):
            rows = (
                "".join(
                    f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                    for k, v in sorted(value.items())
                )
                or "<tr><td colspan=2>none</td></tr>"
            )
            sections.append(f"<h2>{html.escape(key)}</h2><table>{rows}</table>")
        else:
            sections.append(f"<p><b>{html.escape(key)}</b>: {html.escape(str(value))}</p>")
    style = "body{font-family:sans-serif;margin:2em}td{border:1px solid #ccc;padding:4px 8px}"
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>BioMatch transparency report"
        f"</title><style>{style}</style></head><body><h1>BioMatch transparency report</h1>"
        + "".join(sections)
        + "</body></html>"
    )
