"""The LFW report end to end on a tiny stand-in LFW (cached synthetic templates: no images
are decoded), so the whole report path runs without ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from biomatch.config import Settings
from biomatch.evaluation import dataset, lfw, lfw_report, report
from biomatch.modalities import load_modality

PEOPLE = {"Ann_A": 3, "Bob_B": 2, "Cid_C": 4, "Dee_D": 1, "Eve_E": 1, "Fay_F": 2}


def fake_lfw(root: Path) -> tuple[Path, Path, Path]:
    lfw_dir = root / "lfw"
    rng = np.random.default_rng(0)
    entries = {}
    for person, count in PEOPLE.items():
        (lfw_dir / person).mkdir(parents=True)
        centre = rng.normal(size=128)
        for number in range(1, count + 1):
            image_id = f"{person}_{number:04d}"
            path = lfw_dir / person / f"{image_id}.jpg"
            path.write_bytes(image_id.encode())
            vector = centre + 0.3 * rng.normal(size=128)
            template = (vector / np.linalg.norm(vector)).astype(np.float32).tobytes()
            entries[dataset.file_sha256(path)] = dataset._Extracted(template, {}, True)
    pairs = root / "pairs.txt"
    # Two folds of one mated and one non-mated pair each.
    pairs.write_text("2 1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\nCid_C 1 3\nDee_D 1 Eve_E 1\n")
    cache = root / "cache.json"  # the one evaluation cache, as extraction would write it
    dataset._save_cache(cache, load_modality("face", Settings()).info.key, entries)
    return lfw_dir, pairs, cache


def test_lfw_report_from_a_cache(tmp_path: Path) -> None:
    lfw_dir, pairs, cache = fake_lfw(tmp_path)
    result, figures = lfw_report.evaluate(
        lfw_dir, pairs, Settings(), cache=cache, impostor_pairs=40, bootstrap=10
    )
    assert result["images"] == sum(PEOPLE.values()) and result["failures_to_enrol"] == 0
    view2 = result["verification_view2"]
    assert (view2["n_genuine"], view2["n_impostor"]) == (2, 2)
    assert view2["fnmr_at_fmr_1e-2"] is None  # 2 impostor pairs state nothing
    every = result["verification_all_pairs"]
    assert every["n_genuine"] == 3 + 1 + 6 + 1  # C(3,2) + C(2,2) + C(4,2) + C(2,2)
    assert every["n_impostor"] == 40
    ident = result["identification"]
    # People with 2+ images enrol one each (4); the others' images are the probes (7).
    assert (ident["gallery_subjects"], ident["distractors"], ident["n_mated_searches"]) == (4, 2, 7)
    assert ident["rank1"] == 1.0  # well-separated synthetic identities
    report.write(result, tmp_path / "r.json", tmp_path / "r.html", figures)
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["headline"]["rank1"] == 1.0
    assert written["provenance"]["data"]["files"] == sum(PEOPLE.values())
    assert lfw.read_pairs(pairs)[0].same
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()
