"""Finger 1:N through the core service (SQLite store, index, re-scoring), at a gallery size.

    .venv/bin/python benchmarks/finger_service.py [--gallery 20000] [--cache data/cache/fvc.json]

Enrols the first impression of each FVC2002 DB1_B finger plus synthetic distractors (FVC2000
DB1_B templates with 20% minutia dropout and 2 px jitter) into a temporary data directory,
then times ``BioMatch.identify`` on real probes and, separately, the probe's extraction; the
difference is the search (index shortlist, template fetch, matcher). Prints one line a probe.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import finger_search  # shares the FVC template loading

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.config import Settings
from biomatch.extraction import ExtractedSample
from biomatch.modalities.finger import FingerModality
from biomatch.results import CaptureQuality, SearchContext
from biomatch.service import BioMatch

PROBES = ("103_3", "105_3", "108_5", "110_2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=finger_search.ROOT / "data/cache/fvc.json")
    args = parser.parse_args()

    fvc = finger_search.FVC
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), search_rate_per_minute=10**6)
    core = BioMatch(settings, modalities=("finger",))
    plugin = core.modality("finger")
    assert isinstance(plugin, FingerModality)
    open_policy = GalleryPolicy(modes=["verify", "identify"])
    core.create_gallery(SYSTEM, "g", policy=open_policy)
    enroller = Principal(None, "bench-enroller", Role.ENROLLER)
    searcher = Principal(None, "bench-operator", Role.FIELD_OPERATOR)
    context = SearchContext(purpose="identity_check", legal_authority="benchmark run")
    seeds = list(finger_search.load_templates(fvc / "fvc2000_db1b/DB1_B", args.cache).values())
    mates = finger_search.load_bytes(fvc / "fvc2002_db1b/DB1_B", args.cache)
    quality = CaptureQuality(passed=True, checks=[])

    def sample(template: bytes) -> ExtractedSample:
        return ExtractedSample("finger", plugin.info.key, template, "0" * 64, 388, 374, quality)

    started = time.perf_counter()
    for finger in range(101, 111):
        core.enrol_samples(enroller, "g", f"mate{finger}", [sample(mates[f"{finger}_1"])])
    rng = np.random.default_rng(0)
    for k in range(args.gallery - 10):
        minutiae = seeds[k % len(seeds)].minutiae.copy()
        minutiae = minutiae[rng.uniform(size=len(minutiae)) > 0.2]
        minutiae[:, :2] += rng.normal(0, 2, (len(minutiae), 2))
        template = plugin.template_from_minutiae(minutiae, 300, 300).to_bytes()
        core.enrol_samples(enroller, "g", f"s{k}", [sample(template)])
    print(f"enrolled {args.gallery} subjects in {time.perf_counter() - started:.0f} s")

    for name in PROBES:
        image = (fvc / f"fvc2002_db1b/DB1_B/{name}.tif").read_bytes()
        core.identify(searcher, "g", image, context, "finger", top_k=10)  # warm the index
        t0 = time.perf_counter()
        result = core.identify(searcher, "g", image, context, "finger", top_k=10)
        t1 = time.perf_counter()
        core.extract(image, "finger")
        t2 = time.perf_counter()
        identify_ms, extract_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
        print(
            f"probe {name}: identify {identify_ms:.0f} ms = extraction {extract_ms:.0f} ms "
            f"+ search {identify_ms - extract_ms:.0f} ms; rank 1: {result.candidates[0].subject_id}"
        )
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
