"""Bulk enrolment and de-duplication as Ray jobs (a local Ray of 2 CPUs): the same results as
the single-process paths on the same data, progress reported, and resumable after an
interruption (real face photos from ../shared/data)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.jobs import LocalRunner, RayRunner
from biomatch.jobs.runner import ChunkFunction
from biomatch.service import BioMatch
from biomatch.store import repository as repo
from tests.conftest import EXAMPLES, OPEN_POLICY, settings_for_tests, shared_file

pytest.importorskip("ray", reason="the Ray jobs need ray (the 'scale' extra)")


@pytest.fixture(scope="module")
def ray_runner() -> Iterator[RayRunner]:
    import ray

    runner = RayRunner(cpus=2)
    yield runner
    ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five people of face_recognition's examples, and Obama again as a sixth 'person'."""
    train = shared_file(EXAMPLES / "knn_examples" / "train")
    folder = tmp_path / "bulk"
    shutil.copytree(train, folder)
    (folder / "obama_again").mkdir()
    shutil.copy(EXAMPLES / "obama-720p.jpg", folder / "obama_again" / "a.jpg")
    (folder / "biden" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[BioMatch, Principal, Principal]]:
    core = BioMatch(settings_for_tests(tmp_path / "data"))
    for name in ("single", "ray"):
        core.create_gallery(SYSTEM, name, policy=GalleryPolicy.model_validate(OPEN_POLICY))
    enroller = core.authenticate(core.create_operator(SYSTEM, "eve", Role.ENROLLER).token)
    reviewer = core.authenticate(core.create_operator(SYSTEM, "rex", Role.REVIEWER).token)
    yield core, enroller, reviewer
    core.close()


def templates_by_subject(core: BioMatch, gallery: str) -> dict[str, list[bytes]]:
    key = core.modality("face").info.key
    with core.db.transaction() as session:
        record = repo.gallery_by_name(session, gallery)
        rows = repo.gallery_templates(session, record.id, key)
        names = repo.external_ids(session, [s for _, s, _ in rows])
        found: dict[str, list[bytes]] = {}
        for _, subject, data in rows:
            found.setdefault(names[subject], []).append(
                core._open_template(session, record.id, key, data)
            )
    return {name: sorted(templates) for name, templates in found.items()}


class Interrupted(Exception):
    pass


class CountingRunner:
    """Runs another runner's chunks, counting them; stops after ``stop_after`` if set."""

    def __init__(self, inner: Any, stop_after: int | None = None) -> None:
        self.inner, self.stop_after, self.chunks = inner, stop_after, 0

    def run(
        self, function: ChunkFunction[Any, Any], context: Any, chunks: Sequence[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any]]:
        for item in self.inner.run(function, context, chunks):
            self.chunks += 1
            yield item
            if self.stop_after is not None and self.chunks >= self.stop_after:
                raise Interrupted


def test_bulk_enrolment_on_ray_matches_the_single_process_path_and_resumes(
    core: tuple[BioMatch, Principal, Principal], folder: Path, ray_runner: RayRunner
) -> None:
    from biomatch.batch import extract_files, images_by_subject
    from biomatch.cli.enrolment import _enrol_accepted, _sort_extractions

    service, enroller, _ = core
    files = [p for paths in images_by_subject(folder).values() for p in paths]
    # enrol-bulk's own worker processes (one BLAS thread each, as Ray's workers run).
    extracted = extract_files(files, service.settings, "face", workers=2, keep_image=True)
    accepted, single_rejected = _sort_extractions(extracted)
    _enrol_accepted(service, enroller, "single", folder, accepted, single_rejected)

    with pytest.raises(Interrupted):  # stopped after one chunk (of 4 subjects, or the last 2)
        service.enrol_folder(
            enroller, "ray", folder, CountingRunner(ray_runner, stop_after=1),
            subjects_per_chunk=4,
        )  # fmt: skip
    interrupted = len(templates_by_subject(service, "ray"))
    assert interrupted in (2, 4)
    progress: list[tuple[int, int]] = []
    resumed = service.enrol_folder(
        enroller, "ray", folder, ray_runner, subjects_per_chunk=4,
        progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert (resumed.subjects, resumed.already_enrolled) == (6, interrupted)
    assert resumed.enrolled == 6 - interrupted
    assert progress[-1] == (resumed.images, resumed.images)
    assert templates_by_subject(service, "ray") == templates_by_subject(service, "single")
    assert len(templates_by_subject(service, "single")) == 6


def test_dedup_on_ray_matches_the_single_process_path_and_resumes(
    core: tuple[BioMatch, Principal, Principal],
    folder: Path,
    ray_runner: RayRunner,
    tmp_path: Path,
) -> None:
    service, enroller, reviewer = core
    service.enrol_folder(enroller, "single", folder, LocalRunner())
    single = service.deduplicate(reviewer, "single", LocalRunner(), max_fmr=1e-3)
    assert single.subjects == 6
    pairs = [(p.subject_a, p.subject_b) for p in single.duplicates]
    assert pairs == [("obama", "obama_again")]  # and no other pair at FMR 1e-3
    assert single.duplicates[0].estimated_fmr <= 1e-3
    # The pair's best score over all its template pairs: its FMR counts them.
    templates = templates_by_subject(service, "single")
    chances = len(templates["obama"]) * len(templates["obama_again"])
    best_of = service.modality("face").calibration.estimate(single.duplicates[0].score)
    assert single.duplicates[0].estimated_fmr == pytest.approx(best_of.best_of(chances).value)

    on_ray = service.deduplicate(reviewer, "single", ray_runner, max_fmr=1e-3)
    assert on_ray == single

    # Interrupted after one chunk of two subjects, then resumed from the checkpoint.
    checkpoint = tmp_path / "checkpoint"
    first = CountingRunner(ray_runner, stop_after=1)
    with pytest.raises(Interrupted):
        service.deduplicate(
            reviewer, "single", first, max_fmr=1e-3, checkpoint=checkpoint, chunk_subjects=2
        )
    second = CountingRunner(LocalRunner())
    resumed = service.deduplicate(
        reviewer, "single", second, max_fmr=1e-3, checkpoint=checkpoint, chunk_subjects=2
    )
    assert (first.chunks, second.chunks) == (1, 2)  # three chunks in all, none done twice
    assert resumed == single
    with pytest.raises(Exception, match="may not"):
        service.deduplicate(
            enroller.__class__(None, "x", Role.FIELD_OPERATOR), "single", LocalRunner()
        )
