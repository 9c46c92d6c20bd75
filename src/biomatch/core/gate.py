"""A bounded extraction queue per worker: at most ``running`` captures decode and template at
once, at most ``waiting`` more wait for a slot; beyond that a request is refused at once
(503 busy, with a Retry-After from the recent time per capture) instead of queueing memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from biomatch.errors import Busy


class ExtractionGate:
    def __init__(self, running: int, waiting: int) -> None:
        self._running = running
        self._limit = running + waiting
        self._slots = threading.Semaphore(running)
        self._admitted = 0
        self._lock = threading.Lock()
        self._seconds_per_capture = 1.0  # a moving average, refined as captures finish

    @contextmanager
    def admit(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self._limit:
                wait = self._seconds_per_capture * self._admitted / self._running
                raise Busy(
                    f"This worker is extracting {self._admitted} captures, its limit; retry "
                    "shortly.",
                    retry_after_s=max(1, math.ceil(wait)),
                )
            self._admitted += 1
        try:
            with self._slots:
                started = time.monotonic()
                yield
                self._learn(time.monotonic() - started)
        finally:
            with self._lock:
                self._admitted -= 1

    def _learn(self, seconds: float) -> None:
        with self._lock:
            self._seconds_per_capture = 0.8 * self._seconds_per_capture + 0.2 * seconds
