"""`biomatch eval pairs` and `biomatch eval folder`: with a stand-in modality (no data
needed: the same path fingers will take) and on small real LFW slices."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from biomatch import modalities
from biomatch.calibration import ScoreCalibration
from biomatch.cli import app
from biomatch.config import Settings
from biomatch.evaluation import contactless, dataset, enrolled, lfw
from biomatch.modalities import Capture, ModelInfo, QualityCheck, QualityReport
from tests.conftest import LFW, SHARED, shared_file

runner = CliRunner()


class PatternModality:
    """Templates are the normalised 8x8 means of a grey image; a flat image has no subject."""

    info = ModelInfo("pattern", "mean8x8", "1", 64)
    shortlist_subjects = 0  # the index scores are the matcher's

    @property
    def calibration(self) -> ScoreCalibration:
        impostor = np.random.default_rng(0).normal(0, 0.15, 10_000)
        return ScoreCalibration.from_impostor_scores(self.info.key, impostor, {})

    def analyse(
        self, image: np.ndarray, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        grey = image.mean(axis=2)
        contrast = float(grey.std())
        check = QualityCheck("contrast", contrast, ">= 20", contrast >= 20, "Low contrast.")
        payload = grey if contrast > 1 else None
        return Capture(
            QualityReport((check,)), subjects_found=int(payload is not None), payload=payload
        )

    def make_template(self, capture: Capture) -> bytes:
        blocks = capture.payload.reshape(8, 8, 8, 8).mean(axis=(1, 3)).ravel()
        blocks = blocks - blocks.mean()
        return (blocks / np.linalg.norm(blocks)).astype(np.float32).tobytes()

    def index_vector(self, template: bytes) -> np.ndarray:
        return np.frombuffer(template, dtype=np.float32)

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        matrix = np.stack([self.index_vector(r) for r in references])
        return matrix @ self.index_vector(probe)


@pytest.fixture
def pattern_modality(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(modalities._FACTORIES, "pattern", lambda settings: PatternModality())
    yield


def write_fvc_style_folder(folder: Path, subjects: int = 12, impressions: int = 4) -> None:
    """<subject>_<impression>.png, like FVC names; one image is blank (fails to enrol)."""
    rng = np.random.default_rng(7)
    folder.mkdir()
    for subject in range(101, 101 + subjects):
        base = rng.uniform(40, 215, (8, 8)).repeat(8, 0).repeat(8, 1)
        for impression in range(1, impressions + 1):
            pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{subject}_{impression}.png")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(folder / "101_4.png")
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(folder / "notes.png")  # unlabelled


def invoke(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(Path(args[args.index("--json") + 1]).read_text())


def test_folder_with_a_label_regex_reports_every_key(
    tmp_path: Path, pattern_modality: None
) -> None:
    write_fvc_style_folder(tmp_path / "db")
    groups = tmp_path / "groups.csv"
    groups.write_text(
        "subject,group\n"
        + "".join(f"{s},{'even' if s % 2 == 0 else 'odd'}\n" for s in range(101, 113))
    )
    out = tmp_path / "out" / "report.json"
    report = invoke(
        "eval", "folder", str(tmp_path / "db"), "--modality", "pattern",
        "--label-regex", r"^(\d+)_", "--json", str(out), "--html", str(tmp_path / "r.html"),
        "--groups", str(groups), "--workers", "1", "--bootstrap", "50",
    )  # fmt: skip
    for key in ("eer", "fnmr_at_fmr_1e-2", "fnmr_at_fmr_1e-3", "n_genuine", "n_impostor",
                "failures_to_enrol", "rank1", "fnir_at_fpir_0.01"):  # fmt: skip
        assert key in report
    assert report["failures_to_enrol"] == 1 and report["failed_images"] == ["101_4.png"]
    assert report["unlabelled_images"] == 1
    # All mated pairs: 12 subjects x C(4, 2), the failed image's pairs included as misses.
    assert report["n_genuine"] == 12 * 6
    assert report["operating_point"]["false_non_matches"] >= 3
    # Impostor pairs only among the 47 images with templates, all of them (fewer than asked).
    assert report["n_impostor"] == 47 * 46 // 2 - (11 * 6 + 3)
    assert report["fnmr_at_fmr_1e-3"] is None  # 1,012 impostor pairs cannot state 1e-3
    assert report["identification"]["failures_to_acquire"] == 1
    # Each image against every subject enrolled with its images: 48 mated trials (the
    # failed image a miss), the 47 usable probes against the 11 other subjects.
    subjects = report["enrolled_subjects"]
    assert (subjects["n_genuine"], subjects["n_impostor"]) == (48, 47 * 11)
    assert report["enrolled_subjects_eer"] == subjects["eer"]
    assert "never an impostor score" in report["failure_policy"]
    assert "index" in report["identification"]["protocol"]  # the service's search path
    assert {row["group"] for row in report["groups"]["groups"]} == {"even", "odd"}
    assert report["provenance"]["data"]["files"] == 48
    assert Path(report["plots"]["det"]["svg"]).exists()
    page = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page and "fnmr_at_fmr_1e-2" in page


def test_pairs_csv_with_a_missing_image_fails_cleanly(
    tmp_path: Path, pattern_modality: None
) -> None:
    write_fvc_style_folder(tmp_path / "db", subjects=2)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("img_a,img_b,same_identity\n101_1.png,101_2.png,1\n101_1.png,999_1.png,0\n")
    out = str(tmp_path / "o.json")
    args = ["eval", "pairs", str(pairs), "--root", str(tmp_path / "db"), "--json", out]
    result = runner.invoke(app, [*args, "--modality", "pattern"])
    assert result.exit_code == 2
    assert "999_1.png: no such image" in result.stderr


def lfw_view2_csv(path: Path, mated: int, nonmated: int) -> Path:
    pairs = lfw.read_pairs(shared_file(LFW / "pairs.txt"))
    chosen = pairs[:mated] + pairs[300 : 300 + nonmated]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["img_a", "img_b", "same_identity"])
        for p in chosen:
            writer.writerow([f"{i[:-5]}/{i}.jpg" for i in (p.first, p.second)] + [int(p.same)])
    return path


def test_pairs_on_a_real_lfw_slice(tmp_path: Path) -> None:
    root = shared_file(LFW / "lfw")
    csv_path = lfw_view2_csv(tmp_path / "pairs.csv", 30, 30)
    report = invoke("eval", "pairs", str(csv_path), "--root", str(root), "--json",
                    str(tmp_path / "v.json"), "--workers", "1", "--bootstrap", "50")  # fmt: skip
    assert (report["n_genuine"], report["n_impostor"]) == (30, 30)
    assert report["eer"] < 0.15
    assert report["bootstrap"]["resampled"] == "subjects"
    assert report["fnmr_at_fmr_1e-2"] is None  # 30 impostor pairs cannot state 1e-2


def test_folder_on_a_real_lfw_slice(tmp_path: Path) -> None:
    root = shared_file(LFW / "lfw")
    folder = tmp_path / "slice"
    folder.mkdir()
    for name in (
        "Aaron_Peirsol",
        "Abdullah_Gul",
        "Adrien_Brody",
        "Alejandro_Toledo",
        "Aaron_Eckhart",
    ):
        (folder / name).symlink_to(root / name)
    out, cache = str(tmp_path / "f.json"), str(tmp_path / "c.json")
    report = invoke("eval", "folder", str(folder), "--json", out,
                    "--workers", "1", "--bootstrap", "20", "--cache", cache)  # fmt: skip
    ident = report["identification"]
    assert ident["gallery_subjects"] == 4 and ident["distractors"] == 1
    assert report["rank1"] >= 0.9
    assert report["failures_to_enrol"] == 0
    assert report["operating_point"]["source"].startswith("model calibration")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "zz_hand: a hand's folder name ends _left or _right"),
        (["--reference-glob", "ct_*"], "--reference-glob does not apply"),
        (["--label-regex", "^(x)"], "--label-regex does not apply"),
        (["--probe-glob", "nothing*"], "no photos in hand sub-folders"),
    ],
)
def test_a_four_finger_folder_that_cannot_be_evaluated_fails_before_any_photo(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    for hand in ("aa_left", "zz_hand"):  # the bad name sorts last: found before extraction
        (tmp_path / hand).mkdir()
        Image.new("RGB", (64, 64), (200, 140, 120)).save(tmp_path / hand / "cap1.png")
    args = ["eval", "folder", str(tmp_path), "--modality", "finger", "--capture", "contactless"]
    result = runner.invoke(
        app, [*args, "--layout", "four_finger", "--json", str(tmp_path / "o.json"), *extra]
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join((result.stdout + result.stderr).split())
    assert "photos:" not in result.stderr  # no photo was split


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "folder", "{d}", "--label-regex", "(", "--json", "{d}/o.json"], "missing )"),
        (["eval", "folder", "{d}", "--label-regex", "^s", "--json", "{d}/o.json"], "no group"),
        (["eval", "fvc", "{d}/a_left", "--json", "{d}/o.json"], "0 mated and 0 non-mated"),
        (["eval", "fvc", "{d}/empty", "--json", "{d}/o.json"], "holds no fingerprint images"),
        (["calibrate-finger", "{d}/a_left"], "too few to calibrate"),
        (["calibrate-contactless", "contactless:{d}:*.png"], "too few to calibrate"),
        (["eval", "folder", "{d}", "--json", "{d}/o.json"], "1 mated and 0 non-mated"),
        (["eval", "pairs", "{d}/p.csv", "--root", "{d}", "--json", "{d}/o.json"], "1 mated and 0"),
    ],
    ids=[
        "bad-regex",
        "no-group",
        "fvc-one-image",
        "fvc-empty",
        "calibrate-finger",
        "too-few",
        "folder-one-image",
        "pairs-mated-only",
    ],
)
def test_data_a_command_cannot_use_ends_it_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "a_left").mkdir()
    (tmp_path / "empty").mkdir()
    Image.new("RGB", (64, 64), (200, 140, 120)).save(tmp_path / "a_left" / "s1.png")
    Image.new("RGB", (64, 64), (190, 140, 120)).save(tmp_path / "a_left" / "s2.png")
    (tmp_path / "p.csv").write_text("img_a,img_b,same_identity\na_left/s1.png,a_left/s2.png,1\n")
    result = runner.invoke(app, [arg.format(d=tmp_path) for arg in args])
    assert result.exit_code == 2, result.output
    last = result.stderr.splitlines()[-1]  # after any progress bar
    assert last.startswith("error [invalid_dataset]: "), result.stderr
    assert message in last
    assert "Traceback" not in result.stderr


def test_enrolled_subjects_are_decided_on_their_best_score_times_their_templates(
    tmp_path: Path,
) -> None:
    """Recomputed here by hand: a probe's own subject scores the best of its other usable
    images, its FMR times their number; a subject without one is a miss."""
    write_fvc_style_folder(tmp_path / "db", subjects=4)
    plugin = PatternModality()
    labels = dataset.label_folder(tmp_path / "db", r"^(\d+)_")
    templates = {}
    for key in labels:
        capture = plugin.analyse(np.asarray(Image.open(tmp_path / "db" / key).convert("RGB")))
        if capture.has_subject:
            templates[key] = plugin.make_template(capture)
    by_subject: dict[str, list[str]] = {}
    for key, subject in sorted(labels.items()):
        by_subject.setdefault(subject, []).append(key)
    calibration = plugin.calibration
    rng = np.random.default_rng(0)
    found = enrolled.subject_scores(by_subject, templates, plugin, calibration, 1000, rng)

    def expected(probe: str, references: list[str]) -> float:
        best = max(float(plugin.compare(templates[probe], [templates[r]])[0]) for r in references)
        return -math.log10(min(1.0, len(references) * calibration.estimate(best).value))

    mated = [-math.inf]  # 101_4 has no template
    for keys in by_subject.values():
        for key in [k for k in keys if k in templates]:
            mated.append(expected(key, [k for k in keys if k != key and k in templates]))
    assert sorted(found.genuine) == pytest.approx(sorted(mated), abs=1e-6)
    impostor = [
        expected(key, [k for k in others if k in templates])
        for subject, keys in by_subject.items()
        for key in keys
        if key in templates
        for rival, others in by_subject.items()
        if rival != subject
    ]
    assert sorted(found.impostor) == pytest.approx(sorted(impostor), abs=1e-6)


RIDGEBASE = SHARED / "finger" / "ridgebase_samples"


def test_a_contactless_calibration_takes_the_fingertips_a_four_finger_search_uses(
    tmp_path: Path,
) -> None:
    shared_file(RIDGEBASE)
    hands = tmp_path / "hands"
    hands.mkdir()
    for folder in ("22837_left", "22837_right"):  # 2 and 1 photos; every fingertip passes
        (hands / folder).symlink_to(RIDGEBASE / "four_finger" / folder)
    fingertips = RIDGEBASE / "fingertips"
    same, cross = contactless.calibrate(
        [f"four_finger:{hands}:*.jpg", f"contactless:{fingertips}:cl_*",
         f"contact:{fingertips}:ct_*"],
        Settings(),
    )  # fmt: skip
    assert same.source["n_four_finger_fingertips"] == 3 * 4
    contactless_images = 3 * 4 + 32
    assert same.source["n_contactless_images"] == contactless_images
    # Mated, so left out: the left hand's four fingers in its two photos; subject 10727's
    # 8 fingers, 3 photos each. The fingertips of the hands have no contact mates.
    assert same.n_impostor == contactless_images * (contactless_images - 1) // 2 - 4 - 8 * 3
    assert cross.n_impostor == contactless_images * 24 - 40  # 24 prints, 40 mated pairs
    # Checked by source pair: hands-hands, hands-photos, photos-photos; each against prints.
    for calibration, groups in ((same, 3), (cross, 2)):
        checks = calibration.source["by_source_pair"]
        assert len(checks) == groups
        assert sum(check["n_impostor"] for check in checks) == calibration.n_impostor
        for check in checks:  # no pair of sources that can measure 1e-2 sees more
            if check["n_impostor"] >= 100:
                assert check["share_at_threshold_0.01"] <= 0.01


def test_a_four_finger_calibration_source_names_its_hands_by_folder(tmp_path: Path) -> None:
    with pytest.raises(dataset.DatasetError, match="by sub-folder, not a regex"):
        contactless.Source.parse(f"four_finger:{tmp_path}:*.jpg:^(\\d+)_")
    (tmp_path / "hand").mkdir()
    Image.new("RGB", (64, 64), (200, 140, 120)).save(tmp_path / "hand" / "cap1.png")
    with pytest.raises(dataset.DatasetError, match="hand: a hand's folder name ends _left"):
        contactless.calibrate([f"four_finger:{tmp_path}:*.png"], Settings())
