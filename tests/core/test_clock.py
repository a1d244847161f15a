"""Clocks: the timestamps the delivery log is stamped with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.clock import SimulatedClock, SystemClock, timestamp_reader


def test_the_system_clock_reader_gives_the_time_of_day() -> None:
    read = timestamp_reader(SystemClock())
    before = datetime.now(UTC).timestamp()
    stamp = read()
    after = datetime.now(UTC).timestamp()
    assert before - 0.001 <= stamp <= after + 0.001


def test_a_simulated_clock_reader_follows_the_clock_as_it_jumps() -> None:
    start = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    clock = SimulatedClock(start)
    read = timestamp_reader(clock)
    assert abs(read() - start.timestamp()) < 5
    clock.advance_to(start + timedelta(days=3))
    assert abs(read() - (start + timedelta(days=3)).timestamp()) < 5
