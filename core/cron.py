"""Schedules with Treasure Data's cron semantics, in a named time zone.

Treasure Data's scheduler documents one rule that ordinary cron does not have: when both
day-of-month and day-of-week are restricted, "the specification requesting to execute more
often is followed while the other schedule specification is ignored" (`0 0 1 * 1` runs every
Monday, not on the 1st and not only on Mondays that are the 1st). Everything else is classic
five-field cron. The decisions this module makes where Treasure Data is silent (docs/cron.md):

* "More often" is the number of days each field matches, with the month field applied, over
  the 28 years 2001-2028 (a whole cycle of weekdays against dates in this century: 10,227
  days). On a tie day-of-week wins, as in Treasure Data's only example.
* `*/N` matches values divisible by N, as Treasure Data's examples read (`0 0 */5 * *` runs on
  the 5th, 10th, ... 30th; cron-spec's rule). `A-B/N` starts at A, as in Vixie cron.
* Fields are separated by exactly one space (the documented format); leading and trailing
  blanks are ignored; any other whitespace is refused. Day-of-week is 0-6 with Sunday 0;
  names (`mon`, `jan`) are case-insensitive. `@hourly`, `@daily`, `@weekly`, `@monthly`,
  `@yearly` (and `@annually`) are presets; `""` is no schedule.
* Time zones are IANA names (`Asia/Tokyo`); abbreviations such as PST are refused, as
  Treasure Data warns they "may lead to unexpected schedules".
* DST: a wall time that does not exist (the spring-forward gap) runs at the same moment
  shifted forward by the gap (02:30 becomes 03:30); a wall time that happens twice (the
  autumn overlap) runs once, at its first occurrence, unless the hour field is `*`, in which
  case it runs at both, because the job was meant to run every hour of real time.

croniter does the iteration, over wall-clock times with the day rule already applied and every
field spelled out as plain numbers, so no croniter quirk (its own day-of-month OR day-of-week
rule, its step origin) can leak in. The mapping from wall time to an instant is done here.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter

from core.errors import InputError


class CronError(InputError):
    """A schedule or time zone we cannot use; `location` names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, source="cron", location=field)
        self.field = field


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    """Names for low, low+1, ... (months from jan = 1, weekdays from sun = 0)."""


FIELDS: Final = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field(
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    _Field("day-of-week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)

PRESETS: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

REFERENCE_START: Final = date(2001, 1, 1)
REFERENCE_DAYS: Final = (date(2029, 1, 1) - date(2001, 1, 1)).days
"""28 years: weekdays against dates repeat exactly on this cycle from 1901 to 2099."""

_LOOKAHEAD = timedelta(days=2)
"""Wall-clock order and instant order can differ only around an offset change (under 27 h)."""

_VALUE = re.compile(r"[0-9]+|[A-Za-z]+")
_QUARTZ = re.compile(r"\?|L|W|LW|[0-9]+[LW]|.*#.*", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    """A parsed expression, with Treasure Data's day rule already applied."""

    expression: str
    minutes: tuple[int, ...] | None
    hours: tuple[int, ...] | None
    """None when the hour field is `*` (then an overlapping hour runs twice; see the module)."""
    days: tuple[int, ...] | None
    months: tuple[int, ...] | None
    weekdays: tuple[int, ...] | None
    ignored: str | None = None
    """`day-of-month` or `day-of-week` when the day rule dropped that field."""
    day_counts: tuple[int, int] | None = None
    """(day-of-month days, day-of-week days) over the reference span, when both were set."""

    @property
    def effective(self) -> str:
        """The croniter expression: plain numbers, at most one of the day fields restricted."""
        return " ".join(
            _spell(values)
            for values in (self.minutes, self.hours, self.days, self.months, self.weekdays)
        )

    def explain(self) -> str | None:
        """Why one day field was ignored, for people; None when nothing was."""
        if self.ignored is None or self.day_counts is None:
            return None
        dom, dow = self.day_counts
        kept = "day-of-week" if self.ignored == "day-of-month" else "day-of-month"
        return (
            f"day-of-month and day-of-week are both restricted; {kept} fires more often "
            f"({max(dom, dow)} against {min(dom, dow)} days in 2001-2028"
            + (", a tie goes to day-of-week" if dom == dow else "")
            + f"), so {self.ignored} is ignored (Treasure Data's rule)"
        )


def _spell(values: tuple[int, ...] | None) -> str:
    return "*" if values is None else ",".join(str(v) for v in values)


def parse(expression: str) -> Schedule | None:
    """The schedule of `expression`; None for `""` (a job with no scheduled run)."""
    text = expression.strip()
    if text == "":
        return None
    if text.startswith("@"):
        preset = PRESETS.get(text.lower())
        if preset is None:
            raise CronError(
                f"unknown preset {text!r}; use one of " + ", ".join(PRESETS) + " or five fields"
            )
        return _parse_fields(text, preset)
    return _parse_fields(text, text)


def _parse_fields(original: str, text: str) -> Schedule:
    if re.search(r"\s", text.replace(" ", "")) or "  " in text:
        raise CronError(
            f"{original!r}: separate the five fields with single spaces (no tabs or runs of spaces)"
        )
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(
            f"{original!r} has {len(parts)} field(s); a schedule has five: "
            "minute hour day-of-month month day-of-week (or @hourly, @daily, ...)"
        )
    sets = [_parse_field(part, spec) for part, spec in zip(parts, FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = sets
    ignored = None
    counts = None
    if days is not None and weekdays is not None:
        counts = (_dom_days(days, months), _dow_days(weekdays, months))
        if counts[1] >= counts[0]:
            ignored, days = "day-of-month", None
        else:
            ignored, weekdays = "day-of-week", None
    if days is not None and _dom_days(days, months) == 0:
        raise CronError(
            f"{original!r} never runs: no month in the month field has day "
            + _spell(days).replace(",", ", "),
            field="day-of-month",
        )
    return Schedule(
        expression=original,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        ignored=ignored,
        day_counts=counts,
    )


def _parse_field(text: str, spec: _Field) -> tuple[int, ...] | None:
    """The sorted values a field allows; None for `*` (no restriction)."""
    if text == "*":
        return None
    if text == "":
        raise CronError("is empty", field=spec.name)
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, spec))
    return tuple(sorted(values))


def _parse_item(item: str, spec: _Field) -> range | list[int]:
    if item == "":
        raise CronError(
            "has an empty list item (two commas, or a comma at an end)", field=spec.name
        )
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isascii() or not step_text.isdigit():
            raise CronError(f"step {step_text!r} in {item!r} is not a number", field=spec.name)
        step = int(step_text)
        if step == 0:
            raise CronError(f"step 0 in {item!r}: a step must be 1 or more", field=spec.name)
        if step > spec.high:
            raise CronError(
                f"step {step} in {item!r} is over {spec.high}, the field's largest value",
                field=spec.name,
            )
    if base == "*":
        if not slash:
            raise CronError("'*' can only stand alone or as '*/N' inside a list", field=spec.name)
        # Treasure Data (cron-spec): */N matches the values divisible by N.
        return [value for value in range(spec.low, spec.high + 1) if value % step == 0]
    low_text, dash, high_text = base.partition("-")
    low = _value(low_text, spec, item)
    if dash:
        high = _value(high_text, spec, item)
        if high < low:
            raise CronError(
                f"range {item!r} runs backwards ({low} is after {high}); write {high}-{low}",
                field=spec.name,
            )
    else:
        high = spec.high if slash else low
    return range(low, high + 1, step)


def _value(text: str, spec: _Field, item: str) -> int:
    if _QUARTZ.fullmatch(text):
        raise CronError(
            f"{item!r}: L, W, # and ? are Quartz extensions Treasure Data does not document",
            field=spec.name,
        )
    if not _VALUE.fullmatch(text):
        raise CronError(f"{item!r}: {text!r} is not a value", field=spec.name)
    if text.isdigit():
        value = int(text)
    else:
        lowered = text.lower()
        if lowered not in spec.names:
            known = f"; names are {', '.join(spec.names)}" if spec.names else " and takes no names"
            raise CronError(f"{text!r} is not a {spec.name} name{known}", field=spec.name)
        value = spec.names.index(lowered) + spec.low
    if not spec.low <= value <= spec.high:
        hint = " (Sunday is 0)" if spec.name == "day-of-week" and value == 7 else ""
        raise CronError(f"{value} is out of range {spec.low}-{spec.high}{hint}", field=spec.name)
    return value


@lru_cache(maxsize=1)
def _reference_days() -> tuple[tuple[int, int, int], ...]:
    """(day of month, month, weekday with Sunday 0) for each day of the reference span."""
    days = []
    for offset in range(REFERENCE_DAYS):
        day = REFERENCE_START + timedelta(days=offset)
        days.append((day.day, day.month, (day.weekday() + 1) % 7))
    return tuple(days)


@lru_cache(maxsize=1024)
def _dom_days(days: tuple[int, ...], months: tuple[int, ...] | None) -> int:
    wanted, allowed = set(days), set(months or range(1, 13))
    return sum(1 for dom, month, _ in _reference_days() if dom in wanted and month in allowed)


@lru_cache(maxsize=1024)
def _dow_days(weekdays: tuple[int, ...], months: tuple[int, ...] | None) -> int:
    wanted, allowed = set(weekdays), set(months or range(1, 13))
    return sum(1 for _, month, dow in _reference_days() if dow in wanted and month in allowed)


# --- time zones -------------------------------------------------------------------------------

_ABBREVIATIONS: Final = {
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "MST": "America/Denver",
    "MDT": "America/Denver",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul",
    "HKT": "Asia/Hong_Kong",
    "SGT": "Asia/Singapore",
    "ICT": "Asia/Bangkok",
    "WIB": "Asia/Jakarta",
    "IST": "Asia/Kolkata",
    "CET": "Europe/Paris",
    "CEST": "Europe/Paris",
    "BST": "Europe/London",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
}


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; abbreviations and unknown names are refused with a hint."""
    text = name.strip()
    if text in ("UTC", "GMT"):
        return ZoneInfo("UTC")
    if "/" not in text:
        suggestion = _ABBREVIATIONS.get(text.upper())
        hint = f" such as {suggestion}" if suggestion else " such as Asia/Tokyo or UTC"
        raise CronError(
            f"{name!r} is not an IANA time zone name; abbreviations are ambiguous and ignore "
            f"daylight saving time, so name the place:{hint}",
            field="time zone",
        )
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    close = [known for known in available_timezones() if known.lower() == text.lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise CronError(f"{name!r} is not a known IANA time zone{hint}", field="time zone")


# --- iteration --------------------------------------------------------------------------------


def _instants(wall: datetime, tz: ZoneInfo, *, every_hour: bool) -> list[datetime]:
    """The UTC instants a wall-clock time stands for in `tz` (0 never; see the module's DST)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    back = first.astimezone(tz).replace(tzinfo=None)
    if back != wall:
        # A gap: fold=0 reads the wall time with the offset before the change, which is the
        # moment the clock would have shown it, i.e. shifted forward by the gap.
        return [first]
    return [first, second] if every_hour else [min(first, second)]


def iter_runs(schedule: Schedule, after: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    """Run times strictly after `after`, in order, as aware datetimes in `tz`; endless."""
    if after.tzinfo is None:
        raise ValueError("`after` needs a time zone")
    start = after.astimezone(UTC)
    wall = after.astimezone(tz).replace(tzinfo=None, microsecond=0) - _LOOKAHEAD
    walls = croniter(schedule.effective, wall, max_years_between_matches=30)
    every_hour = schedule.hours is None
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        candidate = walls.get_next(datetime)
        for instant in _instants(candidate, tz, every_hour=every_hour):
            if instant > start:
                heapq.heappush(pending, instant)
        while pending:
            earliest = pending[0]
            if earliest.astimezone(tz).replace(tzinfo=None) + _LOOKAHEAD >= candidate:
                break
            heapq.heappop(pending)
            if last is None or earliest > last:
                last = earliest
                yield earliest.astimezone(tz)


def next_runs(expr: str, start: datetime, count: int, tz: str) -> list[datetime]:
    """The next `count` run times of `expr` strictly after `start`, in the zone `tz`.

    A naive `start` is read as wall-clock time in `tz`. `""` (no schedule) gives [].
    """
    zone_info = zone(tz)
    schedule = parse(expr)
    if schedule is None or count <= 0:
        return []
    if start.tzinfo is None:
        start = start.replace(tzinfo=zone_info)
    runs = []
    for run in iter_runs(schedule, start, zone_info):
        runs.append(run)
        if len(runs) >= count:
            break
    return runs


def latest_run(
    schedule: Schedule, *, after: datetime, until: datetime, tz: ZoneInfo
) -> datetime | None:
    """The last run time in (`after`, `until`], or None: what a scheduler is due to run now.

    Missed runs are not replayed one by one: a scheduler that was off for a day runs a job
    once, for its latest due time.
    """
    if until <= after:
        return None
    window = until - _LOOKAHEAD
    if window > after:
        found = _last_before(schedule, window, until, tz)
        if found is not None:
            return found
    return _last_before(schedule, after, until, tz)


def _last_before(
    schedule: Schedule, after: datetime, until: datetime, tz: ZoneInfo
) -> datetime | None:
    found = None
    for run in iter_runs(schedule, after, tz):
        if run > until:
            break
        found = run
    return found
