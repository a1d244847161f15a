"""`lcc cron next` as an operator runs it: one ISO-8601 time per line, exit 2 on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

LCC = [sys.executable, "-m", "tui", "cron", "next"]


def cron(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir)}
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_seed_example_prints_mondays(data_dir: Path) -> None:
    result = cron(
        "0 0 1 * 1",
        "--from",
        "2024-01-01T00:00:00+09:00",
        "--count",
        "3",
        "--tz",
        "Asia/Tokyo",
        data_dir=data_dir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2024-01-08T00:00:00+09:00",
        "2024-01-15T00:00:00+09:00",
        "2024-01-22T00:00:00+09:00",
    ]
    assert "day-of-month is ignored" in result.stderr


def test_defaults_are_five_times_after_now_in_utc(data_dir: Path) -> None:
    result = cron("@hourly", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    times = [datetime.fromisoformat(line) for line in lines]
    assert all(t.utcoffset() is not None and t.minute == 0 for t in times)
    assert all(line.endswith("+00:00") for line in lines)


def test_a_naive_from_is_read_in_the_zone(data_dir: Path) -> None:
    result = cron(
        "0 9 * * mon-fri",
        "--from",
        "2024-01-05T09:00",
        "--count",
        "2",
        "--tz",
        "Asia/Tokyo",
        data_dir=data_dir,
    )
    assert result.stdout.splitlines() == ["2024-01-08T09:00:00+09:00", "2024-01-09T09:00:00+09:00"]


def test_dst_gap_in_new_york(data_dir: Path) -> None:
    result = cron(
        "30 2 * * *",
        "--from",
        "2024-03-10T00:00:00-05:00",
        "--count",
        "1",
        "--tz",
        "America/New_York",
        data_dir=data_dir,
    )
    assert result.stdout.splitlines() == ["2024-03-10T03:30:00-04:00"]


def test_no_schedule_prints_nothing(data_dir: Path) -> None:
    result = cron("", data_dir=data_dir)
    assert result.returncode == 0 and result.stdout == ""
    assert "no schedule" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("0 0 32 * *",), "day-of-month: 32 is out of range 1-31"),
        (("0 0 * * 7",), "day-of-week: 7 is out of range 0-6 (Sunday is 0)"),
        (("0 0 * *",), "has 4 field(s)"),
        (("0  0 * * *",), "single spaces"),
        (("@daily", "--tz", "PST"), "America/Los_Angeles"),
        (("@daily", "--count", "0"), "--count: must be between 1 and"),
        (("@daily", "--from", "next tuesday"), "--from"),
    ],
)
def test_bad_input_exits_2_and_says_why(args: tuple[str, ...], words: str, data_dir: Path) -> None:
    result = cron(*args, data_dir=data_dir)
    assert result.returncode == 2
    assert words in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
