"""Reading a user's labelled data: pairs CSV, folder labels, group CSV."""

from pathlib import Path

import pytest

from biomatch.evaluation import dataset


def test_pairs_csv_accepts_common_spellings_and_names_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_text("img_a,img_b,same_identity\na/1.jpg,a/2.jpg,1\na/1.jpg,b/1.jpg,False\n")
    rows = dataset.read_pairs_csv(good)
    assert [(r.first, r.second, r.same) for r in rows] == [
        ("a/1.jpg", "a/2.jpg", True),
        ("a/1.jpg", "b/1.jpg", False),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("img_a,img_b,same_identity\na/1.jpg,a/2.jpg,maybe\n")
    with pytest.raises(dataset.DatasetError, match=r"bad.csv:2"):
        dataset.read_pairs_csv(bad)
    with pytest.raises(dataset.DatasetError, match="missing column"):
        (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
        dataset.read_pairs_csv(tmp_path / "cols.csv")


def test_subjects_from_folders_or_a_regex() -> None:
    keys = ["alice/1.jpg", "loose.jpg", "101_3.tif", "x/102_1.tif"]
    assert dataset.subjects_of(keys, None) == {
        "alice/1.jpg": "alice",
        "loose.jpg": None,
        "101_3.tif": None,
        "x/102_1.tif": "x",
    }
    by_name = dataset.subjects_of(keys, r"^(\d+)_")
    assert by_name["101_3.tif"] == "101" and by_name["x/102_1.tif"] == "102"
    assert by_name["alice/1.jpg"] is None
    named = dataset.subjects_of(["p7-s2.png"], r"p(?P<subject>\d+)-")
    assert named == {"p7-s2.png": "7"}


def test_groups_csv_needs_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("subject,group\n101,A\n102, B \n")
    assert dataset.read_groups(path) == {"101": "A", "102": "B"}
    path.write_text("id,label\n101,A\n")
    with pytest.raises(dataset.DatasetError):
        dataset.read_groups(path)
