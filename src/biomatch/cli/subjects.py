"""Enrolled subjects: show, erase, opt-out."""

from __future__ import annotations

from typing import Annotated

import typer

from biomatch.cli.common import DataDir, Token, print_result, reports_errors, session

subject_app = typer.Typer(help="Show and erase enrolled subjects.", no_args_is_help=True)


@subject_app.command("show")
@reports_errors
def subject_show(
    gallery: str, subject_id: str, token: Token = None, data_dir: DataDir = None
) -> None:
    """Show a subject's samples and their quality scores."""
    core, actor = session(data_dir, token)
    print_result(core.get_subject(actor, gallery, subject_id))


@subject_app.command("erase")
@reports_errors
def subject_erase(
    gallery: str,
    subject_id: str,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Erase a subject: every sample, template and index entry; the audit trail remains."""
    core, actor = session(data_dir, token)
    erased = core.erase_subject(actor, gallery, subject_id, reason)
    print_result({"gallery": gallery, "subject_id": subject_id, "samples_erased": erased})


@subject_app.command("opt-out")
@reports_errors
def subject_opt_out(person_ref: str, token: Token = None, data_dir: DataDir = None) -> None:
    """Record an opt-out; erases the person's enrolments in non-enforcement galleries."""
    core, actor = session(data_dir, token)
    erased = core.record_optout(actor, person_ref)
    print_result({"person_ref": person_ref, "enrolments_erased": erased})
