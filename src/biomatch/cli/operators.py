"""Operators and their API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from biomatch.cli.common import DataDir, core_for, print_result, reports_errors
from biomatch.errors import BioMatchError

operator_app = typer.Typer(help="Operators and their API tokens.", no_args_is_help=True)

AdminToken = Annotated[
    str | None,
    typer.Option(
        envvar="BIOMATCH_TOKEN",
        help="An admin's token; without one, acts as the "
        "local system (shell access to the data directory is the root of trust).",
    ),
]


@operator_app.command("create")
@reports_errors
def operator_create(
    name: str,
    role: Annotated[str, typer.Option(help="admin, enroller, field_operator, reviewer, auditor")],
    token: AdminToken = None,
    data_dir: DataDir = None,
) -> None:
    """Create an operator; prints the API token once (only its salted hash is stored)."""
    from biomatch.accountability.principal import SYSTEM
    from biomatch.accountability.roles import Role

    core = core_for(data_dir)
    actor = core.authenticate(token) if token else SYSTEM
    try:
        chosen = Role(role)
    except ValueError:
        raise BioMatchError(f"Unknown role {role!r}.") from None
    print_result(core.create_operator(actor, name, chosen))


@operator_app.command("list")
@reports_errors
def operator_list(data_dir: DataDir = None) -> None:
    """List operators (local system access)."""
    from biomatch.accountability.principal import SYSTEM

    print_result(core_for(data_dir).list_operators(SYSTEM))


@operator_app.command("revoke")
@reports_errors
def operator_revoke(name: str, data_dir: DataDir = None) -> None:
    """Revoke an operator's token (local system access)."""
    from biomatch.accountability.principal import SYSTEM

    print_result(core_for(data_dir).revoke_operator(SYSTEM, name))
