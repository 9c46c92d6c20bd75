"""Per-operator token buckets, so that one account cannot sweep a gallery."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from biomatch.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, what: str) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._what = what
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, operator: str) -> None:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(operator, _Bucket(self._capacity, now))
            bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self._rate
                raise RateLimited(
                    f"Operator {operator!r} exceeded {int(self._capacity)} {self._what} per "
                    f"minute; retry in {wait:.0f} s.",
                    retry_after_s=round(wait, 1),
                )
            bucket.tokens -= 1.0
