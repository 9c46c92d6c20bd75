"""What every command shares: options, the core and its operator, printing, error reporting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from biomatch.config import Settings
from biomatch.errors import BioMatchError

if TYPE_CHECKING:
    from biomatch.accountability.principal import Principal
    from biomatch.results import SearchContext
    from biomatch.service import BioMatch

console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

DataDir = Annotated[
    Path | None, typer.Option(help="Data directory (default: $BIOMATCH_DATA_DIR or ./data).")
]
Token = Annotated[
    str | None,
    typer.Option(envvar="BIOMATCH_TOKEN", help="Your operator API token ($BIOMATCH_TOKEN)."),
]
Purpose = Annotated[str, typer.Option(help="Why this search is made (a configured purpose).")]
Authority = Annotated[str, typer.Option(help="The law, warrant or mandate relied on.")]
CaseRef = Annotated[str | None, typer.Option(help="Case reference, where the gallery needs one.")]
ModalityOption = Annotated[str, typer.Option("--modality", help="face or finger.")]
CaptureOption = Annotated[
    str | None,
    typer.Option(
        help="Finger capture kind: contact (scanner, the default) or contactless (photo)."
    ),
]
LayoutOption = Annotated[
    str | None,
    typer.Option(help="four_finger: a photo of the four fingers of one hand (with --hand)."),
]
HandOption = Annotated[str | None, typer.Option(help="left or right: a four_finger photo's hand.")]
RayOption = Annotated[bool, typer.Option("--ray", help="Run as a Ray job (a local Ray).")]
RayAddress = Annotated[
    str | None, typer.Option(help="Join this Ray cluster ('auto', 'ray://host:10001').")
]
PrimaryFace = Annotated[
    bool,
    typer.Option(help="Use the primary face (nearest the centre) where several are found."),
]


def settings_for(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


def core_for(data_dir: Path | None) -> BioMatch:
    from biomatch.service import BioMatch

    return BioMatch(settings_for(data_dir))


def session(data_dir: Path | None, token: str | None) -> tuple[BioMatch, Principal]:
    """(core, the operator the token belongs to)."""
    core = core_for(data_dir)
    return core, core.authenticate(token)


def local_auditor() -> Principal:
    """Auditing from a shell on the server: shell access to the data directory already
    gives read access to everything the audit commands read."""
    from biomatch.accountability.principal import Principal
    from biomatch.accountability.roles import Role

    return Principal(None, "local-auditor", Role.AUDITOR)


def search_context(purpose: str, authority: str, case_reference: str | None) -> SearchContext:
    from biomatch.results import SearchContext

    return SearchContext(purpose=purpose, legal_authority=authority, case_reference=case_reference)


def print_result(result: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """The result as JSON on stdout."""
    if isinstance(result, BaseModel):
        text = result.model_dump_json(indent=2)
    elif isinstance(result, dict):
        text = json.dumps(result, indent=2)
    else:
        text = json.dumps([item.model_dump(mode="json") for item in result], indent=2)
    sys.stdout.write(text + "\n")


def fail(message: str, code: int = 2) -> typer.Exit:
    """One plain line on stderr; raise what this returns to end the command with ``code``."""
    console.print(message, highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Bad input ends the command with one line on stderr and exit code 2."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BioMatchError as exc:
            raise fail(f"error [{exc.code}]: {exc.message}") from None
        except ValidationError as exc:
            problem = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise fail(f"error [invalid_request]: {problem}") from None
        except OSError as exc:
            raise fail(f"error [file]: {exc}") from None

    return run
