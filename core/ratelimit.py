"""Client-side rate limits: stay inside LINE's per-channel, per-endpoint limits.

LINE limits each channel per endpoint: push (and most endpoints) 2,000 requests per second,
multicast 200 per second, the Insight statistics endpoints 60 per hour. Per-second limits are
token buckets holding one second's allowance, so a burst never exceeds what LINE's own bucket
takes; hourly limits are sliding windows (never more than 60 in any hour), because a bucket
refilling one token a minute would let 119 through in the first hour.

Acquiring is a reservation: a caller takes a token even when the bucket is empty and sleeps once,
until the first 10 ms boundary at or after its slot (`WAKE_QUANTUM_S`): never early, and the
callers of one boundary wake together. While tokens are available `acquire` does not suspend at
all, so the limiter costs a few dictionary and float operations per request.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from core.errors import LccError


@dataclass(frozen=True)
class Limit:
    count: int
    per_s: float

    @property
    def rate(self) -> float:
        """Requests per second on average."""
        return self.count / self.per_s

    def describe(self) -> str:
        if self.per_s == 1:
            return f"{self.count:,} requests per second"
        if self.per_s == 3600:
            return f"{self.count:,} requests per hour"
        return f"{self.count:,} requests per {self.per_s:g} s"


PER_SECOND = 1.0
PER_HOUR = 3600.0
WAKE_QUANTUM_S = 0.01
"""Waiting callers wake on boundaries this far apart. At LINE's 2,000 pushes per second, slots
are half a millisecond apart: waking each caller exactly at its own made the event loop wake
2,000 times a second for one caller each. On 10 ms boundaries twenty callers share a wake-up
(and their requests reach LINE together); none is sent before its slot."""
DEFAULT_LIMIT = Limit(2000, PER_SECOND)

LINE_LIMITS: dict[str, Limit] = {
    "push": Limit(2000, PER_SECOND),
    "multicast": Limit(200, PER_SECOND),
    "broadcast": Limit(60, PER_HOUR),
    "narrowcast": Limit(60, PER_HOUR),
    "insight_unit_statistics": Limit(60, PER_HOUR),
    "insight_deliveries": Limit(60, PER_HOUR),
    "insight_event": Limit(60, PER_HOUR),
    "insight_followers": Limit(60, PER_HOUR),
    "insight_demographic": Limit(60, PER_HOUR),
}
"""Endpoint names used by `core.line_client`; anything else gets `DEFAULT_LIMIT` (2,000/s)."""


class RateLimitWait(LccError):
    """Waiting for the next slot would take longer than the caller allows."""

    def __init__(self, endpoint: str, limit: Limit, wait_s: float) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self.wait_s = wait_s
        minutes = wait_s / 60
        when = f"{minutes:.0f} min" if minutes >= 1 else f"{wait_s:.1f} s"
        super().__init__(
            f"LINE allows {limit.describe()} to {endpoint}; the next slot is in {when}"
        )


class TokenBucket:
    """Capacity `capacity`, refilled continuously at `rate`; tokens may go negative (reserved)."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def reserve(self, now: float) -> float:
        """Take a token; seconds until it is really there (0.0 when at once)."""
        self._refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0.0 else -self.tokens / self.rate

    def cancel(self) -> None:
        self.tokens += 1.0

    def try_take(self, now: float) -> float:
        """Take a token only if one is there: 0.0 when taken, else seconds until one is."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def back_off(self, now: float, seconds: float) -> None:
        """Empty the bucket so the next token comes `seconds` from now (not cumulative)."""
        self._refill(now)
        self.tokens = min(self.tokens, -self.rate * seconds)


class SlidingWindow:
    """At most `count` grants in any `window` seconds; grants may be reserved in the future."""

    __slots__ = ("blocked_until", "count", "grants", "window")

    def __init__(self, count: int, window: float) -> None:
        self.count = count
        self.window = window
        self.grants: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0

    def _slot(self, now: float) -> float:
        while self.grants and self.grants[0] <= now - self.window:
            self.grants.popleft()
        slot = max(now, self.blocked_until)
        if len(self.grants) >= self.count:
            slot = max(slot, self.grants[-self.count] + self.window)
        if self.grants:
            slot = max(slot, self.grants[-1])
        return slot

    def reserve(self, now: float) -> float:
        slot = self._slot(now)
        self.grants.append(slot)
        return slot - now

    def cancel(self) -> None:
        if self.grants:
            self.grants.pop()

    def try_take(self, now: float) -> float:
        slot = self._slot(now)
        if slot <= now:
            self.grants.append(now)
            return 0.0
        return slot - now

    def back_off(self, now: float, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, now + seconds)


Bucket = TokenBucket | SlidingWindow


def wake_delay(now: float, wait: float) -> float:
    """From `now`, the sleep to the first `WAKE_QUANTUM_S` boundary at least `wait` away."""
    boundary = math.ceil((now + wait) / WAKE_QUANTUM_S) * WAKE_QUANTUM_S - now
    return max(boundary, wait)


class RateLimiter:
    """Token buckets per (channel, endpoint) with LINE's limits by default.

    One limiter should serve every client of a process that sends for the same channels, so
    that two campaigns on one channel share LINE's allowance (`shared_limiter()`).
    """

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        *,
        default: Limit = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        back_off_s: float = 1.0,
    ) -> None:
        self._limits = dict(LINE_LIMITS if limits is None else limits)
        self._default = default
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.back_off_s = back_off_s
        self.waits = 0
        """How many acquisitions had to sleep (for benchmarks and tests)."""

    def reset(self) -> None:
        """Forget every bucket (full allowance again)."""
        self._buckets.clear()
        self.waits = 0

    def limit_for(self, endpoint: str) -> Limit:
        return self._limits.get(endpoint, self._default)

    def _bucket(self, channel: str, endpoint: str) -> Bucket:
        key = (channel, endpoint)
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.limit_for(endpoint)
            if limit.per_s <= PER_SECOND:
                bucket = TokenBucket(limit.rate, limit.rate * PER_SECOND, self._clock())
            else:
                bucket = SlidingWindow(limit.count, limit.per_s)
            self._buckets[key] = bucket
        return bucket

    async def acquire(
        self, channel: str, endpoint: str, *, max_wait_s: float | None = None
    ) -> None:
        """Wait for this request's slot; `RateLimitWait` when it is further than `max_wait_s`."""
        bucket = self._bucket(channel, endpoint)
        now = self._clock()
        wait = bucket.reserve(now)
        if wait <= 0.0:
            return
        if max_wait_s is not None and wait > max_wait_s:
            bucket.cancel()
            raise RateLimitWait(endpoint, self.limit_for(endpoint), wait)
        self.waits += 1
        await self._sleep(wake_delay(now, wait))

    def try_acquire(self, channel: str, endpoint: str) -> float:
        """Never waits (the sandbox server): 0.0 when granted, else seconds until a slot."""
        return self._bucket(channel, endpoint).try_take(self._clock())

    def back_off(self, channel: str, endpoint: str, seconds: float | None = None) -> None:
        """LINE answered 429 (rate limit): pause this endpoint briefly for every caller."""
        self._bucket(channel, endpoint).back_off(
            self._clock(), self.back_off_s if seconds is None else seconds
        )


_SHARED: RateLimiter | None = None


def shared_limiter() -> RateLimiter:
    """The process-wide limiter with LINE's limits (created on first use)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = RateLimiter()
    return _SHARED
