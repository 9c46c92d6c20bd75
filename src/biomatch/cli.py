"""The ``biomatch`` command: a thin layer over the core API (``biomatch.service``)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from biomatch.batch import extract_files
from biomatch.config import Settings
from biomatch.errors import BioMatchError

app = typer.Typer(
    help="BioMatch: accountable face verification and identification.", no_args_is_help=True
)
gallery_app = typer.Typer(help="Create and list galleries.", no_args_is_help=True)
subject_app = typer.Typer(help="Show and erase enrolled subjects.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
operator_app = typer.Typer(help="Operators and their API tokens.", no_args_is_help=True)
encounter_app = typer.Typer(help="Searches and their adjudication.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
templates_app = typer.Typer(help="Templates of kept reference images.", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")
app.add_typer(subject_app, name="subject")
app.add_typer(eval_app, name="eval")
app.add_typer(operator_app, name="operator")
app.add_typer(encounter_app, name="encounter")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(templates_app, name="templates")

console = Console(stderr=True)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

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


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


def _core(data_dir: Path | None) -> Any:
    from biomatch.service import BioMatch

    return BioMatch(_settings(data_dir))


def _local_auditor() -> Any:
    """Auditing from a shell on the server: shell access to the data directory already
    gives read access to everything the audit commands read."""
    from biomatch.accountability.principal import Principal
    from biomatch.accountability.roles import Role

    return Principal(None, "local-auditor", Role.AUDITOR)


def _session(data_dir: Path | None, token: str | None) -> tuple[Any, Any]:
    """(core, the operator the token belongs to)."""
    core = _core(data_dir)
    return core, core.authenticate(token)


def _context(purpose: str, authority: str, case_reference: str | None) -> Any:
    from biomatch.results import SearchContext

    return SearchContext(purpose=purpose, legal_authority=authority, case_reference=case_reference)


def _print(result: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(result, BaseModel):
        text = result.model_dump_json(indent=2)
    elif isinstance(result, list):
        text = json.dumps([item.model_dump(mode="json") for item in result], indent=2)
    else:
        text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Bad input ends the command with one line on stderr and exit code 2."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BioMatchError as exc:
            console.print(f"error [{exc.code}]: {exc.message}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        except ValidationError as exc:
            problem = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            console.print(f"error [invalid_request]: {problem}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        except OSError as exc:
            console.print(f"error [file]: {exc}", highlight=False, markup=False)
            raise typer.Exit(2) from None

    return run


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes, each with its models and index (one a core).")
    ] = 1,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import os

    import uvicorn

    if data_dir is not None:
        os.environ["BIOMATCH_DATA_DIR"] = str(data_dir)  # read by every worker's Settings()
    _migrate(_settings(data_dir))  # once, before the workers start: they only check
    uvicorn.run("biomatch.api.app:create_app", factory=True, host=host, port=port, workers=workers)


def _migrate(settings: Settings) -> None:
    from biomatch.store import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
    finally:
        database.dispose()


@db_app.command("upgrade")
@reports_errors
def db_upgrade(data_dir: DataDir = None) -> None:
    """Bring the database schema to the newest migration (serve does this at start)."""
    settings = _settings(data_dir)
    _migrate(settings)
    console.print(f"database at the newest schema: {settings.resolved_database_url}")


@templates_app.command("upgrade")
@reports_errors
def templates_upgrade(
    gallery: str,
    model: Annotated[str, typer.Option(help="Plug-in name or model key to template with.")],
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Template the gallery's kept reference images with another model (resumable)."""
    core, actor = _session(data_dir, token)
    with tqdm(desc=f"templating {gallery}", unit="sample", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = core.upgrade_templates(actor, gallery, model, progress=progress)
    _print(result)


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
    core, actor = _session(data_dir, token)
    _print(core.create_gallery(actor, name, description, preset=preset))


@gallery_app.command("list")
@reports_errors
def gallery_list(token: Token = None, data_dir: DataDir = None) -> None:
    """List galleries with their subject counts and policies."""
    core, actor = _session(data_dir, token)
    _print(core.list_galleries(actor))


@app.command()
@reports_errors
def enrol(
    gallery: str,
    subject_id: str,
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    modality: ModalityOption = "face",
    primary_face: Annotated[
        bool,
        typer.Option(help="Use the primary face (nearest the centre) where several are found."),
    ] = False,
    add: Annotated[bool, typer.Option(help="Add samples to an existing subject.")] = False,
    consent_notice: Annotated[str | None, typer.Option(help="Consent notice version.")] = None,
    consent_purpose: Annotated[str | None, typer.Option(help="Purpose consented to.")] = None,
    consent_days: Annotated[int | None, typer.Option(help="Consent term in days.")] = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Enrol one subject from one or more images (all accepted, or none)."""
    from biomatch.results import ConsentIn

    core, actor = _session(data_dir, token)
    consent = None
    if consent_notice or consent_purpose:
        consent = ConsentIn(
            notice_version=consent_notice or "",
            purpose=consent_purpose or "",
            term_days=consent_days,
        )
    data = [path.read_bytes() for path in images]
    _print(
        core.enrol(
            actor,
            gallery,
            subject_id,
            data,
            modality,
            primary_only=primary_face,
            add_to_existing=add,
            consent=consent,
        )
    )


@app.command("enrol-bulk")
@reports_errors
def enrol_bulk(
    gallery: str,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    modality: ModalityOption = "face",
    workers: Annotated[int, typer.Option(min=1)] = 2,
    primary_face: Annotated[
        bool,
        typer.Option(help="Use the primary face (nearest the centre) where several are found."),
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write every rejection as JSON.")] = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Enrol a folder laid out <subject>/<image>; rejected images are listed, not fatal."""
    core, actor = _session(data_dir, token)
    core.get_gallery(actor, gallery)
    by_subject = _images_by_subject(folder)
    files = [path for paths in by_subject.values() for path in paths]
    results = extract_files(
        files, core.settings, modality, workers=workers, primary_only=primary_face
    )
    accepted: dict[str, list[Any]] = {}
    rejected: list[dict[str, Any]] = []
    for result in tqdm(results, total=len(files), desc="extract", unit="img"):
        if result.sample is not None:
            accepted.setdefault(result.path.parent.name, []).append(result.sample)
        else:
            rejected.append({"image": str(result.path), **(result.error or {})})
    enrolled = 0
    for subject_id, samples in tqdm(accepted.items(), desc="enrol", unit="subject"):
        try:
            core.enrol_samples(actor, gallery, subject_id, samples)
            enrolled += 1
        except BioMatchError as exc:
            rejected.append({"image": str(folder / subject_id), **exc.to_dict()})
    _bulk_summary(len(by_subject), enrolled, len(files), rejected)
    if report is not None:
        report.write_text(json.dumps({"rejected": rejected}, indent=2) + "\n")


def _images_by_subject(folder: Path) -> dict[str, list[Path]]:
    return {
        sub.name: sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
    }


def _bulk_summary(
    subjects: int, enrolled: int, images: int, rejected: list[dict[str, Any]]
) -> None:
    table = Table(title="Bulk enrolment")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("subject folders", str(subjects))
    table.add_row("subjects enrolled", str(enrolled))
    table.add_row("images", str(images))
    table.add_row("images rejected", str(len(rejected)))
    reasons = Counter(
        reason["name"]
        for item in rejected
        for reason in item.get("details", {}).get("reasons", [{"name": item.get("code")}])
    )
    for reason, count in reasons.most_common():
        table.add_row(f"  rejected for {reason}", str(count))
    console.print(table)


@app.command()
@reports_errors
def verify(
    gallery: str,
    subject_id: str,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    purpose: Purpose,
    authority: Authority,
    case_reference: CaseRef = None,
    modality: ModalityOption = "face",
    primary_face: Annotated[bool, typer.Option()] = False,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """1:1: does the image match the claimed subject?"""
    core, actor = _session(data_dir, token)
    context = _context(purpose, authority, case_reference)
    _print(
        core.verify(
            actor,
            gallery,
            subject_id,
            image.read_bytes(),
            context,
            modality,
            primary_only=primary_face,
        )
    )


@app.command()
@reports_errors
def identify(
    gallery: str,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    purpose: Purpose,
    authority: Authority,
    case_reference: CaseRef = None,
    modality: ModalityOption = "face",
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    primary_face: Annotated[bool, typer.Option()] = False,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """1:N: ranked candidates (investigative leads) with estimated false match rates."""
    core, actor = _session(data_dir, token)
    context = _context(purpose, authority, case_reference)
    _print(
        core.identify(
            actor,
            gallery,
            image.read_bytes(),
            context,
            modality,
            top_k=top_k,
            primary_only=primary_face,
        )
    )


@subject_app.command("show")
@reports_errors
def subject_show(
    gallery: str, subject_id: str, token: Token = None, data_dir: DataDir = None
) -> None:
    """Show a subject's samples and their quality scores."""
    core, actor = _session(data_dir, token)
    _print(core.get_subject(actor, gallery, subject_id))


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
    core, actor = _session(data_dir, token)
    erased = core.erase_subject(actor, gallery, subject_id, reason)
    _print({"gallery": gallery, "subject_id": subject_id, "samples_erased": erased})


@subject_app.command("opt-out")
@reports_errors
def subject_opt_out(person_ref: str, token: Token = None, data_dir: DataDir = None) -> None:
    """Record an opt-out; erases the person's enrolments in non-enforcement galleries."""
    core, actor = _session(data_dir, token)
    _print({"person_ref": person_ref, "enrolments_erased": core.record_optout(actor, person_ref)})


@operator_app.command("create")
@reports_errors
def operator_create(
    name: str,
    role: Annotated[str, typer.Option(help="admin, enroller, field_operator, reviewer, auditor")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="BIOMATCH_TOKEN",
            help="An admin's token; without one, acts as the "
            "local system (shell access to the data directory is the root of trust).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an operator; prints the API token once (only its salted hash is stored)."""
    from biomatch.accountability.principal import SYSTEM
    from biomatch.accountability.roles import Role

    core = _core(data_dir)
    actor = core.authenticate(token) if token else SYSTEM
    try:
        chosen = Role(role)
    except ValueError:
        raise BioMatchError(f"Unknown role {role!r}.") from None
    _print(core.create_operator(actor, name, chosen))


@operator_app.command("list")
@reports_errors
def operator_list(data_dir: DataDir = None) -> None:
    """List operators (local system access)."""
    from biomatch.accountability.principal import SYSTEM

    _print(_core(data_dir).list_operators(SYSTEM))


@operator_app.command("revoke")
@reports_errors
def operator_revoke(name: str, data_dir: DataDir = None) -> None:
    """Revoke an operator's token (local system access)."""
    from biomatch.accountability.principal import SYSTEM

    _print(_core(data_dir).revoke_operator(SYSTEM, name))


@encounter_app.command("list")
@reports_errors
def encounter_list(
    limit: Annotated[int, typer.Option(min=1)] = 20, token: Token = None, data_dir: DataDir = None
) -> None:
    """Recent searches visible to you."""
    core, actor = _session(data_dir, token)
    _print(core.list_encounters(actor, limit))


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
    core, actor = _session(data_dir, token)
    _print(core.adjudicate(actor, encounter_id, subject_id, decision, reason))


@audit_app.command("verify")
@reports_errors
def audit_verify(data_dir: DataDir = None) -> None:
    """Recompute the hash chain and signed checkpoints: exit 0 if intact, 1 naming the first
    broken entry otherwise."""
    from biomatch.accountability.principal import SYSTEM, Principal
    from biomatch.accountability.roles import Role

    report = _core(data_dir).verify_audit(Principal(None, "system", Role.AUDITOR))
    del SYSTEM
    _print(report.as_dict())
    if not report.intact:
        console.print(
            f"audit log broken at entry {report.first_broken_seq}: {report.problem}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)


@audit_app.command("export")
@reports_errors
def audit_export(
    out: Annotated[Path, typer.Option(help="File to write.")],
    csv_format: Annotated[bool, typer.Option("--csv/--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Export the whole audit log as CSV or JSON."""
    from biomatch.accountability import reports

    entries = _core(data_dir).audit_entries(_local_auditor(), 0, 10**9)
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

    report = _core(data_dir).transparency_report(_local_auditor())
    _print(report)
    if html is not None:
        html.write_text(reports.transparency_html(report))


@app.command("retention")
@reports_errors
def retention(data_dir: DataDir = None) -> None:
    """Delete expired probes and enrolments now (the service also runs this periodically)."""
    _print(_core(data_dir).run_retention())


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

    core = _core(data_dir)
    result: dict[str, Any] = {"records_reencrypted": core.rotate_data_keys(SYSTEM)}
    if master:
        new_master, raw = MasterKey.generate()
        path = core.settings.resolved_master_key_file
        staged = path.with_name(path.name + ".new")
        write_key_file(staged, raw)
        result["data_keys_rewrapped"] = core.rotate_master_key(SYSTEM, new_master)
        staged.replace(path)
        result["master_key_id"] = new_master.key_id
    _print(result)


LfwDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The lfw/ folder.")]
Workers = Annotated[int, typer.Option(min=1, help="Extraction processes.")]
JsonOut = Annotated[Path, typer.Option("--json", help="Write every number here.")]
Cache = Annotated[Path | None, typer.Option(help="Template cache file (reused across runs).")]


@eval_app.command("lfw")
@reports_errors
def eval_lfw(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    pairs: Annotated[Path | None, typer.Option(help="Default: pairs.txt beside lfw/.")] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """LFW View-2 verification: 6,000 pairs, 10 folds (the official protocol)."""
    from biomatch.evaluation import lfw

    pairs_file = pairs or lfw_dir.parent / "pairs.txt"
    result = lfw.evaluate_verification(
        lfw_dir, pairs_file, Settings(), workers=workers, cache=cache
    )
    _write_result(
        json_out,
        result,
        ["accuracy_mean", "accuracy_std", "tar_at_far_1e-3", "ms_per_image", "failures_to_enrol"],
    )


@eval_app.command("lfw-identification")
@reports_errors
def eval_lfw_identification(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Closed-set 1:N on LFW: rank-1 and rank-10 identification rates."""
    from biomatch.evaluation import lfw

    result = lfw.evaluate_identification(lfw_dir, Settings(), workers=workers, cache=cache)
    _write_result(
        json_out, result, [k for k in result if "rank" in k] + ["gallery_subjects", "probes"]
    )


Modality = Annotated[str, typer.Option(help="face, or any installed modality (finger).")]
Html = Annotated[Path | None, typer.Option("--html", help="Also write the HTML report here.")]
Groups = Annotated[
    Path | None, typer.Option(help="CSV subject,group given by you (ISO/IEC 19795-10).")
]
Bootstrap = Annotated[int, typer.Option(min=0, help="Bootstrap replicates for intervals.")]
Seed = Annotated[int, typer.Option(help="Seed of the impostor sample and the bootstrap.")]
FLAT_KEYS = [
    "eer",
    "fnmr_at_fmr_1e-2",
    "fnmr_at_fmr_1e-3",
    "fnmr_at_fmr_1e-4",
    "n_genuine",
    "n_impostor",
    "failures_to_enrol",
]


@eval_app.command("pairs")
@reports_errors
def eval_pairs(
    csv_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="img_a,img_b,same_identity")
    ],
    root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Images' root.")],
    json_out: JsonOut,
    modality: Modality = "face",
    html_out: Html = None,
    label_regex: Annotated[
        str | None, typer.Option(help="Subject from the file name (default: first folder).")
    ] = None,
    groups: Groups = None,
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
) -> None:
    """Verification from a pairs list: FNMR at FMR, EER, intervals, DET curve."""
    from biomatch.evaluation import report, runs

    options = runs.RunOptions(
        modality, workers, cache, groups, label_regex, bootstrap=bootstrap, seed=seed
    )
    result, figures = _evaluation(lambda: runs.evaluate_pairs(csv_file, root, Settings(), options))
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result, FLAT_KEYS)


@eval_app.command("folder")
@reports_errors
def eval_folder(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    json_out: JsonOut,
    modality: Modality = "face",
    label_regex: Annotated[
        str | None,
        typer.Option(help="Subject = first group matched in the file name, e.g. '^(\\d+)_'."),
    ] = None,
    html_out: Html = None,
    groups: Groups = None,
    impostor_pairs: Annotated[int, typer.Option(min=1, help="Seeded non-mated sample.")] = 100_000,
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
) -> None:
    """Verification (all mated pairs, seeded non-mated sample) and identification (closed
    and open set) from a folder: one sub-folder per subject, or --label-regex."""
    from biomatch.evaluation import report, runs

    options = runs.RunOptions(
        modality,
        workers,
        cache,
        groups,
        label_regex,
        bootstrap=bootstrap,
        seed=seed,
        impostor_pairs=impostor_pairs,
    )
    result, figures = _evaluation(lambda: runs.evaluate_folder(folder, Settings(), options))
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result, [*FLAT_KEYS, "rank1", "fnir_at_fpir_0.01"])


@eval_app.command("lfw-report")
@reports_errors
def eval_lfw_report(
    lfw_dir: LfwDir,
    json_out: JsonOut,
    html_out: Html = None,
    pairs: Annotated[Path | None, typer.Option(help="Default: pairs.txt beside lfw/.")] = None,
    impostor_pairs: Annotated[int, typer.Option(min=1, help="Seeded non-mated sample.")] = (
        1_000_000
    ),
    workers: Workers = 2,
    cache: Cache = None,
    bootstrap: Bootstrap = 200,
    seed: Seed = 0,
) -> None:
    """LFW report: View-2 and all-pairs verification, closed/open-set identification."""
    from biomatch.evaluation import lfw_report, report

    result, figures = lfw_report.evaluate(
        lfw_dir,
        pairs or lfw_dir.parent / "pairs.txt",
        Settings(),
        workers=workers,
        cache=cache,
        impostor_pairs=impostor_pairs,
        bootstrap=bootstrap,
        seed=seed,
    )
    report.write(result, json_out, html_out, figures)
    _print_headline(json_out, result["headline"], list(result["headline"]))


def _evaluation(run: Callable[[], tuple[dict[str, Any], dict[str, Any]]]) -> Any:
    """Data-layout errors end like any other bad input (one line, exit code 2)."""
    from biomatch.evaluation.dataset import DatasetError

    try:
        return run()
    except DatasetError as exc:
        message = f"error [invalid_dataset]: {exc}"
        console.print(message, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _print_headline(path: Path, result: dict[str, Any], keys: list[str]) -> None:
    table = Table(title=str(path))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in keys:
        value = result.get(key)
        shown = "not enough data" if value is None else value
        table.add_row(key, f"{shown:.4f}" if isinstance(shown, float) else str(shown))
    console.print(table)


@app.command()
@reports_errors
def calibrate(
    lfw_dir: LfwDir,
    out: Annotated[
        Path | None, typer.Option(help="Default: the packaged calibration file.")
    ] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the face score calibration from LFW impostor pairs."""
    from biomatch.evaluation import lfw

    calibration = lfw.calibrate(lfw_dir, Settings(), workers=workers, cache=cache)
    _save_calibration(calibration, out, (1e-2, 1e-3, 1e-4, 1e-5))


def _save_calibration(calibration: Any, out: Path | None, fmrs: tuple[float, ...]) -> None:
    from biomatch.calibration import calibration_path

    target = out or calibration_path(calibration.model_key)
    calibration.save(target)
    thresholds = {f"{fmr:g}": calibration.threshold_for(fmr) for fmr in fmrs}
    _print(
        {
            "written": str(target),
            "n_impostor": calibration.n_impostor,
            "threshold_at_fmr": thresholds,
        }
    )


FingerDir = Annotated[
    Path, typer.Argument(exists=True, file_okay=False, help="An FVC B-set folder.")
]


@eval_app.command("fvc")
@reports_errors
def eval_fvc(
    folder: FingerDir,
    json_out: JsonOut,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """FVC fingerprint verification: all mated and all non-mated impression pairs."""
    from biomatch.evaluation import fvc

    result = fvc.evaluate(folder, Settings(), workers=workers, cache=cache)
    headline = ["mated_pairs", "non_mated_pairs", "eer", "fmr100", "fmr1000"]
    headline += ["extraction_ms_mean", "comparisons_per_second_one_core", "failures_to_enrol"]
    _write_result(json_out, result, headline)


@app.command("calibrate-finger")
@reports_errors
def calibrate_finger(
    folders: Annotated[list[Path], typer.Argument(exists=True, file_okay=False)],
    out: Annotated[
        Path | None, typer.Option(help="Default: the packaged calibration file.")
    ] = None,
    workers: Workers = 2,
    cache: Cache = None,
) -> None:
    """Regenerate the finger score calibration from FVC non-mated pairs."""
    from biomatch.evaluation import fvc

    calibration = fvc.calibrate(folders, Settings(), workers=workers, cache=cache)
    _save_calibration(calibration, out, (1e-2, 1e-3, 1e-4))


def _write_result(path: Path, result: dict[str, Any], headline: list[str]) -> None:
    result["command"] = " ".join(sys.argv)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=str(path))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in headline:
        value = result[key]
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


if __name__ == "__main__":
    app()
