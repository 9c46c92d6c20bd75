"""Batch jobs over whole galleries: bulk enrolment and de-duplication.

Each job splits its work into chunks that a ``ChunkRunner`` runs: in this process
(``LocalRunner``) or as Ray tasks (``RayRunner``: a local Ray by default, a cluster by
address). Both run the same chunk functions on the same chunks, so their results are the
same; a job keeps what finished chunks produced, so a job started again after an
interruption does only what is left."""

from biomatch.jobs.runner import ChunkRunner, LocalRunner, RayRunner, runner_for

__all__ = ["ChunkRunner", "LocalRunner", "RayRunner", "runner_for"]
