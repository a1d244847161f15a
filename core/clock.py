"""Clocks: the real one, and the simulated one a replay runs on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

JST = timezone(timedelta(hours=9), "UTC+9")
"""LINE's day: its statistics' `date`, `from` and `to` are calendar days in UTC+9."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """Starts at a fixture's `clock`, runs at real speed, and can jump ahead to a due time.

    Replays wait for nothing: a scheduled campaign's time is reached by `advance_to`.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs a time with an offset")
        self._start = start
        self._origin = time.monotonic()
        self._skipped = timedelta(0)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin) + self._skipped

    def advance_to(self, moment: datetime) -> None:
        gap = moment - self.now()
        if gap > timedelta(0):
            self._skipped += gap


def unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def timestamp_reader(clock: Clock) -> Callable[[], float]:
    """POSIX seconds from `clock`, for what reads it once per request: the system clock's reader
    is `time.time` itself, a fifth of the cost of a datetime made and converted each time."""
    if type(clock) is SystemClock:
        return time.time
    return lambda: clock.now().timestamp()
