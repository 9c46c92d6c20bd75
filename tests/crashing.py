"""Kill -9 during enrolment, then check what survived: every acknowledged enrolment is there
whole, no subject is half-written, the audit log verifies. Shared by tests/test_crash.py
(a few runs) and benchmarks/crash_consistency.py (N = 50)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

IMAGES_PER_SUBJECT = 2

# The child: enrol subjects of two images each, one after another, and say "ack <id>" on
# stdout once each enrol() has returned (its transaction committed).
CHILD = """
import sys
from matplotlib import cbook
from biomatch.accountability.principal import SYSTEM
from biomatch.accountability.roles import Role
from biomatch.config import Settings
from biomatch.service import BioMatch

with cbook.get_sample_data("grace_hopper.jpg") as handle:
    photo = handle.read()
core = BioMatch(Settings(data_dir=sys.argv[1]))
names = {o.name for o in core.list_operators(SYSTEM)}
if "crash-enroller" not in names:
    core.create_operator(SYSTEM, "crash-enroller", Role.ENROLLER)
    core.create_gallery(SYSTEM, "crash")
enroller = core.authenticate(core.create_operator(SYSTEM, f"e{sys.argv[2]}", Role.ENROLLER).token)
print("ready", flush=True)
for number in range(1000):
    subject = f"r{sys.argv[2]}-{number}"
    core.enrol(enroller, "crash", subject, [photo] * IMAGES)
    print("ack", subject, flush=True)
""".replace("IMAGES", str(IMAGES_PER_SUBJECT))


@dataclass
class CrashRun:
    run: int
    acknowledged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    subjects_found: int = 0


def crash_once(data_dir: Path, run: int, rng: random.Random, env: dict[str, str]) -> CrashRun:
    """Start the child, let it acknowledge 1-3 enrolments, kill -9 it at a random moment
    within the next one, then check the data directory."""
    result = CrashRun(run)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        result.problems.append(
            f"child did not start: {child.stderr.read() if child.stderr else ''}"
        )
        return result
    wanted = rng.randint(1, 3)
    while len(result.acknowledged) < wanted:
        line = child.stdout.readline().split()
        if not line:
            break
        result.acknowledged.append(line[1])
    time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside the next enrolment
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    result.acknowledged += [line.split()[1] for line in child.stdout.read().splitlines() if line]
    result.problems += check(data_dir, result)
    return result


def check(data_dir: Path, result: CrashRun) -> list[str]:
    """The invariants, on a fresh core over what the killed process left."""
    from biomatch.accountability.principal import Principal
    from biomatch.accountability.roles import Role
    from biomatch.config import Settings
    from biomatch.service import BioMatch
    from biomatch.store import Gallery, Sample, Subject, Template

    problems = []
    core = BioMatch(Settings(data_dir=data_dir))
    try:
        with core.db.transaction() as session:
            gallery = session.query(Gallery).filter_by(name="crash").one()
            samples: dict[str, list[int]] = {}
            for subject in session.query(Subject).filter_by(gallery_id=gallery.id):
                counts = [
                    session.query(Template).filter_by(sample_id=sample.id).count()
                    for sample in session.query(Sample).filter_by(subject_id=subject.id)
                ]
                samples[subject.external_id] = counts
        result.subjects_found = len(samples)
        lost = [s for s in result.acknowledged if s not in samples]
        if lost:
            problems.append(f"acknowledged but lost: {lost}")
        half = {s: c for s, c in samples.items() if len(c) != IMAGES_PER_SUBJECT or 0 in c}
        if half:
            problems.append(f"half-written subjects (templates per sample): {half}")
        report = core.verify_audit(Principal(None, "auditor", Role.AUDITOR))
        if not report.intact:
            problems.append(f"audit log: {report.finding}: {report.problem}")
        enrolled = {
            e.subject for e in core.audit_entries(Principal(None, "a", Role.AUDITOR), 0, 10**6)
            if e.action == "subject.enrol"
        }  # fmt: skip
        if enrolled != set(samples):
            problems.append(f"audit and store disagree: {sorted(enrolled ^ set(samples))}")
    finally:
        core.close()
    return problems
