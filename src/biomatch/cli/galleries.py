"""Galleries: create and list."""

from __future__ import annotations

from typing import Annotated

import typer

from biomatch.cli.common import DataDir, Token, print_result, reports_errors, session

gallery_app = typer.Typer(help="Create and list galleries.", no_args_is_help=True)


@gallery_app.command("create")
@reports_errors
def gallery_create(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    preset: Annotated[str | None, typer.Option(help="travellers or investigations")] = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Create a gallery with a policy (default: 1:1 only)."""
    core, actor = session(data_dir, token)
    print_result(core.create_gallery(actor, name, description, preset=preset))


@gallery_app.command("list")
@reports_errors
def gallery_list(token: Token = None, data_dir: DataDir = None) -> None:
    """List galleries with their subject counts and policies."""
    core, actor = session(data_dir, token)
    print_result(core.list_galleries(actor))
