"""The CLI: the same core API, one line and exit code 2 for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from biomatch.cli import app
from biomatch.config import Settings
from tests.conftest import EXAMPLES, SHARED, TEST_STORE, shared_file

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def token(data_dir: str, name: str, role: str) -> str:
    code, out, err = run("operator", "create", name, "--role", role, "--data-dir", data_dir)
    assert code == 0, err
    return str(json.loads(out)["token"])


SEARCH = ("--purpose", "identity_check", "--authority", "Identity Checks Act s.4")


def test_bulk_enrolment_then_identify_and_verify(tmp_path: Path, data_dir: str) -> None:
    train = shared_file(EXAMPLES / "knn_examples" / "train")
    folder = tmp_path / "bulk"
    shutil.copytree(train, folder)
    (folder / "biden" / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    (folder / "biden" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    field = token(data_dir, "fay", "field_operator")
    code, _, err = run(
        "gallery",
        "create",
        "g",
        "--preset",
        "investigations",
        "--token",
        admin,
        "--data-dir",
        data_dir,
    )
    assert code == 0, err
    report = tmp_path / "rejected.json"
    code, _, err = run(
        "enrol-bulk",
        "g",
        str(folder),
        "--workers",
        "1",
        "--report",
        str(report),
        "--token",
        enroller,
        "--data-dir",
        data_dir,
    )
    assert code == 0, err
    assert "subjects enrolled" in err
    rejected = json.loads(report.read_text())["rejected"]
    assert any(
        item["image"].endswith("broken.jpg") and item["code"] == "invalid_image"
        for item in rejected
    )
    code, out, err = run(
        "subject", "show", "g", "obama", "--token", enroller, "--data-dir", data_dir
    )
    assert code == 0, err
    samples = json.loads(out)["samples"]
    assert samples and all(sample["image_kept"] for sample in samples)  # kept, encrypted
    probe = str(EXAMPLES / "obama2.jpg")
    code, _, err = run("identify", "g", probe, "--token", field, "--data-dir", data_dir)
    assert code == 2 and "purpose" in err  # no search without its stated purpose
    code, out, err = run(
        "identify",
        "g",
        probe,
        "--top-k",
        "3",
        *SEARCH,
        "--case-reference",
        "C-1",
        "--token",
        field,
        "--data-dir",
        data_dir,
    )
    assert code == 0, err
    assert json.loads(out)["candidates"][0]["subject_id"] == "obama"
    code, out, _ = run(
        "verify",
        "g",
        "obama",
        probe,
        *SEARCH,
        "--case-reference",
        "C-1",
        "--token",
        field,
        "--data-dir",
        data_dir,
    )
    assert json.loads(out)["decision"] == "match"
    code, out, _ = run(
        "subject",
        "erase",
        "g",
        "obama",
        "--reason",
        "court order 7",
        "--token",
        admin,
        "--data-dir",
        data_dir,
    )
    assert json.loads(out)["samples_erased"] >= 1
    code, out, _ = run("audit", "verify", "--data-dir", data_dir)
    assert code == 0 and json.loads(out)["intact"]
    code, out, _ = run("audit", "report", "--data-dir", data_dir)
    assert json.loads(out)["searches_by_kind"] == {"identify": 1, "verify": 1}


def test_errors_are_one_line_and_exit_2(data_dir: str, tmp_path: Path) -> None:
    not_image = tmp_path / "x.jpg"
    not_image.write_bytes(b"nope")
    admin, field = token(data_dir, "ada", "admin"), token(data_dir, "fay", "field_operator")
    code, _, err = run(
        "identify", "missing", str(not_image), *SEARCH, "--token", field, "--data-dir", data_dir
    )
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith("error [gallery_not_found]")
    run(
        "gallery",
        "create",
        "g",
        "--preset",
        "investigations",
        "--token",
        admin,
        "--data-dir",
        data_dir,
    )
    code, _, err = run(
        "identify",
        "g",
        str(not_image),
        *SEARCH,
        "--case-reference",
        "C-1",
        "--token",
        field,
        "--data-dir",
        data_dir,
    )
    assert (code, err.split("]")[0]) == (2, "error [invalid_image")
    code, _, err = run("gallery", "create", "g", "--token", admin, "--data-dir", data_dir)
    assert (code, err.split("]")[0]) == (2, "error [gallery_exists")
    code, _, err = run("gallery", "create", "h", "--token", field, "--data-dir", data_dir)
    assert (code, err.split("]")[0]) == (2, "error [forbidden")
    code, _, err = run("gallery", "list", "--token", "bm_nope_nope", "--data-dir", data_dir)
    assert (code, err.split("]")[0]) == (2, "error [unauthenticated")


def test_fingers_from_the_cli(data_dir: str) -> None:
    fvc = shared_file(SHARED / "finger" / "fvc2002_db1b" / "DB1_B")
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    field = token(data_dir, "fay", "field_operator")
    run("gallery", "create", "f", "--token", admin, "--data-dir", data_dir)
    code, out, err = run(
        "enrol",
        "f",
        "f101",
        str(fvc / "101_1.tif"),
        "--modality",
        "finger",
        "--token",
        enroller,
        "--data-dir",
        data_dir,
    )
    assert code == 0, err
    assert json.loads(out)["samples"][0]["modality"] == "finger"
    code, out, err = run(
        "verify",
        "f",
        "f101",
        str(fvc / "101_3.tif"),
        *SEARCH,
        "--modality",
        "finger",
        "--token",
        field,
        "--data-dir",
        data_dir,
    )
    assert code == 0, err
    assert json.loads(out)["decision"] == "match"


def test_db_upgrade_then_templates_upgrade(
    tmp_path: Path, data_dir: str, grace_hopper: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gallery enrolled under the former SFace configuration (points as detected, chip +
    mirror: key 1.0-flip) moves to the default one from its kept images."""
    code, _, err = run("db", "upgrade", "--data-dir", data_dir)
    assert code == 0, err
    assert schema_versions(data_dir) == [(alembic_head(),)]
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    code, _, err = run("gallery", "create", "g", "--token", admin, "--data-dir", data_dir)
    assert code == 0, err
    photo = tmp_path / "hopper.jpg"
    photo.write_bytes(grace_hopper)
    with monkeypatch.context() as former:
        former.setenv("BIOMATCH_FACE__SFACE_LANDMARK_FACE_PX", "0")
        former.setenv("BIOMATCH_FACE__FLIP_AVERAGE", "true")
        code, _, err = run(
            "enrol", "g", "hopper", str(photo), "--token", enroller, "--data-dir", data_dir
        )
    assert code == 0, err
    upgrade = ("templates", "upgrade", "g", "--model", "face-sface", "--data-dir", data_dir)
    code, out, err = run(*upgrade, "--token", enroller)
    assert code == 2 and "forbidden" in err  # an admin's job
    code, out, err = run(*upgrade, "--token", admin)
    assert code == 0, err
    result = json.loads(out)
    assert (result["templated"], result["already_templated"], result["needs_recapture"]) == (
        1,
        0,
        [],
    )
    code, out, _ = run(*upgrade, "--token", admin)
    assert json.loads(out)["already_templated"] == 1  # resumable: nothing done twice
    code, _, err = run(
        "templates",
        "upgrade",
        "nosuch",
        "--model",
        "face",
        "--token",
        admin,
        "--data-dir",
        data_dir,
    )
    assert code == 2 and "gallery_not_found" in err


def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    from biomatch.store.database import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def schema_versions(data_dir: str) -> list[tuple[str]]:
    """The schema version rows of the store the data directory's settings name."""
    from sqlalchemy import create_engine, text

    engine = create_engine(Settings(data_dir=Path(data_dir)).resolved_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return [(str(row[0]),) for row in rows]
    finally:
        engine.dispose()


def test_db_upgrade_creates_the_schema_in_a_fresh_data_dir(data_dir: str) -> None:
    assert not Path(data_dir).exists()
    code, out, err = run("db", "upgrade", "--data-dir", data_dir)
    assert code == 0, err
    url = Settings(data_dir=Path(data_dir)).resolved_database_url
    assert TEST_STORE != "sqlite" or (Path(data_dir) / "biomatch.sqlite3").is_file()
    assert schema_versions(data_dir) == [(alembic_head(),)]
    assert out == "" and err.strip().count("\n") == 0  # one line, on stderr
    assert err.startswith(f"database at the newest schema: {url.split(':', 1)[0]}:")
    code, _, err = run("db", "upgrade", "--data-dir", data_dir)  # at head already: no change
    assert code == 0, err
    assert schema_versions(data_dir) == [(alembic_head(),)]


def test_serve_migrates_once_before_uvicorn_starts(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: list[dict[str, object]] = []

    def fake_run(target: str, **options: object) -> None:
        assert schema_versions(data_dir) == [(alembic_head(),)]  # migrated in the parent
        started.append({"target": target, **options})

    monkeypatch.setenv("BIOMATCH_DATA_DIR", "elsewhere")  # restored after the test
    monkeypatch.setattr(uvicorn, "run", fake_run)
    code, _, err = run("serve", "--data-dir", data_dir, "--workers", "3", "--port", "8123")
    assert code == 0, err
    assert started == [
        {
            "target": "biomatch.api.app:create_app",
            "factory": True,
            "host": "127.0.0.1",
            "port": 8123,
            "workers": 3,
        }
    ]
    import os

    assert os.environ["BIOMATCH_DATA_DIR"] == data_dir  # what each worker's Settings() reads


def test_python_m_biomatch_cli_runs_the_same_app() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "biomatch.cli", "db", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "upgrade" in result.stdout


def test_db_upgrade_never_prints_a_database_password() -> None:
    from biomatch.cli.serve import shown_url

    shown = shown_url("postgresql+psycopg://biomatch:s3cret@db.example/biomatch")
    assert "s3cret" not in shown and shown.endswith("@db.example/biomatch")


RIDGEBASE = SHARED / "finger" / "ridgebase_samples" / "fingertips"


def test_a_contactless_photo_searches_contact_prints_from_the_cli(data_dir: str) -> None:
    """--capture contactless on enrol, identify and verify, as capture=contactless on the
    HTTP routes; --layout and --hand refused where they do not fit, in one line."""
    prints = shared_file(RIDGEBASE)
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    field = token(data_dir, "fay", "field_operator")
    as_field = ("--token", field, "--data-dir", data_dir)
    code, _, err = run("gallery", "create", "g", "--preset", "investigations", "--token", admin,
                       "--data-dir", data_dir)  # fmt: skip
    assert code == 0, err
    mate = "10727_left_middle"
    for finger in (mate, "10727_left_index", "11826_left_little"):
        contact = sorted((prints / finger).glob("ct_*"))[0]
        code, _, err = run("enrol", "g", finger, str(contact), "--modality", "finger",
                           "--token", enroller, "--data-dir", data_dir)  # fmt: skip
        assert code == 0, err
    photo = str(sorted((prints / mate).glob("cl_*"))[0])
    finger = ("--modality", "finger", "--capture", "contactless")
    code, out, err = run("identify", "g", photo, *finger, *SEARCH, "--case-reference", "C-1",
                         *as_field)  # fmt: skip
    assert code == 0, err
    found = json.loads(out)
    assert found["candidates"][0]["subject_id"] == mate
    assert found["models"][0]["model_id"] == "contactless-leader-lnm"
    code, out, err = run("verify", "g", mate, photo, *finger, *SEARCH, "--case-reference", "C-1",
                         *as_field)  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["decision"] == "match"
    for extra, says in (
        (("--layout", "four_finger"), "hand=left or hand=right"),
        (("--hand", "left"), "layout=four_finger"),
    ):
        code, out, err = run("identify", "g", photo, *finger, *extra, *SEARCH,
                             "--case-reference", "C-1", *as_field)  # fmt: skip
        assert code == 2 and out == "", err
        assert err.startswith("error [invalid_request]: ") and says in err, err
        assert err.count("\n") == 1
    code, _, err = run("identify", "g", photo, "--modality", "finger", "--capture", "x", *SEARCH,
                       "--case-reference", "C-1", *as_field)  # fmt: skip
    assert code == 2 and "'x'" in err
    # The gate alone, as POST /v1/quality-check: exit 0 where the capture passes, 1 where not.
    code, out, err = run("quality-check", photo, *finger, *as_field)
    assert code == 0, err
    assert json.loads(out)["passed"] is True and json.loads(out)["model"]
    blank = Path(data_dir).parent / "blank.png"
    Image.new("RGB", (400, 400), (90, 90, 90)).save(blank)
    code, out, err = run("quality-check", str(blank), *finger, *as_field)
    assert code == 1, err
    assert [reason["name"] for reason in json.loads(out)["reasons"]] == ["finger_found"]


def test_a_four_finger_photo_enrols_and_searches_from_the_cli(data_dir: str) -> None:
    hand = shared_file(SHARED / "finger" / "ridgebase_samples" / "four_finger" / "22657_left")
    admin, enroller = token(data_dir, "ada", "admin"), token(data_dir, "eve", "enroller")
    field = token(data_dir, "fay", "field_operator")
    code, _, err = run("gallery", "create", "g", "--preset", "investigations", "--token", admin,
                       "--data-dir", data_dir)  # fmt: skip
    assert code == 0, err
    four = ("--modality", "finger", "--capture", "contactless", "--layout", "four_finger",
            "--hand", "left")  # fmt: skip
    code, out, err = run("enrol", "g", "hand", str(hand / "cap1_44F2KEOY.jpg"), *four,
                         "--token", enroller, "--data-dir", data_dir)  # fmt: skip
    assert code == 0, err
    enrolled = json.loads(out)
    assert len(enrolled["samples"]) + len(enrolled["left_out"]) == 4
    probe = str(hand / "cap3_OO8ECAHB.jpg")
    code, out, err = run("identify", "g", probe, *four, *SEARCH, "--case-reference", "C-1",
                         "--token", field, "--data-dir", data_dir)  # fmt: skip
    assert code == 0, err
    found = json.loads(out)
    assert found["candidates"][0]["subject_id"] == "hand"
    assert {item["position"] for item in found["probe_quality"]} == {7, 8, 9, 10}
