"""The Conversions screen: saved Conversion API export jobs, their runs and their next times.

What operators see here is what `lcc capi jobs list|show` prints, from the same core calls:
`ExportJob.next_run` for the next run, `core.cron.next_runs` for the next five times,
`Schedule.explain` for Treasure Data's day rule, `run_job` for a run by hand. The screen only
formats. It promises:

* it never blocks: the store is read and written in thread workers, and a run happens in a
  thread of its own (an app worker, so leaving the screen does not stop it, and its outcome is
  notified wherever the operator is);
* what other processes do (the scheduler, `lcc capi jobs ...`) shows up within `POLL_SECONDS`;
  the jobs file is only re-read when it changed, when a shown next run arrives, or once a
  minute (next run times cost core a few croniter steps each, which adds up over many jobs);
* a job that cannot be read or a schedule that no longer parses is a message, never a crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.widgets.data_table import RowKey

from core import cron
from core.errors import InputError, LccError
from core.export_jobs import DB_NAME, ExportJob, ExportJobs, ExportRun, JobRun, run_job
from tui.times import moment_text
from tui.widgets import SandboxBadge, console_of, literal

if TYPE_CHECKING:
    from core.service import Services
    from tui.app import ConsoleApp

POLL_SECONDS = 5.0
"""How often the screen looks at the jobs file for changes (runs by the scheduler, the CLI)."""
STALE_SECONDS = 60.0
"""The longest the screen goes without re-reading, so next run times and "in 3h" stay fresh."""
NEXT_TIMES = 5
NOTICE_CELL = 48
"""A disabled job's notice is cut to this many cells in the table (the detail shows it whole)."""
SCHEDULE_CELL = 24
RUN_GROUP = "conversions-run"

ADD_USAGE = (
    "lcc capi jobs add NAME FILE --tag-id TAG_ID\n"
    "    [--token-env VAR] [--channel-id ID] [--schedule CRON]\n"
    "    [--tz ZONE] [--delay 15m] [--max-failures N] [--disabled]"
)
"""`lcc capi jobs add`'s syntax (tui/cli.py; a test parses it with the real parser)."""
ADD_EXAMPLE = (
    "lcc capi jobs add nightly /data/conversions.csv \\\n"
    "    --tag-id 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 \\\n"
    '    --token-env LINE_CAPI_TOKEN --schedule "0 3 * * *" \\\n'
    "    --tz Asia/Tokyo --delay 15m"
)


# --- formatting -------------------------------------------------------------------------------

WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _ranges(values: Sequence[int], spell: Callable[[int], str] = str) -> str:
    """`1,2,3,5` as `1-3,5` (`Mon-Fri` with weekday names): short enough for a cell."""
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{spell(start)}-{spell(previous)}")
        else:
            parts.extend(spell(v) for v in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _step(values: Sequence[int], high: int) -> int | None:
    """N when `values` are exactly 0, N, 2N, … up to `high` (what `*/N` gives), else None."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    if list(values) != list(range(0, high + 1, step)):
        return None
    return step


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _days(days: Sequence[int]) -> str:
    if len(days) <= 3:
        return ", ".join(_ordinal(day) for day in days)
    return "days " + _ranges(days)


def _time_words(minutes: Sequence[int] | None, hours: Sequence[int] | None) -> tuple[str, bool]:
    """(words, whether they are fixed times of day such as `at 03:00, 15:00`)."""
    if minutes is None:
        if hours is None:
            return "every minute", False
        return f"every minute of hours {_ranges(hours)}", False
    if hours is None:
        step = _step(minutes, 59)
        if step is not None:
            return ("every minute" if step == 1 else f"every {step} minutes"), False
        if len(minutes) <= 4:
            return "hourly at " + ", ".join(f":{m:02d}" for m in minutes), False
        return f"at minutes {_ranges(minutes)} of every hour", False
    if len(minutes) * len(hours) <= 4:
        return "at " + ", ".join(f"{h:02d}:{m:02d}" for h in hours for m in minutes), True
    step = _step(hours, 23)
    at = ", ".join(f":{m:02d}" for m in minutes) if len(minutes) <= 2 else _ranges(minutes)
    if step is not None:
        return f"every {step} hours at {at}", False
    return f"at {at} past hours {_ranges(hours)}", False


def schedule_words(schedule: cron.Schedule | None) -> str:
    """A parsed schedule read out for people: `daily at 03:00`, `Mon-Fri at 09:30`.

    Only reads `core.cron.parse`'s result (Treasure Data's day rule already applied there).
    """
    if schedule is None:
        return "by hand only"
    time, fixed = _time_words(schedule.minutes, schedule.hours)
    months = _ranges(schedule.months, lambda m: MONTHS[m - 1]) if schedule.months else None
    if schedule.weekdays is not None:
        weekdays = schedule.weekdays
        if len(weekdays) == 1:
            on = f"{WEEKDAYS[weekdays[0]]}days"
        else:
            on = _ranges(weekdays, lambda d: WEEKDAYS[d])
        words = f"{on} {time}" if fixed else f"{time} on {on}"
        return f"{words} in {months}" if months else words
    if schedule.days is not None:
        days = _days(schedule.days)
        on = f"on the {days} of {months}" if months else f"monthly on the {days}"
        return f"{on} {time}" if fixed else f"{time}, {on}"
    words = f"daily {time}" if fixed else time
    return f"{words} in {months}" if months else words


def relative(moment: datetime, now: datetime) -> str:
    """`in 3h 15m`, `5m ago`: how far a time is, at a glance."""
    seconds = int((moment - now).total_seconds())
    future = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        return "now" if seconds < 30 else ("in 1m" if future else "1m ago")
    minutes = seconds // 60
    if minutes < 60:
        text = f"{minutes}m"
    elif minutes < 48 * 60:
        text = f"{minutes // 60}h" + (f" {minutes % 60:02d}m" if minutes % 60 else "")
    else:
        text = f"{minutes // (24 * 60)}d"
    return f"in {text}" if future else f"{text} ago"


def duration(run: JobRun) -> str:
    if run.finished_at is None:
        return "—"
    seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def delay_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# --- what the screen shows about one job ------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """One job with what core computes about it at `now`; built off the UI thread."""

    job: ExportJob
    now: datetime
    zone: tzinfo | None
    next_run: datetime | None
    next_times: tuple[datetime, ...]
    words: str
    explanation: str | None
    schedule_error: str | None
    file_present: bool

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def running(self) -> bool:
        return self.job.claim is not None

    @classmethod
    def build(cls, job: ExportJob, now: datetime) -> JobView:
        zone: tzinfo | None = None
        next_run: datetime | None = None
        times: list[datetime] = []
        words, explanation, error = "", None, None
        try:
            zone = cron.zone(job.timezone)
            schedule = cron.parse(job.schedule)
            words = schedule_words(schedule)
            explanation = schedule.explain() if schedule is not None else None
            next_run = job.next_run(now)
            times = cron.next_runs(job.schedule, now, NEXT_TIMES, job.timezone)
        except InputError as exc:
            error = exc.describe()
            words = words or "cannot be read"
        try:
            present = Path(job.file).is_file()
        except OSError:
            present = False
        return cls(job, now, zone, next_run, tuple(times), words, explanation, error, present)


def load_views(services: Services) -> list[JobView]:
    """Every saved job, by name, as the screen shows it (blocking: call it from a thread)."""
    now = services.clock.now()
    return [JobView.build(job, now) for job in ExportJobs(services.store).all()]


@dataclass(frozen=True)
class Palette:
    """Rich styles from the theme (the table's component classes), for cells and the detail."""

    ok: Style
    failed: Style
    warning: Style
    muted: Style
    bold: Style


def outcome_text(view: JobView, palette: Palette, *, running_here: bool = False) -> Text:
    if view.running or running_here:
        return Text("▶ running", style=palette.warning, end="")
    last = view.job.last_run
    if last is None:
        return Text("never run", style=palette.muted, end="")
    return run_outcome_text(last, palette)


def run_outcome_text(run: JobRun, palette: Palette) -> Text:
    if run.outcome == "ok":
        return Text("✓ ok", style=palette.ok, end="")
    if run.outcome == "interrupted":
        return Text("⚠ interrupted", style=palette.warning, end="")
    return Text("✗ failed", style=palette.failed, end="")


def _cut(value: str, width: int, style: Style | str = "") -> Text:
    text = Text(literal(value), style=style, end="", no_wrap=True)
    text.truncate(width, overflow="ellipsis")
    return text


COLUMNS: tuple[tuple[str, str], ...] = (
    ("job", "Job"),
    ("on", "On"),
    ("schedule", "Schedule"),
    ("next", "Next run"),
    ("last", "Last run"),
    ("outcome", "Outcome"),
    ("sent", "Sent"),
    ("invalid", "Invalid"),
    ("failed", "Failed"),
    ("failures", "Fails"),
    ("cron", "Cron"),
    ("zone", "Zone"),
    ("file", "File"),
    ("tag", "Tag ID"),
    ("notice", "Notice"),
)
"""(key, header): what an operator looks for first comes first; the rest scroll right."""


def row_cells(view: JobView, palette: Palette, *, running_here: bool = False) -> list[Text]:
    """The table cells of one job, in `COLUMNS` order (always `Text`: never markup)."""
    job = view.job
    last = job.last_run
    if view.schedule_error:
        next_text = Text("schedule error", style=palette.failed, end="")
    elif view.next_run is not None:
        overdue = view.next_run <= view.now
        next_text = Text(
            moment_text(view.next_run, view.zone, short=True),
            style=palette.warning if overdue else "",
            end="",
        )
    elif not job.schedule:
        next_text = Text("by hand", style=palette.muted, end="")
    else:
        next_text = Text("—", style=palette.muted, end="")
    counts = [
        Text(f"{value:,}" if last else "—", style="" if last else palette.muted, end="")
        for value in ((last.sent, last.skipped_invalid, last.failed) if last else (0, 0, 0))
    ]
    if last and last.skipped_invalid:
        counts[1].stylize(palette.warning)
    if last and last.failed:
        counts[2].stylize(palette.failed)
    failures = Text(
        f"{job.consecutive_failures}/{job.max_failures}",
        style=palette.failed if job.consecutive_failures else palette.muted,
        end="",
    )
    for cell in (*counts, failures):
        cell.justify = "right"
    return [
        Text(literal(job.name), style=palette.bold, end=""),
        Text("on", style=palette.ok, end="")
        if job.enabled
        else Text("off", style=palette.failed if job.notice else palette.warning, end=""),
        _cut(view.words, SCHEDULE_CELL),
        next_text,
        Text(moment_text(last.started_at, view.zone, short=True) if last else "—", end=""),
        outcome_text(view, palette, running_here=running_here),
        *counts,
        failures,
        Text(job.schedule or "—", style=palette.muted, end=""),
        Text(literal(job.timezone), end=""),
        _cut(Path(job.file).name, 28),
        Text(job.tag_id[:8] + "…", style=palette.muted, end=""),
        _cut(job.notice or "", NOTICE_CELL, palette.warning),
    ]


def options_words(job: ExportJob) -> str:
    invalid = "skip invalid rows" if job.ignore_invalid_records else "any invalid row stops the run"
    return (
        f"batches of {job.batch_size:,} · {invalid} · up to {job.max_retry} retries, "
        f"{job.initial_retry_wait}s doubling to {job.max_retry_wait}s · "
        f"timeout {job.connection_timeout}s · phone region {job.phone_region}"
    )


def facts(view: JobView, palette: Palette) -> RenderableType:
    """The selected job: what it sends, when, and how it has been doing."""
    job = view.job
    heading = Text()
    heading.append(literal(job.name), style=palette.bold)
    if job.enabled:
        heading.append("  ● enabled", style=palette.ok)
    else:
        heading.append("  ○ disabled", style=palette.failed if job.notice else palette.warning)
    if view.running:
        claim = job.claim
        assert claim is not None
        heading.append(
            f"  ▶ running since {moment_text(claim.at, view.zone)} (pid {claim.pid} on "
            f"{literal(claim.host)})",
            style=palette.warning,
        )
    lines: list[RenderableType] = [heading]
    if job.notice:
        lines.append(Text(literal(job.notice), style=palette.warning))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=palette.muted, no_wrap=True)
    grid.add_column(overflow="fold")
    file_text = Text(literal(job.file))
    if not view.file_present:
        file_text.append("  (not there now)", style=palette.warning)
    grid.add_row("file", file_text)
    grid.add_row("tag id", Text(job.tag_id))
    grid.add_row(
        "token from",
        Text(f"${job.token_env}" if job.token_env else "none (the sandbox needs none)"),
    )
    if job.channel_id:
        grid.add_row("channel id", Text(job.channel_id))
    schedule = Text(literal(view.words), style=palette.bold)
    schedule.append(f"  ·  {job.schedule or 'no schedule'}  ·  {literal(job.timezone)}")
    if job.delay_s:
        schedule.append(f"  ·  starts {delay_words(job.delay_s)} after each time")
    grid.add_row("schedule", schedule)
    if view.explanation:
        grid.add_row("", Text(view.explanation, style=palette.muted))
    if view.schedule_error:
        grid.add_row("", Text(literal(view.schedule_error), style=palette.failed))
    grid.add_row("next run", Text(_next_run_words(view)))
    grid.add_row(
        "failures",
        Text(
            f"{job.consecutive_failures} in a row; disabled after {job.max_failures}",
            style=palette.failed if job.consecutive_failures else "",
        ),
    )
    grid.add_row("options", Text(options_words(job)))
    lines.append(grid)
    return Group(*lines)


def _next_run_words(view: JobView) -> str:
    job = view.job
    if view.next_run is not None:
        at = moment_text(view.next_run, view.zone)
        if view.next_run <= view.now:
            return f"{at}: due now; the scheduler runs it on its next pass"
        return f"{at} ({relative(view.next_run, view.now)})"
    if view.schedule_error:
        return "none: the schedule cannot be read"
    if not job.schedule:
        return "only when run by hand (r)"
    if not job.enabled:
        return "none while disabled; enabling waits for the next scheduled time"
    return "—"


def next_times(view: JobView, palette: Palette) -> RenderableType:
    """The schedule's next five times (core.cron), in the job's zone."""
    job = view.job
    text = Text(end="")
    text.append(f"Next {NEXT_TIMES} times", style=palette.bold)
    if not view.next_times:
        reason = "no schedule: runs only by hand" if not job.schedule else "none"
        text.append(f"\n{reason}", style=palette.muted)
        return text
    for moment in view.next_times:
        local = moment.astimezone(view.zone) if view.zone else moment
        text.append(f"\n{local:%a} {moment_text(moment, view.zone)}")
    if job.delay_s:
        text.append(f"\neach run starts {delay_words(job.delay_s)} later", style=palette.muted)
    if not job.enabled:
        text.append("\nnot while the job is disabled", style=palette.warning)
    return text


def runs_table(view: JobView, palette: Palette) -> RenderableType:
    """The kept runs, newest first (core keeps the last 20)."""
    job = view.job
    if not job.runs:
        return Text("No runs yet. Press r to run it now.", style=palette.muted)
    table = Table(
        title=f"Recent runs ({len(job.runs)}, newest first)",
        title_justify="left",
        title_style=palette.bold,
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style=palette.muted,
        expand=True,
    )
    table.add_column("started", no_wrap=True)
    table.add_column("by", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("sent", justify="right", no_wrap=True)
    table.add_column("invalid", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("message", ratio=1, overflow="fold", min_width=12)
    for run in reversed(job.runs):
        by = "schedule" if run.trigger == "schedule" else "hand"
        table.add_row(
            moment_text(run.started_at, view.zone, short=True),
            by,
            run_outcome_text(run, palette),
            f"{run.sent:,}",
            f"{run.skipped_invalid:,}",
            Text(f"{run.failed:,}", style=palette.failed if run.failed else ""),
            duration(run),
            Text(literal(run.message or ""), style=palette.muted),
        )
    return table


def empty_text(palette: Palette) -> Text:
    def indented(block: str) -> str:
        return "  " + block.replace("\n", "\n  ")

    text = Text()
    text.append("No conversion export jobs yet.\n\n", style=palette.bold)
    text.append(
        "A job sends one CSV or JSONL file to the LINE Conversion API on a cron schedule. "
        "Save one from a shell:\n\n"
    )
    text.append(indented(ADD_USAGE) + "\n\n", style=palette.bold)
    text.append("For example:\n")
    text.append(indented(ADD_EXAMPLE) + "\n\n")
    text.append(
        "`lcc scheduler` runs saved jobs when they are due, and so does this console while it "
        "is open. `lcc capi jobs add --help` lists every option.",
        style=palette.muted,
    )
    return text


# --- runs by hand -----------------------------------------------------------------------------


class RunEnded(Message):
    """A run started here has ended (the jobs are read again)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


def run_notice(report: ExportRun) -> tuple[str, SeverityLevel]:
    """The notification for a finished run: core's own words, and how loud to be."""
    if report.outcome == "ok":
        return report.describe(), "information"
    return report.describe(), "error"


async def run_now(app: App[Any], services: Services, name: str, screen: Screen[Any]) -> None:
    """Run `name` as `lcc capi jobs run` does, then notify the app and the screen.

    Runs in a thread worker with its own event loop: the run claims and records under the data
    dir's lock, which may wait on another process, and that must not freeze the console.
    """
    settings = services.settings
    sandbox = services.sandbox if settings.capi_is_sandbox else None
    try:
        report = await run_job(
            services.store, settings, name, services.clock.now(), sandbox=sandbox
        )
    except LccError as exc:
        message = exc.describe() if isinstance(exc, InputError) else str(exc)
        notify = partial(app.notify, message, title="Not run", severity="error", markup=False)
        _from_thread(app, notify)
        return
    finally:
        screen.post_message(RunEnded(name))
    text, severity = run_notice(report)
    timeout = 8 if severity == "information" else 20
    _from_thread(
        app,
        partial(
            app.notify,
            text,
            title="Conversion export",
            severity=severity,
            timeout=timeout,
            markup=False,
        ),
    )


def _from_thread(app: App[Any], callback: Callable[[], object]) -> None:
    with contextlib.suppress(RuntimeError):  # the console closed meanwhile
        app.call_from_thread(callback)


# --- the screen -------------------------------------------------------------------------------


class JobTable(DataTable[Text]):
    """The jobs, one row each; cell colours come from the theme through component classes."""

    HELP_TITLE = "Jobs table"

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "job-table--ok",
        "job-table--failed",
        "job-table--warning",
        "job-table--muted",
    }

    DEFAULT_CSS = """
    JobTable {
        height: auto;
        max-height: 45%;
        & > .job-table--ok { color: $text-success; }
        & > .job-table--failed { color: $text-error; text-style: bold; }
        & > .job-table--warning { color: $text-warning; }
        & > .job-table--muted { color: $text-muted; }
    }
    """

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Textual measures the columns when idle but keeps, under the same cache key, rows it
        drew before that: a header drawn in between stayed at its labels' widths over wider
        rows. A new key makes every row be drawn again at the measured widths."""
        super()._update_dimensions(new_rows)
        self._update_count += 1
        self.refresh()

    def palette(self) -> Palette:
        def style(name: str) -> Style:
            return self.get_component_rich_style(f"job-table--{name}", partial=True)

        return Palette(
            ok=style("ok"),
            failed=style("failed"),
            warning=style("warning"),
            muted=style("muted"),
            bold=Style(bold=True),
        )


class ConversionsScreen(Screen[None]):
    """`ConversionsScreen()`: the saved export jobs; pushed on the app from anywhere."""

    HELP_TITLE = "Conversions"

    DEFAULT_CSS = """
    ConversionsScreen #conversions-status {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    ConversionsScreen #jobs-empty { height: 1fr; padding: 1 2 0 2; }
    ConversionsScreen #job-detail {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    ConversionsScreen #job-detail:focus { background: $boost; }
    ConversionsScreen #job-top { height: auto; }
    ConversionsScreen #job-facts { width: 1fr; height: auto; }
    ConversionsScreen #job-next { width: 30; height: auto; margin-left: 2; }
    ConversionsScreen #job-runs { height: auto; margin-top: 1; }
    ConversionsScreen.-narrow #job-next { width: 25; margin-left: 1; }
    """

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="conversions.back"),
        Binding(
            "r",
            "run",
            "Run now",
            id="conversions.run",
            tooltip="Export the job's file now, whatever its schedule (also when disabled).",
        ),
        Binding("e", "toggle_enabled", "Enable/disable", id="conversions.toggle"),
        Binding("d,delete", "remove", "Remove", id="conversions.remove"),
        Binding("f5", "refresh", "Refresh", show=False, id="conversions.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, JobView] = {}
        self._order: list[str] = []
        self._running_here: set[str] = set()
        self._loaded = False
        self._error: str | None = None
        self._last_row = 0
        self._marker: tuple[int, int] | None = None
        self._refresh_at = datetime.min.replace(tzinfo=UTC)

    @property
    def console(self) -> ConsoleApp:
        return console_of(self.app)

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    @property
    def current(self) -> JobView | None:
        """The job under the table's cursor."""
        table = self.table
        if not self._order or table.row_count == 0:
            return None
        index = min(max(table.cursor_row, 0), len(self._order) - 1)
        return self._views.get(self._order[index])

    def compose(self) -> ComposeResult:
        yield Header()
        if notice := self.console.sandbox_notice:
            yield SandboxBadge(notice)
        yield Static("Conversion export jobs · reading…", id="conversions-status")
        table = JobTable(cursor_type="row", zebra_stripes=True, fixed_columns=1, id="jobs")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="jobs-empty"):
            yield Static("", id="jobs-empty-text")
        with VerticalScroll(id="job-detail"):
            with Horizontal(id="job-top"):
                yield Static("", id="job-facts")
                yield Static("", id="job-next")
            yield Static("", id="job-runs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#jobs-empty").display = False
        self.table.focus()
        self.load()
        self.set_interval(POLL_SECONDS, self._poll, name="conversions-poll")
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw())

    def on_screen_resume(self) -> None:
        if self._loaded:
            self.load()

    # --- reading ------------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        group="conversions-load",
        exit_on_error=False,
        description="Reading the export jobs",
    )
    def load(self) -> None:
        marker = self._jobs_marker()
        try:
            views = load_views(self.console.services)
        except (LccError, ValueError) as exc:
            # ValueError: a stored job that is not a job (pydantic's ValidationError)
            message = exc.describe() if isinstance(exc, InputError) else str(exc)
            where = f"in {self._jobs_path}; nothing was changed"
            self.app.call_from_thread(self._failed, f"{message} ({where})", marker)
            return
        self.app.call_from_thread(self._show, views, marker)

    @property
    def _jobs_path(self) -> Path:
        return self.console.services.store.data_dir / f"{DB_NAME}.json"

    def _jobs_marker(self) -> tuple[int, int] | None:
        """Changes whenever the jobs file is written (a stat: cheap enough for the UI thread)."""
        try:
            stat = self._jobs_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _read_again_at(self, views: list[JobView], now: datetime) -> datetime:
        """The next shown run that arrives, or a minute from now, whichever is sooner."""
        soonest = now + timedelta(seconds=STALE_SECONDS)
        for view in views:
            for moment in (view.next_run, *view.next_times[:1]):
                if moment is not None and now < moment < soonest:
                    soonest = moment
        return soonest

    def _reload_if_shown(self) -> None:
        """After a write: read the jobs again, unless the operator has left the screen."""
        if self.is_attached:
            self.load()

    def _poll(self) -> None:
        if any(w.group == "conversions-load" and not w.is_finished for w in self.workers):
            return
        changed = self._jobs_marker() != self._marker
        if changed or self.console.services.clock.now() >= self._refresh_at:
            self.load()

    def _failed(self, message: str, marker: tuple[int, int] | None) -> None:
        self._marker = marker
        self._refresh_at = self.console.services.clock.now() + timedelta(seconds=STALE_SECONDS)
        first = self._error != message
        self._error = message
        self._update_status()
        if first:
            self.notify(
                message,
                title="Cannot read the export jobs",
                severity="error",
                timeout=20,
                markup=False,
            )

    def _show(self, views: list[JobView], marker: tuple[int, int] | None) -> None:
        current = self.current
        keep = current.name if current is not None else None
        self._error = None
        self._loaded = True
        self._marker = marker
        self._refresh_at = self._read_again_at(views, self.console.services.clock.now())
        self._views = {view.name: view for view in views}
        order = [view.name for view in views]
        table = self.table
        palette = table.palette()
        if order == self._order and table.row_count == len(order):
            for name in order:
                self._update_row(name, palette)
        else:
            self._order = order
            table.clear()
            for name in order:
                table.add_row(*self._cells(name, palette), key=name)
            if keep in order:
                table.move_cursor(row=order.index(keep), animate=False)
            elif order:
                table.move_cursor(row=min(self._last_row, len(order) - 1), animate=False)
        empty = not order
        table.display = not empty
        self.query_one("#job-detail").display = not empty
        self.query_one("#jobs-empty").display = empty
        if empty:
            self.query_one("#jobs-empty-text", Static).update(empty_text(palette))
        self._update_status()
        self._show_detail()
        self.refresh_bindings()

    def _cells(self, name: str, palette: Palette) -> list[Text]:
        return row_cells(self._views[name], palette, running_here=name in self._running_here)

    def _update_row(self, name: str, palette: Palette) -> None:
        table = self.table
        for (key, _label), cell in zip(COLUMNS, self._cells(name, palette), strict=True):
            table.update_cell(name, key, cell, update_width=True)

    def _redraw(self) -> None:
        """Colours follow a theme switch."""
        if self._loaded:
            self._show(list(self._views.values()), self._marker)

    def _update_status(self) -> None:
        views = list(self._views.values())
        text = Text(end="", no_wrap=True, overflow="ellipsis")
        text.append("Conversion export jobs", style="bold")
        if self._error is not None:
            text.append(f" · cannot read: {literal(self._error)}")
        elif not self._loaded:
            text.append(" · reading…")
        else:
            disabled = sum(1 for view in views if not view.job.enabled)
            running = sum(1 for view in views if view.running or view.name in self._running_here)
            text.append(f" · {len(views)} job{'s' if len(views) != 1 else ''}")
            if disabled:
                text.append(f" · {disabled} disabled")
            if running:
                text.append(f" · {running} running")
            if views:
                text.append(" · times in each job's zone")
        settings = self.console.services.settings
        if not settings.capi_is_sandbox:  # the SANDBOX badge says so otherwise
            text.append(f" · sending to {literal(settings.capi_base)}")
        self.query_one("#conversions-status", Static).update(text)

    # --- the detail pane ----------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#jobs")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._last_row = event.cursor_row
        self._show_detail()

    def _show_detail(self) -> None:
        view = self.current
        palette = self.table.palette()
        facts_box = self.query_one("#job-facts", Static)
        next_box = self.query_one("#job-next", Static)
        runs_box = self.query_one("#job-runs", Static)
        if view is None:
            for box in (facts_box, next_box, runs_box):
                box.update("")
            return
        facts_box.update(facts(view, palette))
        next_box.update(next_times(view, palette))
        runs_box.update(runs_table(view, palette))

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run", "toggle_enabled", "remove") and self.current is None:
            return None
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.load()

    def action_run(self) -> None:
        view = self.current
        if view is None:
            return
        name = view.name
        if name in self._running_here:
            self.notify(f"Export job {name} is already running from this console.", timeout=4)
            return
        self._running_here.add(name)
        self._update_row(name, self.table.palette())
        self._update_status()
        self.notify(f"Running export job {name} now…", title="Conversion export", timeout=4)
        self.app.run_worker(
            run_now(self.app, self.console.services, name, self),
            thread=True,
            group=RUN_GROUP,
            description=f"Running export job {name}",
            exit_on_error=False,
        )

    @on(RunEnded)
    def _run_ended(self, message: RunEnded) -> None:
        self._running_here.discard(message.name)
        self.load()

    def action_toggle_enabled(self) -> None:
        view = self.current
        if view is not None:
            self._set_enabled(view.name, not view.job.enabled)

    @work(thread=True, group="conversions-write", exit_on_error=False, description="Saving")
    def _set_enabled(self, name: str, enabled: bool) -> None:
        services = self.console.services
        try:
            job = ExportJobs(services.store).set_enabled(name, enabled, now=services.clock.now())
            view = JobView.build(job, services.clock.now())
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Not changed", severity="error", markup=False
            )
        else:
            if not job.enabled:
                text = f"Export job {name} is disabled: the scheduler skips it (r still runs it)."
            elif job.schedule:
                text = f"Export job {name} is enabled; next run: {_next_run_words(view)}."
            else:
                text = f"Export job {name} is enabled; it has no schedule, so it runs by hand."
            self.app.call_from_thread(self.notify, text, title="Conversion export", markup=False)
        self.app.call_from_thread(self._reload_if_shown)

    def action_remove(self) -> None:
        from tui.screens.confirm import ConfirmByTyping

        view = self.current
        if view is None:
            return
        name = view.name
        runs = len(view.job.runs)
        prompt = (
            f"The job and its {runs} recorded run{'s' if runs != 1 else ''} are deleted. The file "
            "and the events already sent stay as they are."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._remove(name)

        self.app.push_screen(
            ConfirmByTyping(f"Remove export job {name}?", prompt, name, confirm_label="Remove job"),
            confirmed,
        )

    @work(thread=True, group="conversions-write", exit_on_error=False, description="Removing")
    def _remove(self, name: str) -> None:
        try:
            ExportJobs(self.console.services.store).remove(name)
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Not removed", severity="error", markup=False
            )
        else:
            self.app.call_from_thread(
                self.notify, f"Removed export job {name}.", title="Conversion export", markup=False
            )
        self.app.call_from_thread(self._reload_if_shown)
