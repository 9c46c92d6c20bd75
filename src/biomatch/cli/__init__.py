"""The ``biomatch`` command: a thin layer over the core API (``biomatch.service``).

One module per area; this one builds ``app`` and registers their commands, in the order
``biomatch --help`` lists them.
"""

from __future__ import annotations

import typer

from biomatch.cli import capture, enrolment, evaluation, jobs, oversight, search, serve
from biomatch.cli.common import reports_errors
from biomatch.cli.enrolment import templates_app
from biomatch.cli.evaluation import eval_app
from biomatch.cli.galleries import gallery_app
from biomatch.cli.indexes import index_app
from biomatch.cli.operators import operator_app
from biomatch.cli.oversight import audit_app, encounter_app, keys_app
from biomatch.cli.serve import db_app, tls_app
from biomatch.cli.subjects import subject_app

app = typer.Typer(
    help="BioMatch: accountable face verification and identification.", no_args_is_help=True
)

app.command()(serve.serve)
app.command()(enrolment.enrol)
app.command("enrol-bulk")(enrolment.enrol_bulk)
app.command()(jobs.dedup)
app.command()(search.verify)
app.command()(search.identify)
app.command("quality-check")(capture.quality_check)
app.command("retention")(oversight.retention)
app.command()(evaluation.calibrate)
app.command("calibrate-finger")(evaluation.calibrate_finger)
app.command("calibrate-contactless")(evaluation.calibrate_contactless)

app.add_typer(gallery_app, name="gallery")
app.add_typer(subject_app, name="subject")
app.add_typer(eval_app, name="eval")
app.add_typer(operator_app, name="operator")
app.add_typer(encounter_app, name="encounter")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(templates_app, name="templates")
app.add_typer(tls_app, name="tls")
app.add_typer(index_app, name="index")

__all__ = ["app", "reports_errors"]
