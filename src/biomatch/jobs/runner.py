"""Where a job's chunks run: in this process, or as Ray tasks (local, or a cluster)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

C = TypeVar("C")
R = TypeVar("R")

# Chunk functions take (context, chunk): the context is what every chunk shares (put once
# into Ray's object store), the chunk its own part of the work.
ChunkFunction = Callable[[Any, C], R]


class ChunkRunner(Protocol):
    def run(
        self, function: ChunkFunction[C, R], context: Any, chunks: Sequence[tuple[int, C]]
    ) -> Iterator[tuple[int, R]]:
        """(chunk number, result) of each chunk, as each finishes."""
        ...


class LocalRunner:
    """Every chunk in this process, in order."""

    def run(
        self, function: ChunkFunction[C, R], context: Any, chunks: Sequence[tuple[int, C]]
    ) -> Iterator[tuple[int, R]]:
        for number, chunk in chunks:
            yield number, function(context, chunk)


class RayRunner:
    """Chunks as Ray tasks. ``address`` None starts a Ray of this machine's cores for the
    job (it ends with this process); otherwise it joins that cluster ("auto", "ray://host:10001").
    At most ``in_flight`` chunks are queued at a time, so results stream back as they come."""

    def __init__(self, address: str | None = None, *, cpus: int | None = None) -> None:
        self.address = address
        self.cpus = cpus
        self.in_flight = 4 * (cpus or os.cpu_count() or 1)

    def run(
        self, function: ChunkFunction[C, R], context: Any, chunks: Sequence[tuple[int, C]]
    ) -> Iterator[tuple[int, R]]:
        ray = self._start()
        remote = ray.remote(function)
        shared = ray.put(context)
        pending: dict[Any, int] = {}
        queue = list(chunks)
        while queue or pending:
            while queue and len(pending) < self.in_flight:
                number, chunk = queue.pop(0)
                pending[remote.remote(shared, chunk)] = number
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)

    def _start(self) -> Any:
        import ray

        if not ray.is_initialized():
            if self.address is None:
                ray.init(
                    num_cpus=self.cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    object_store_memory=256 * 1024 * 1024,
                )
            else:
                ray.init(address=self.address, log_to_driver=False)
        return ray


def runner_for(use_ray: bool, address: str | None = None) -> ChunkRunner:
    """The runner a command's --ray / --ray-address options ask for."""
    if use_ray or address is not None:
        return RayRunner(address)
    return LocalRunner()
