"""Reading a user's labelled data: pairs CSV, folder labels, group CSV."""

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from biomatch.config import Settings
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


class _Plugin:
    """A plug-in stand-in: templates are float32 vectors; ``compare`` is the inner product
    with an offset of its own (so a score can be told from an index score) and counts its
    calls."""

    def __init__(self, dimensions: int, shortlist_subjects: int = 0) -> None:
        self.info = SimpleNamespace(key="test/dot@1", dimensions=dimensions)
        self.shortlist_subjects = shortlist_subjects
        self.calls: list[int] = []

    def index_vector(self, template: bytes) -> np.ndarray:
        return np.frombuffer(template, np.float32)

    def compare(self, probe: bytes, references: Sequence[bytes]) -> np.ndarray:
        self.calls.append(len(references))
        p = np.frombuffer(probe, np.float32)
        return np.array([float(np.frombuffer(r, np.float32) @ p) + 10.0 for r in references])


def _unit_templates(count: int, dimensions: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, dimensions))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [v.astype(np.float32).tobytes() for v in vectors]


def test_the_one_closed_set_split_counts_failures() -> None:
    by_subject = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1"], "d": ["d1", "d2"]}
    usable = {"a2", "a3", "b1", "c1"}  # a1 failed, b2 failed, d failed entirely
    split = dataset.closed_set_split(by_subject, usable)
    assert split.gallery == ["a2", "b1"]
    assert split.probes == ["a3"] and split.mates == [0]
    assert split.distractors == ["c1"]
    assert split.enrolled == ["a2", "b1", "c1"]
    # a1 and b2 failed as probes; d2 is a search of a subject that could not enrol.
    assert split.missed == 3
    assert split.subjects_not_enrolled == 1


def test_impostor_scores_are_every_non_mated_pair_through_compare() -> None:
    templates = _unit_templates(7, 4)
    subjects = ["a", "a", "b", "c", "c", "c", "d"]
    plugin = _Plugin(4)
    scores = dataset.impostor_scores(plugin, templates, subjects)  # type: ignore[arg-type]
    expected = [
        float(np.frombuffer(templates[i], np.float32) @ np.frombuffer(templates[j], np.float32))
        + 10.0
        for i in range(7)
        for j in range(i + 1, 7)
        if subjects[i] != subjects[j]
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert plugin.calls == [6, 5, 4, 3, 2, 1]  # one compare per image, on the later ones


def test_search_scores_shortlist_through_the_index_and_rescore_with_compare() -> None:
    dimensions = 8
    templates = dict(enumerate(_unit_templates(60, dimensions, seed=1)))
    keyed = {f"t{k}": t for k, t in templates.items()}
    enrolled = [f"t{k}" for k in range(50)]
    probes = [f"t{k}" for k in range(50, 60)]
    plugin = _Plugin(dimensions)
    scores = dataset.search_scores(
        plugin,  # type: ignore[arg-type]
        keyed,
        probes,
        enrolled,
        Settings(),
        depth=5,
    )
    assert scores.shape == (10, 50)
    gallery = np.stack([np.frombuffer(keyed[k], np.float32) for k in enrolled])
    for row, probe in enumerate(probes):
        exact = gallery @ np.frombuffer(keyed[probe], np.float32)
        top = set(np.argsort(-exact)[:6].tolist())  # depth + 1: the mate-left-out search
        shortlisted = set(np.flatnonzero(np.isfinite(scores[row])).tolist())
        assert shortlisted == top
        # Shortlisted entries carry compare's score (offset 10), the rest are never returned.
        np.testing.assert_allclose(scores[row, sorted(top)], exact[sorted(top)] + 10.0, rtol=1e-5)
    assert plugin.calls == [6] * 10  # one compare per search, on its shortlist only
    # A plug-in that asks for a wider shortlist gets it.
    wide = _Plugin(dimensions, shortlist_subjects=12)
    scores = dataset.search_scores(wide, keyed, probes, enrolled, Settings(), depth=5)  # type: ignore[arg-type]
    assert (np.isfinite(scores).sum(axis=1) == 13).all()
    # Smaller galleries searched on their own: each one's own shortlist is scored too.
    small = _Plugin(dimensions)
    scores = dataset.search_scores(
        small,  # type: ignore[arg-type]
        keyed,
        probes,
        enrolled,
        Settings(),
        depth=1,
        gallery_sizes=[10],
    )
    for row, probe in enumerate(probes):
        exact = gallery[:10] @ np.frombuffer(keyed[probe], np.float32)
        assert set(np.argsort(-exact)[:2].tolist()) <= set(np.flatnonzero(np.isfinite(scores[row])))
