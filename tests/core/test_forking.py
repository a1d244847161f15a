"""Watching a forked child: what counts as its silence."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core import forking


class SilentPipe:
    """A child's end that never has a message; each wait takes `takes_s` of the clock."""

    def __init__(self, clock: list[float], takes_s: float) -> None:
        self.clock = clock
        self.takes_s = takes_s

    def poll(self, timeout: float) -> bool:
        self.clock[0] += self.takes_s
        return False


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def test_a_silent_slice_counts_as_long_as_it_waited(clock: list[float]) -> None:
    pipe: Any = SilentPipe(clock, 1.0)
    assert forking.poll_slice(pipe, 1.0) == pytest.approx(1.0)


def test_a_wait_far_longer_than_asked_counts_one_slice_at_most(clock: list[float]) -> None:
    """This process was stopped (Ctrl-Z) during the wait, and the child with it."""
    pipe: Any = SilentPipe(clock, 600.0)
    assert forking.poll_slice(pipe, 1.0) == pytest.approx(2.0)


def test_a_message_is_no_silence() -> None:
    class Ready:
        def poll(self, timeout: float) -> bool:
            return True

    pipe: Any = Ready()
    assert forking.poll_slice(pipe, 1.0) is None


def test_slices_are_a_quarter_of_the_stall_limit_at_most_a_second() -> None:
    assert forking.poll_slice_for(60.0) == 1.0
    assert forking.poll_slice_for(0.4) == pytest.approx(0.1)
