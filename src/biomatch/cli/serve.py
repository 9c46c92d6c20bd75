"""The HTTP service and the database schema: migrations run once, before any worker starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from biomatch.cli.common import DataDir, console, fail, reports_errors, settings_for
from biomatch.config import Settings

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
tls_app = typer.Typer(help="TLS certificates for serving HTTPS.", no_args_is_help=True)


@tls_app.command("self-signed")
@reports_errors
def tls_self_signed(
    out_dir: Annotated[Path, typer.Option(help="Where cert.pem and key.pem go.")] = Path(
        "data/tls"
    ),
    host: Annotated[
        list[str] | None,
        typer.Option(help="Host name or IP address the phone will use (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825)] = 30,
) -> None:
    """A development certificate and key (not for production: use a real certificate or a
    TLS-terminating reverse proxy, see README)."""
    from biomatch.tls import write_pair

    hosts = host or ["localhost", "127.0.0.1"]
    cert, key = write_pair(out_dir, hosts, days)
    print(f"wrote {cert} and {key} for {', '.join(hosts)}, valid {days} days")


def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes, each with its models and index (one a core).")
    ] = 1,
    tls_cert: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS, as phones need.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs, the capture app at /app, the review
    console at /console)."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise fail("error [invalid_request]: give --tls-cert and --tls-key together.")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise fail(f"error [file]: {path} is not a file.")
    if data_dir is not None:
        os.environ["BIOMATCH_DATA_DIR"] = str(data_dir)  # read by every worker's Settings()
    prepare(settings_for(data_dir))  # once, before the workers start: they only check
    tls: dict[str, Any] = {}
    if tls_cert and tls_key:
        tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)}
    uvicorn.run(
        "biomatch.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **tls,
    )


def prepare(settings: Settings) -> None:
    """What must happen once per start, not once per worker: the migration, the keys, the
    audit log's upgrade. Workers forked after this find everything in place."""
    from biomatch.service import BioMatch
    from biomatch.store.permissions import key_in_data_dir_warning

    migrate(settings)
    BioMatch(settings).close()
    from_environment = bool(os.environ.get(settings.master_key_env))
    warning = key_in_data_dir_warning(
        settings.resolved_master_key_file, settings.data_dir, from_environment
    )
    if warning:
        console.print(warning, highlight=False, markup=False, soft_wrap=True)


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest migration (creating the data directory first)."""
    from biomatch.store import Database
    from biomatch.store.permissions import secure_data_dir

    secure_data_dir(settings.data_dir, settings.resolved_database_url)
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
