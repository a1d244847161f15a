"""`lcc capi export FILE` and `lcc capi jobs ...`: the LINE Conversion API from the terminal.

Exit codes (contract section 3): 0 all sent, 1 some rejected or failed, 2 bad input or options.
With `--json` stdout holds one JSON document; the progress bar and narration go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from core.capi import BatchReport, ExportObserver, ExportOptions, ExportSummary, export_file
from core.export_jobs import ExportJob, ExportJobs, ExportRun, parse_delay, run_job
from core.store import Store
from tui.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    print_json,
    settings_from,
    stderr,
    stdout_console,
)

SHOW_INVALID = 20


def run(args: argparse.Namespace) -> int:
    if args.capi_command == "export":
        return _export(args)
    return _jobs(args)


def options_from(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(
        tag_id=args.tag_id,
        token_env=args.token_env,
        channel_id=args.channel_id,
        batch_size=args.batch_size,
        ignore_invalid_records=args.ignore_invalid_records,
        max_retry=args.max_retry,
        initial_retry_wait=args.initial_retry_wait,
        max_retry_wait=args.max_retry_wait,
        connection_timeout=args.connection_timeout,
        phone_region=args.phone_region.upper(),
    )


# --- export -----------------------------------------------------------------------------------


class _Bars(ExportObserver):
    """A Rich progress bar on stderr; the export calls it from a worker thread too."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.total: int | None = None
        self._lock = threading.Lock()

    def phase(self, name: str, total_rows: int) -> None:
        with self._lock:
            if self.task is not None and self.total:
                self.progress.update(self.task, completed=self.total)
            self.total = total_rows or None
            self.task = self.progress.add_task(name, total=self.total)

    def rows_read(self, count: int) -> None:
        with self._lock:
            if self.task is not None:
                self.progress.update(self.task, completed=count)

    def batch_done(self, report: BatchReport) -> None:
        if report.outcome not in ("accepted", "dry-run"):
            self.progress.console.print(Text(f"  {report.describe()}", style="yellow"))

    def retrying(self, batch: int, attempt: int, wait_s: float, reason: str) -> None:
        self.progress.console.print(
            Text(f"  batch {batch}: {reason}; retry {attempt} in {wait_s:g}s", style="dim")
        )


def _export(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    options = options_from(args)
    path = Path(args.file)
    dry_run = bool(args.dry_run)
    out = sys.stdout.buffer

    def on_request(line: bytes) -> None:
        if not args.json:
            out.write(line + b"\n")

    options.check(sandbox=settings.capi_is_sandbox, need_token=not dry_run)
    where = "sandbox" if settings.capi_is_sandbox else settings.capi_base
    stderr.print(
        Text(f"exporting {path} to LINE Tag {options.tag_id} ({where})" + (" [dry run]" * dry_run))
    )
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )
    with progress:
        summary = asyncio.run(
            export_file(
                path,
                options,
                capi_base=settings.capi_base,
                dry_run=dry_run,
                on_request=on_request,
                observer=_Bars(progress),
            )
        )
    try:
        if args.json:
            summary.write_json(out)
            out.flush()
        else:
            out.flush()
            _print_summary(summary, options, dry_run=dry_run, to_stderr=dry_run)
        return summary.exit_code
    finally:
        summary.close()


def _print_summary(
    summary: ExportSummary, options: ExportOptions, *, dry_run: bool, to_stderr: bool
) -> None:
    console = stderr if to_stderr else stdout_console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    table.add_row("rows read", f"{summary.rows:,}", "")
    if dry_run:
        table.add_row("would send", f"{summary.valid:,}", f"in {summary.batches} batch(es)")
    else:
        table.add_row("sent", f"{summary.sent:,}", f"in {summary.batches} batch(es)")
    table.add_row("skipped invalid", f"{summary.skipped_invalid:,}", "rows")
    table.add_row("failed", f"{summary.failed:,}", "events")
    console.print(table)
    for report in summary.problems:
        console.print(Text(report.describe(), style="red"))
    if summary.stopped:
        console.print(Text(summary.stopped, style="bold red"))
    if summary.input_aborted:
        console.print(Text(f"stopped reading the file: {summary.input_aborted}", style="bold red"))
    invalid = summary.invalid
    if invalid.rows:
        head = (
            f"{invalid.rows:,} invalid row(s), {invalid.problems:,} problem(s)"
            " (row = 1-based data row; the CSV header and blank lines are not counted)"
        )
        console.print(Text(head, style="bold"))
        by_column = ", ".join(f"{c} {n:,}" for c, n in sorted(invalid.by_column.items()))
        console.print(Text(f"  by column: {by_column}", style="dim"))
        for problem in invalid.first(SHOW_INVALID):
            console.print(
                Text.assemble(
                    f"  row {problem.row}  ", (problem.column, "cyan"), f"  {problem.reason}"
                )
            )
        if invalid.problems > SHOW_INVALID:
            console.print(
                Text(f"  ... and {invalid.problems - SHOW_INVALID:,} more (--json lists all)")
            )
    if summary.refused_input:
        console.print(
            Text(
                "nothing was sent: --no-ignore-invalid-records refuses the whole file when any "
                "row is invalid",
                style="bold red",
            )
        )
    elif summary.rows and not summary.valid:
        console.print(Text("nothing was sent: every row is invalid", style="bold red"))
    elif summary.rows == 0 and not summary.input_aborted:
        console.print(Text("the file has no data rows; nothing to send", style="yellow"))


# --- saved jobs -------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> Store:
    settings = settings_from(args)
    return Store(settings.data_dir, system_identifier=settings.system_identifier)


def _now() -> datetime:
    return datetime.now(UTC)


def _jobs(args: argparse.Namespace) -> int:
    action = args.jobs_command
    store = _store(args)
    jobs = ExportJobs(store)
    if action == "add":
        return _jobs_add(args, jobs)
    if action == "list":
        return _jobs_list(args, jobs)
    if action == "show":
        job = jobs.get(args.name)
        if args.json:
            print_json(_job_json(job))
        else:
            _print_job(job)
        return EXIT_OK
    if action == "remove":
        jobs.remove(args.name)
        stderr.print(Text(f"removed export job {args.name}"))
        return EXIT_OK
    if action in ("enable", "disable"):
        job = jobs.set_enabled(args.name, action == "enable", now=_now())
        state = "enabled" if job.enabled else "disabled"
        stderr.print(Text(f"export job {job.name} is {state}"))
        return EXIT_OK
    if action == "run":
        return _jobs_run(args, store)
    raise AssertionError(action)


def _jobs_add(args: argparse.Namespace, jobs: ExportJobs) -> int:
    options = options_from(args)
    now = _now()
    job = ExportJob(
        name=args.name,
        file=str(Path(args.file).expanduser().resolve()),
        tag_id=options.tag_id,
        token_env=options.token_env,
        channel_id=options.channel_id,
        batch_size=options.batch_size,
        ignore_invalid_records=options.ignore_invalid_records,
        max_retry=options.max_retry,
        initial_retry_wait=options.initial_retry_wait,
        max_retry_wait=options.max_retry_wait,
        connection_timeout=options.connection_timeout,
        phone_region=options.phone_region,
        schedule=args.schedule,
        timezone=args.tz,
        delay_s=parse_delay(args.delay),
        enabled=not args.disabled,
        max_failures=args.max_failures,
        created_at=now,
        baseline=now,
    )
    job = jobs.add(job, replace=args.replace)
    if args.json:
        print_json(_job_json(job, now))
        return EXIT_OK
    nxt = job.next_run(now)
    when = nxt.isoformat() if nxt else "only when run by hand (no schedule)"
    stderr.print(Text(f"saved export job {job.name}; next run: {when}"))
    if not Path(job.file).is_file():
        stderr.print(Text(f"note: {job.file} does not exist yet", style="yellow"))
    return EXIT_OK


def _job_json(job: ExportJob, now: datetime | None = None) -> dict[str, Any]:
    document = job.model_dump(mode="json")
    nxt = job.next_run(now or _now())
    document["next_run"] = nxt.isoformat() if nxt else None
    return document


def _jobs_list(args: argparse.Namespace, jobs: ExportJobs) -> int:
    now = _now()
    all_jobs = jobs.all()
    if args.json:
        print_json({"jobs": [_job_json(job, now) for job in all_jobs]})
        return EXIT_OK
    console = stdout_console()
    if not all_jobs:
        console.print("no export jobs; add one with `lcc capi jobs add NAME FILE --tag-id ...`")
        return EXIT_OK
    table = Table("name", "schedule", "zone", "enabled", "next run", "last run", "failures")
    for job in all_jobs:
        last = job.last_run
        last_text = f"{last.outcome} {last.started_at:%Y-%m-%d %H:%M}" if last else "never"
        nxt = job.next_run(now)
        table.add_row(
            job.name,
            job.schedule or "(none)",
            job.timezone,
            "yes" if job.enabled else "NO",
            nxt.isoformat(timespec="minutes") if nxt else "-",
            last_text,
            f"{job.consecutive_failures}/{job.max_failures}",
        )
    console.print(table)
    for job in all_jobs:
        if job.notice:
            console.print(Text(f"{job.name}: {job.notice}", style="yellow"))
    return EXIT_OK


def _print_job(job: ExportJob) -> None:
    console = stdout_console()
    nxt = job.next_run(_now())
    rows = [
        ("file", job.file),
        ("tag id", job.tag_id),
        ("token from", f"${job.token_env}" if job.token_env else "(none: sandbox only)"),
        ("channel id", job.channel_id or "-"),
        ("schedule", f"{job.schedule or '(none)'} in {job.timezone}"),
        ("delay", f"{job.delay_s}s"),
        ("enabled", "yes" if job.enabled else "no"),
        ("next run", nxt.isoformat() if nxt else "-"),
        ("failures", f"{job.consecutive_failures} in a row (disabled at {job.max_failures})"),
        (
            "options",
            f"batch {job.batch_size}, ignore invalid {job.ignore_invalid_records}, "
            f"retries {job.max_retry} from {job.initial_retry_wait}s up to {job.max_retry_wait}s, "
            f"timeout {job.connection_timeout}s, phone region {job.phone_region}",
        ),
    ]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(value))
    console.print(Text(job.name, style="bold underline"))
    console.print(table)
    if job.notice:
        console.print(Text(job.notice, style="yellow"))
    if job.runs:
        runs = Table("started", "trigger", "due", "outcome", "sent", "invalid", "failed", "message")
        for run in reversed(job.runs):
            runs.add_row(
                run.started_at.isoformat(timespec="seconds"),
                run.trigger,
                run.due.isoformat(timespec="minutes") if run.due else "-",
                run.outcome,
                str(run.sent),
                str(run.skipped_invalid),
                str(run.failed),
                Text(run.message or ""),
            )
        console.print(runs)


def _jobs_run(args: argparse.Namespace, store: Store) -> int:
    settings = settings_from(args)
    stderr.print(Text(f"running export job {args.name} ..."))
    report: ExportRun = asyncio.run(run_job(store, settings, args.name, _now()))
    if args.json:
        print_json(report.as_dict())
    else:
        style = "green" if report.outcome == "ok" else "bold red"
        stdout_console().print(Text(report.describe(), style=style))
    if report.outcome == "ok":
        return EXIT_OK
    if report.message and report.sent == 0 and report.failed == 0 and report.batches == 0:
        return EXIT_BAD_INPUT
    return EXIT_FAILED
