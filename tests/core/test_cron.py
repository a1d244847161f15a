"""Cron with Treasure Data's semantics: the day rule, every field syntax, zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.cron import CronError, latest_run, next_runs, parse, zone

JAN_1 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def runs(expr: str, count: int = 5, start: datetime = JAN_1, tz: str = "UTC") -> list[str]:
    return [moment.isoformat() for moment in next_runs(expr, start, count, tz)]


def days(expr: str, count: int = 6, start: datetime = JAN_1) -> list[int]:
    return [moment.day for moment in next_runs(expr, start, count, "UTC")]


# --- Treasure Data's day rule -----------------------------------------------------------------


def test_the_seed_example_runs_every_monday() -> None:
    assert runs("0 0 1 * 1", 4) == [
        "2024-01-08T00:00:00+00:00",
        "2024-01-15T00:00:00+00:00",
        "2024-01-22T00:00:00+00:00",
        "2024-01-29T00:00:00+00:00",
    ]
    schedule = parse("0 0 1 * 1")
    assert schedule is not None and schedule.ignored == "day-of-month"
    note = schedule.explain()
    assert note is not None and "day-of-week fires more often" in note


def test_the_more_frequent_day_of_month_wins_over_a_weekday() -> None:
    schedule = parse("0 0 1-10 * 1")
    assert schedule is not None and schedule.ignored == "day-of-week"
    assert days("0 0 1-10 * 1", 10, JAN_1 - timedelta(days=1)) == list(range(1, 11))


def test_the_month_field_counts_when_measuring_frequency() -> None:
    # In February a weekday (4-5 days) fires more often than the 30th and 31st (never).
    schedule = parse("0 0 30,31 2,3 mon")
    assert schedule is not None and schedule.ignored == "day-of-month"
    # With a plain month, the 1st-15th (15 days) beats Mondays and Fridays (8-10 days).
    schedule = parse("0 0 1-15 3 mon,fri")
    assert schedule is not None and schedule.ignored == "day-of-week"


def test_a_tie_goes_to_day_of_week() -> None:
    schedule = parse("0 0 1-31 * 0-6")
    assert schedule is not None and schedule.ignored == "day-of-month"
    assert schedule.day_counts is not None and schedule.day_counts[0] == schedule.day_counts[1]
    assert "tie goes to day-of-week" in (schedule.explain() or "")


def test_one_restricted_day_field_is_plain_cron() -> None:
    assert days("0 0 * * 1", 3) == [8, 15, 22]
    assert days("0 0 15 * *", 2) == [15, 15]
    schedule = parse("0 0 15 * *")
    assert schedule is not None and schedule.ignored is None and schedule.explain() is None


# --- field syntax -----------------------------------------------------------------------------


def test_single_values_and_wildcards() -> None:
    assert runs("0 * * * *", 2) == ["2024-01-01T01:00:00+00:00", "2024-01-01T02:00:00+00:00"]
    assert runs("0 0 * * *", 1) == ["2024-01-02T00:00:00+00:00"]
    assert runs("0 0 1 * *", 2) == ["2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"]


def test_ranges_and_lists() -> None:
    assert days("0 0 1-3 * *", 3) == [2, 3, 1]
    assert days("0 0 1,11,21 * *", 3) == [11, 21, 1]


def test_steps_follow_treasure_data_examples() -> None:
    assert days("0 0 */5 * *", 7) == [5, 10, 15, 20, 25, 30, 5]
    assert days("0 0 5,*/10,25 * *", 6) == [5, 10, 20, 25, 30, 5]
    hours = [m.hour for m in next_runs("30 */2 1 * *", JAN_1, 4, "UTC")]
    assert hours == [0, 2, 4, 6]
    months = [m.month for m in next_runs("0 0 1 */3 *", JAN_1, 4, "UTC")]
    assert months == [3, 6, 9, 12]
    minutes = [m.minute for m in next_runs("*/15 0 * * *", JAN_1, 3, "UTC")]
    assert minutes == [15, 30, 45]


def test_range_steps_start_at_the_range() -> None:
    assert days("0 0 1-10/3 * *", 4) == [4, 7, 10, 1]
    minutes = [m.minute for m in next_runs("5/20 * * * *", JAN_1, 3, "UTC")]
    assert minutes == [5, 25, 45]


def test_names_are_case_insensitive_and_work_in_ranges() -> None:
    weekdays = [m.weekday() for m in next_runs("0 9 * * MON-fri", JAN_1, 6, "UTC")]
    assert weekdays == [0, 1, 2, 3, 4, 0]
    assert [m.month for m in next_runs("0 0 1 jan,Jul *", JAN_1, 2, "UTC")] == [7, 1]
    assert [m.weekday() for m in next_runs("0 0 * * sun", JAN_1, 1, "UTC")] == [6]


@pytest.mark.parametrize(
    ("preset", "plain"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_presets(preset: str, plain: str) -> None:
    assert runs(preset, 3) == runs(plain, 3)


def test_empty_means_no_schedule() -> None:
    assert parse("") is None and parse("   ") is None
    assert next_runs("", JAN_1, 5, "UTC") == []


def test_runs_are_strictly_after_the_start() -> None:
    assert runs("0 0 * * *", 1, datetime(2024, 1, 2, tzinfo=UTC)) == ["2024-01-03T00:00:00+00:00"]
    just_before = datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert runs("0 0 * * *", 1, just_before) == ["2024-01-02T00:00:00+00:00"]


def test_leap_day_schedules_wait_for_a_leap_year() -> None:
    assert runs("0 0 29 2 *", 2, datetime(2024, 3, 1, tzinfo=UTC)) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expr", "field", "words"),
    [
        ("60 * * * *", "minute", "out of range 0-59"),
        ("0 24 * * *", "hour", "out of range 0-23"),
        ("0 0 0 * *", "day-of-month", "out of range 1-31"),
        ("0 0 32 * *", "day-of-month", "out of range 1-31"),
        ("0 0 * 13 *", "month", "out of range 1-12"),
        ("0 0 * * 7", "day-of-week", "Sunday is 0"),
        ("0 0 10-2 * *", "day-of-month", "runs backwards"),
        ("*/0 * * * *", "minute", "step 0"),
        ("*/61 * * * *", "minute", "over 59"),
        ("0 0 * * funday", "day-of-week", "not a day-of-week name"),
        ("0 0 1,,2 * *", "day-of-month", "empty list item"),
        ("0 0 L * *", "day-of-month", "Quartz"),
        ("0 0 ? * *", "day-of-month", "Quartz"),
        ("0 0 * * 1#2", "day-of-week", "Quartz"),
        ("jan * * * *", "minute", "takes no names"),
        ("0 0 31 2 *", "day-of-month", "never runs"),
        ("0 0 30,31 2 *", "day-of-month", "never runs"),
    ],
)
def test_bad_fields_are_named(expr: str, field: str, words: str) -> None:
    with pytest.raises(CronError) as caught:
        parse(expr)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 0 * *", "has 4 field(s)"),
        ("0 0 * * * *", "has 6 field(s)"),
        ("0  0 * * *", "single spaces"),
        ("0\t0 * * *", "single spaces"),
        ("@reboot", "unknown preset"),
    ],
)
def test_bad_shapes_are_explained(expr: str, words: str) -> None:
    with pytest.raises(CronError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse(expr)


def test_surrounding_blanks_are_ignored() -> None:
    assert runs(" 0 0 * * * ", 1) == runs("0 0 * * *", 1)


# --- time zones -------------------------------------------------------------------------------


def test_times_are_in_the_zone_with_their_offset() -> None:
    # JAN_1 is 09:00 in Tokyo: strictly after it, the first run is the next day.
    assert runs("0 9 * * *", 2, tz="Asia/Tokyo") == [
        "2024-01-02T09:00:00+09:00",
        "2024-01-03T09:00:00+09:00",
    ]
    assert runs("0 10 * * *", 1, tz="Asia/Tokyo") == ["2024-01-01T10:00:00+09:00"]


def test_a_naive_start_is_wall_time_in_the_zone() -> None:
    start = datetime(2024, 1, 1, 9, 0)
    assert [m.isoformat() for m in next_runs("0 9 * * *", start, 1, "Asia/Tokyo")] == [
        "2024-01-02T09:00:00+09:00"
    ]


def test_abbreviations_are_refused_with_a_suggestion() -> None:
    with pytest.raises(CronError, match="America/Los_Angeles"):
        zone("PST")
    with pytest.raises(CronError, match="not an IANA time zone name"):
        zone("XYZ")
    with pytest.raises(CronError, match="did you mean Asia/Tokyo"):
        zone("asia/tokyo")
    with pytest.raises(CronError, match="not a known IANA"):
        zone("Mars/Olympus")
    assert zone("UTC").key == "UTC"


# --- DST --------------------------------------------------------------------------------------

NEW_YORK = "America/New_York"


def test_a_time_in_the_spring_gap_runs_shifted_forward() -> None:
    # 2024-03-10: clocks go from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    assert runs("30 2 * * *", 3, datetime(2024, 3, 9, tzinfo=UTC), NEW_YORK) == [
        "2024-03-09T02:30:00-05:00",
        "2024-03-10T03:30:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]


def test_hourly_runs_skip_the_missing_hour_once() -> None:
    start = datetime(2024, 3, 10, 5, tzinfo=UTC)  # 00:00 EST
    assert runs("0 * * * *", 3, start, NEW_YORK) == [
        "2024-03-10T01:00:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T04:00:00-04:00",
    ]


def test_a_daily_time_in_the_autumn_overlap_runs_once() -> None:
    # 2024-11-03: 01:00-02:00 happens twice (EDT, then EST).
    assert runs("30 1 * * *", 3, datetime(2024, 11, 2, tzinfo=UTC), NEW_YORK) == [
        "2024-11-02T01:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_an_every_hour_schedule_runs_in_both_overlapping_hours() -> None:
    start = datetime(2024, 11, 3, 4, tzinfo=UTC)  # 00:00 EDT
    assert runs("30 * * * *", 4, start, NEW_YORK) == [
        "2024-11-03T00:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:30:00-05:00",
    ]


def test_starting_inside_the_overlap() -> None:
    second_one_oclock = datetime(2024, 11, 3, 6, 10, tzinfo=UTC)  # 01:10 EST
    assert runs("30 1 * * *", 1, second_one_oclock, NEW_YORK) == ["2024-11-04T01:30:00-05:00"]
    assert runs("30 * * * *", 1, second_one_oclock, NEW_YORK) == ["2024-11-03T01:30:00-05:00"]


def test_runs_are_in_order_across_a_whole_year_of_zones() -> None:
    for tz in ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Tokyo"):
        moments = next_runs("*/30 * * * *", datetime(2024, 1, 1, tzinfo=UTC), 2000, tz)
        instants = [m.astimezone(UTC) for m in moments]
        assert instants == sorted(set(instants)), tz


# --- what a scheduler is due to run -----------------------------------------------------------


def test_latest_run_is_the_last_due_time_and_none_before_it() -> None:
    schedule = parse("0 * * * *")
    assert schedule is not None
    tz = zone("UTC")
    after = datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert latest_run(schedule, after=after, until=after.replace(minute=59), tz=tz) is None
    until = datetime(2024, 1, 1, 13, 5, tzinfo=UTC)
    assert latest_run(schedule, after=after, until=until, tz=tz) == datetime(
        2024, 1, 1, 13, tzinfo=UTC
    )
    exactly = datetime(2024, 1, 1, 11, tzinfo=UTC)
    assert latest_run(schedule, after=after, until=exactly, tz=tz) == exactly


def test_latest_run_finds_sparse_schedules_far_back() -> None:
    schedule = parse("@yearly")
    assert schedule is not None
    found = latest_run(
        schedule,
        after=datetime(2020, 6, 1, tzinfo=UTC),
        until=datetime(2024, 6, 1, tzinfo=UTC),
        tz=zone("Asia/Tokyo"),
    )
    assert found is not None and found.isoformat() == "2024-01-01T00:00:00+09:00"
