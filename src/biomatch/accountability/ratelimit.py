"""Token buckets: search and request limits per operator, failed-login throttling.

The interface other modules use is small:

- ``Buckets`` (protocol): ``take(key, capacity, per_second, cost) -> seconds to wait``; 0.0
  means allowed (and ``cost`` tokens were taken), a positive value means refused (nothing
  taken). ``cost=0`` only asks whether a token is there; a negative cost gives tokens back.
- ``LocalBuckets``: in this process (the default).
- ``RedisBuckets``: one atomic Lua script per call, so every worker and instance that shares
  the Redis server (``BIOMATCH_REDIS_URL``) shares each bucket; where Redis does not answer,
  the call falls back to this process's buckets (logged) rather than failing the request.
- ``RateLimiter``: a named per-minute limit over ``Buckets``; ``take(key)`` raises
  ``RateLimited`` (HTTP 429 with Retry-After).
- ``buckets_for(redis_url, namespace)``: the backend the configuration asks for.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from biomatch.errors import LoginThrottled, RateLimited

if TYPE_CHECKING:
    import redis

log = logging.getLogger("biomatch.ratelimit")


class Buckets(Protocol):
    def take(self, key: str, capacity: float, per_second: float, cost: float = 1.0) -> float: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class LocalBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: float, per_second: float, cost: float = 1.0) -> float:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(capacity, now))
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
            needed = max(cost, 1.0)
            if cost >= 0 and bucket.tokens < needed:
                return (needed - bucket.tokens) / per_second
            bucket.tokens = min(capacity, bucket.tokens - cost)
            return 0.0


# KEYS[1] bucket; ARGV capacity, per_second, cost. Redis's clock, so workers agree.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local needed = math.max(cost, 1)
local wait = 0
if cost >= 0 and tokens < needed then
  wait = (needed - tokens) / rate
else
  tokens = math.min(capacity, tokens - cost)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class RedisBuckets:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"biomatch:{namespace}:bucket:"
        self._script = client.register_script(_TAKE)
        self._fallback = LocalBuckets()

    def take(self, key: str, capacity: float, per_second: float, cost: float = 1.0) -> float:
        import redis

        try:
            wait = self._script(keys=[self._prefix + key], args=[capacity, per_second, cost])
            return float(wait)
        except redis.RedisError as exc:
            log.warning("Redis did not answer (%s); limiting in this process only", exc)
            return self._fallback.take(key, capacity, per_second, cost)


def redis_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def buckets_for(redis_url: str | None, namespace: str) -> Buckets:
    if redis_url:
        return RedisBuckets(redis_client(redis_url), namespace)
    return LocalBuckets()


class RateLimiter:
    def __init__(self, per_minute: int, what: str, buckets: Buckets | None = None) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._what = what
        self._buckets = buckets or LocalBuckets()

    def take(self, operator: str) -> None:
        wait = self._buckets.take(f"{self._what}:{operator}", self._capacity, self._rate)
        if wait > 0:
            raise RateLimited(
                f"Operator {operator!r} exceeded {int(self._capacity)} {self._what} per "
                f"minute; retry in {wait:.0f} s.",
                retry_after_s=round(wait, 1),
            )


class LoginThrottle:
    """Failed logins, counted per client address and per token id: each attempt takes a token
    from both buckets before any secret is checked (so attempts running at once cannot
    overshoot), a successful one gives them back. With a bucket empty, attempts are refused
    (429 login_throttled) until it refills: ``per_minute`` failures a minute."""

    def __init__(self, per_minute: int, buckets: Buckets | None = None) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._buckets = buckets or LocalBuckets()

    def admit(self, keys: list[str]) -> None:
        taken: list[str] = []
        for key in keys:
            wait = self._take(key, 1.0)
            if wait > 0:
                self.succeeded(taken)
                raise LoginThrottled(
                    f"Too many failed logins for this {key.split(':')[0]}; retry in {wait:.0f} s.",
                    retry_after_s=round(wait, 1),
                )
            taken.append(key)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._take(key, -1.0)

    def exhausted(self, keys: list[str]) -> bool:
        """Whether a failure just now emptied one of the buckets."""
        return any(self._take(key, 0.0) > 0 for key in keys)

    def _take(self, key: str, cost: float) -> float:
        return self._buckets.take(f"login-failures:{key}", self._capacity, self._rate, cost)
