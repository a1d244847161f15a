"""Client-side rate limits: LINE's per-channel, per-endpoint allowances, on a fake clock."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ratelimit import (
    LINE_LIMITS,
    WAKE_QUANTUM_S,
    Limit,
    RateLimiter,
    RateLimitWait,
    SlidingWindow,
    TokenBucket,
    shared_limiter,
    wake_delay,
)


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(fake: FakeTime, limits: dict[str, Limit] | None = None) -> RateLimiter:
    return RateLimiter(limits, clock=fake.clock, sleep=fake.sleep)


def test_line_limits() -> None:
    assert LINE_LIMITS["push"] == Limit(2000, 1.0)
    assert LINE_LIMITS["multicast"] == Limit(200, 1.0)
    assert LINE_LIMITS["insight_unit_statistics"] == Limit(60, 3600.0)
    assert RateLimiter().limit_for("quota") == Limit(2000, 1.0)


async def test_push_bursts_one_second_then_keeps_2000_per_second() -> None:
    fake = FakeTime()
    limits = limiter(fake)
    start = fake.now
    for _ in range(2000):
        await limits.acquire("acme", "push")
    assert fake.now == start and limits.waits == 0, "a full bucket never sleeps"
    for _ in range(4000):
        await limits.acquire("acme", "push")
    assert 2.0 <= fake.now - start <= 2.0 + WAKE_QUANTUM_S
    # about one caller in twenty sleeps: waking on a 10 ms boundary, it finds the next slots
    # there (a few more sleep a hair to a boundary they are already at, by float rounding)
    assert 4000 / (2000 * WAKE_QUANTUM_S) <= limits.waits <= 300


async def test_waiting_callers_wake_together_on_boundaries_never_before_their_slot() -> None:
    now = 1000.003
    wakes: list[float] = []

    async def sleep(seconds: float) -> None:
        wakes.append(now + seconds)

    limits = RateLimiter(clock=lambda: now, sleep=sleep)
    await asyncio.gather(*(limits.acquire("acme", "push") for _ in range(2100)))
    slots = [now + (i + 1) / 2000 for i in range(100)]  # past the full bucket, 0.5 ms apart
    assert len(wakes) == 100 and limits.waits == 100
    for wake, slot in zip(wakes, slots, strict=True):
        assert slot <= wake < slot + WAKE_QUANTUM_S
    # 100 slots over 50 ms wake on six boundaries, 1000.01 to 1000.06, not at 100 moments
    assert sorted({round(wake, 9) for wake in wakes}) == pytest.approx(
        [1000.01, 1000.02, 1000.03, 1000.04, 1000.05, 1000.06]
    )


async def test_multicast_is_200_per_second_and_separate_from_push() -> None:
    fake = FakeTime()
    limits = limiter(fake)
    for _ in range(200):
        await limits.acquire("acme", "multicast")
    for _ in range(2000):
        await limits.acquire("acme", "push")
    assert fake.now == 1000.0
    await limits.acquire("acme", "multicast")
    assert fake.sleeps == [pytest.approx(0.01)]  # its slot is 5 ms away: the next boundary


async def test_channels_are_limited_independently() -> None:
    fake = FakeTime()
    limits = limiter(fake)
    for _ in range(200):
        await limits.acquire("one", "multicast")
        await limits.acquire("two", "multicast")
    assert fake.sleeps == []


async def test_hourly_limit_is_a_sliding_window() -> None:
    fake = FakeTime()
    limits = limiter(fake)
    for _ in range(60):
        await limits.acquire("acme", "insight_unit_statistics")
    assert fake.sleeps == []
    await limits.acquire("acme", "insight_unit_statistics")
    assert fake.sleeps == [pytest.approx(3600.0)]
    # Never more than 60 in any hour: the 62nd waits behind the 2nd of the first hour too.
    await limits.acquire("acme", "insight_unit_statistics")
    assert fake.now == pytest.approx(1000.0 + 3600.0)


def test_sliding_window_counts_any_hour() -> None:
    window = SlidingWindow(3, 3600.0)
    assert window.try_take(0.0) == 0.0
    assert window.try_take(1000.0) == 0.0
    assert window.try_take(2000.0) == 0.0
    assert window.try_take(3000.0) == pytest.approx(600.0)
    assert window.try_take(3600.0) == 0.0  # the grant at 0 has left the window
    assert window.try_take(3700.0) == pytest.approx(900.0)


async def test_max_wait_refuses_without_using_a_slot() -> None:
    fake = FakeTime()
    limits = limiter(fake, {"insight_unit_statistics": Limit(1, 3600.0)})
    await limits.acquire("acme", "insight_unit_statistics", max_wait_s=30)
    with pytest.raises(RateLimitWait) as caught:
        await limits.acquire("acme", "insight_unit_statistics", max_wait_s=30)
    assert "1 requests per hour" in str(caught.value) and "60 min" in str(caught.value)
    assert caught.value.wait_s == pytest.approx(3600.0)
    fake.now += 3600.0
    await limits.acquire("acme", "insight_unit_statistics", max_wait_s=30)
    assert fake.sleeps == []


def test_token_bucket_refuses_without_waiting_on_the_server_side() -> None:
    bucket = TokenBucket(rate=10.0, capacity=10.0, now=0.0)
    assert all(bucket.try_take(0.0) == 0.0 for _ in range(10))
    assert bucket.try_take(0.0) == pytest.approx(0.1)
    assert bucket.try_take(0.05) == pytest.approx(0.05)
    assert bucket.try_take(0.1) == 0.0
    assert bucket.try_take(100.0) == 0.0 and bucket.tokens == pytest.approx(9.0)


async def test_back_off_pauses_an_endpoint_briefly_and_does_not_stack() -> None:
    fake = FakeTime()
    limits = limiter(fake)
    limits.back_off("acme", "push", 0.5)
    limits.back_off("acme", "push", 0.5)
    assert limits.try_acquire("acme", "push") == pytest.approx(0.5 + 1 / 2000)
    await limits.acquire("acme", "push")
    assert sum(fake.sleeps) == pytest.approx(0.51)  # the slot, 0.5005 s, to its boundary
    assert limits.try_acquire("acme", "multicast") == 0.0

    hourly = limiter(fake)
    hourly.back_off("acme", "insight_deliveries", 5.0)
    assert hourly.try_acquire("acme", "insight_deliveries") == pytest.approx(5.0)


async def test_concurrent_callers_share_the_allowance_in_real_time() -> None:
    limits = RateLimiter({"push": Limit(10, 1.0)})
    started = time.monotonic()
    await asyncio.gather(*(limits.acquire("acme", "push") for _ in range(15)))
    # 10 at once from the full bucket, then 5 more at 10/s: at least half a second.
    assert time.monotonic() - started >= 0.45
    assert limits.waits == 5


def test_shared_limiter_is_one_per_process() -> None:
    assert shared_limiter() is shared_limiter()


@given(
    now=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    wait=st.floats(min_value=1e-6, max_value=7200.0, allow_nan=False),
)
def test_a_wake_is_never_before_its_slot_nor_a_boundary_after(now: float, wait: float) -> None:
    delay = wake_delay(now, wait)
    assert wait <= delay <= wait + WAKE_QUANTUM_S * (1 + 1e-6)
