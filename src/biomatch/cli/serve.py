"""The HTTP service and the database schema: migrations run once, before any worker starts."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from biomatch.cli.common import DataDir, console, reports_errors, settings_for
from biomatch.config import Settings

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes, each with its models and index (one a core).")
    ] = 1,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import uvicorn

    if data_dir is not None:
        os.environ["BIOMATCH_DATA_DIR"] = str(data_dir)  # read by every worker's Settings()
    migrate(settings_for(data_dir))  # once, before the workers start: they only check
    uvicorn.run("biomatch.api.app:create_app", factory=True, host=host, port=port, workers=workers)


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest migration (creating the data directory first)."""
    from biomatch.store import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
    finally:
        database.dispose()


def shown_url(url: str) -> str:
    """The database URL with any password masked, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
@reports_errors
def db_upgrade(data_dir: DataDir = None) -> None:
    """Bring the database schema to the newest migration (serve does this at start)."""
    settings = settings_for(data_dir)
    migrate(settings)
    url = shown_url(settings.resolved_database_url)
    message = f"database at the newest schema: {url}"
    console.print(message, highlight=False, markup=False, soft_wrap=True)  # one line, unwrapped
