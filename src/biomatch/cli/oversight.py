"""Oversight: encounters and their adjudication, the audit log, retention, encryption keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from biomatch.cli.common import (
    DataDir,
    Token,
    console,
    core_for,
    fail,
    local_auditor,
    print_result,
    reports_errors,
    session,
)

encounter_app = typer.Typer(help="Searches and their adjudication.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)


@encounter_app.command("list")
@reports_errors
def encounter_list(
    limit: Annotated[int, typer.Option(min=1)] = 20, token: Token = None, data_dir: DataDir = None
) -> None:
    """Recent searches visible to you."""
    core, actor = session(data_dir, token)
    print_result(core.list_encounters(actor, limit))


@encounter_app.command("adjudicate")
@reports_errors
def encounter_adjudicate(
    encounter_id: str,
    subject_id: str,
    decision: Annotated[str, typer.Option(help="confirm, reject or inconclusive")],
    reason: Annotated[str, typer.Option(help="Why: recorded with the decision.")],
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Record your decision on one candidate of a 1:N search."""
    core, actor = session(data_dir, token)
    print_result(core.adjudicate(actor, encounter_id, subject_id, decision, reason))


@audit_app.command("verify")
@reports_errors
def audit_verify(data_dir: DataDir = None) -> None:
    """Recompute the hash chain and signed checkpoints: exit 0 if intact, 1 naming the first
    broken entry otherwise."""
    from biomatch.accountability.principal import Principal
    from biomatch.accountability.roles import Role

    report = core_for(data_dir).verify_audit(Principal(None, "system", Role.AUDITOR))
    print_result(report.as_dict())
    if not report.intact:
        raise fail(f"audit log broken at entry {report.first_broken_seq}: {report.problem}", 1)


@audit_app.command("export")
@reports_errors
def audit_export(
    out: Annotated[Path, typer.Option(help="File to write.")],
    csv_format: Annotated[bool, typer.Option("--csv/--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Export the whole audit log as CSV or JSON."""
    from biomatch.accountability import reports

    entries = core_for(data_dir).audit_entries(local_auditor(), 0, 10**9)
    if csv_format:
        out.write_text(reports.audit_csv(entries))
    else:
        out.write_text(json.dumps([e.model_dump() for e in entries], indent=1) + "\n")
    console.print(f"{len(entries)} entries written to {out}")


@audit_app.command("report")
@reports_errors
def audit_report(
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Transparency report: searches by purpose, gallery, outcome; adjudication; deletions."""
    from biomatch.accountability import reports

    report = core_for(data_dir).transparency_report(local_auditor())
    print_result(report)
    if html is not None:
        html.write_text(reports.transparency_html(report))


@reports_errors
def retention(data_dir: DataDir = None) -> None:
    """Delete expired probes and enrolments now (the service also runs this periodically)."""
    print_result(core_for(data_dir).run_retention())


@keys_app.command("rotate")
@reports_errors
def keys_rotate(
    master: Annotated[bool, typer.Option(help="Also replace the master key file.")] = False,
    data_dir: DataDir = None,
) -> None:
    """New data keys (every template and kept probe re-encrypted; old keys destroyed), and
    with --master a new master key that re-wraps them."""
    from biomatch.accountability.crypto import MasterKey, write_key_file
    from biomatch.accountability.principal import SYSTEM

    core = core_for(data_dir)
    result: dict[str, Any] = {"records_reencrypted": core.rotate_data_keys(SYSTEM)}
    if master:
        new_master, raw = MasterKey.generate()
        path = core.settings.resolved_master_key_file
        staged = path.with_name(path.name + ".new")
        write_key_file(staged, raw)
        result["data_keys_rewrapped"] = core.rotate_master_key(SYSTEM, new_master)
        staged.replace(path)
        result["master_key_id"] = new_master.key_id
    print_result(result)
