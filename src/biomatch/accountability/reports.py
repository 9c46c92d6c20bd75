"""What auditors take away: the audit log as CSV/JSON and a transparency report."""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from collections.abc import Callable
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


# The report page's one inline style (the service's CSP allows it by its hash).
TRANSPARENCY_STYLE = (
    "body{font-family:sans-serif;margin:2em}td{border:1px solid #ccc;padding:4px 8px}"
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
    """Searches by purpose, gallery, day and outcome; adjudication rate and delay; deletions
    by rule. Searches of training galleries are counted apart and nowhere else."""
    galleries = session.execute(select(Gallery.id, Gallery.name, Gallery.policy)).all()
    names: dict[int, str] = {gid: name for gid, name, _ in galleries}
    training_ids = {gid for gid, _, policy in galleries if policy.get("training")}
    everything = session.scalars(select(Encounter)).all()
    encounters = [e for e in everything if e.gallery_id not in training_ids]
    identify = [e for e in encounters if e.kind == "identify"]
    adjudicated = [e for e in identify if e.adjudications]
    deletions = session.execute(
        select(AuditEntry.action, AuditEntry.details).where(AuditEntry.action.in_(DELETION_ACTIONS))
    ).all()
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "searches": len(encounters),
        "training_searches_excluded": len(everything) - len(encounters),
        "searches_by_kind": dict(Counter(e.kind for e in encounters)),
        "searches_by_purpose": dict(Counter(e.purpose for e in encounters)),
        "searches_by_gallery": dict(Counter(names.get(e.gallery_id, "?") for e in encounters)),
        "searches_per_day_by_purpose": _per_day(encounters, lambda e: e.purpose),
        "searches_per_day_by_gallery": _per_day(encounters, lambda e: names.get(e.gallery_id, "?")),
        "outcomes": dict(Counter(_outcome(e) for e in encounters)),
        "identify_searches": len(identify),
        "identify_adjudicated": len(adjudicated),
        "adjudication_rate": len(adjudicated) / len(identify) if identify else None,
        "adjudication_decisions": dict(
            Counter(a.decision for e in identify for a in e.adjudications)
        ),
        "adjudication_delay_hours": _delays(adjudicated),
        "deletions": dict(Counter(action for action, _ in deletions)),
        "deletions_by_rule": dict(Counter(_rule(action, d) for action, d in deletions)),
    }


def _per_day(encounters: list[Encounter], key: Callable[[Encounter], str]) -> dict[str, Any]:
    days: dict[str, Counter[str]] = {}
    for encounter in encounters:
        day = encounter.started_at.date().isoformat()
        days.setdefault(day, Counter())[key(encounter)] += 1
    return {day: dict(counts) for day, counts in sorted(days.items())}


def _delays(adjudicated: list[Encounter]) -> dict[str, float] | None:
    """Hours from each 1:N search to its first adjudication: median and longest."""
    hours = sorted(
        (_aware(min(a.created_at for a in e.adjudications)) - _aware(e.ended_at)).total_seconds()
        / 3600
        for e in adjudicated
    )
    if not hours:
        return None
    middle = len(hours) // 2
    median = hours[middle] if len(hours) % 2 else (hours[middle - 1] + hours[middle]) / 2
    return {"median": round(median, 4), "max": round(hours[-1], 4)}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rule(action: str, details: dict[str, Any]) -> str:
    """The rule a deletion followed: a retention setting, an erasure request, an opt-out."""
    rule = details.get("rule")
    return str(rule).split("=")[0] if rule else action


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
    style = TRANSPARENCY_STYLE
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>BioMatch transparency report"
        f"</title><style>{style}</style></head><body><h1>BioMatch transparency report</h1>"
        + "".join(sections)
        + "</body></html>"
    )
