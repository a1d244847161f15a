"""Saved Conversion API export jobs: a file, a tag, options, a cron schedule; run by the scheduler.

A job is Treasure Data's "scheduled job with result export" for the LINE Conversion API: the same
file path is exported on a schedule (cron with Treasure Data's semantics, `core.cron`), in a time
zone, optionally delayed. The token is never stored, only the name of its environment variable.

Safe to run every hour, from more than one scheduler:

* A run is claimed before it starts, under the data dir's lock (`store.transaction()`): the
  claim moves `last_due` to the due time it handles, so a second scheduler finds nothing due.
  A job runs at most once per due time; a scheduler that was off for a while runs a job once,
  for its latest due time, not once per missed time.
* A job runs once at a time: a live claim blocks the next one. A claim left by a process that
  died is recorded as an interrupted run by the next pass (same host: the pid is gone; other
  hosts: after `STALE_CLAIM`).
* A job that keeps failing is disabled after `max_failures` consecutive failed runs (default 3),
  with a notice in its record and in the scheduler's output. A run fails unless every event
  was accepted (the export's exit code 0); an interrupted run counts as a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tinydb import Query
from tinydb.table import Table

from core import cron
from core.capi import ExportOptions, ExportSummary, export_file
from core.errors import InputError, NotFound
from core.settings import Settings
from core.store import Store

DB_NAME = "capi_jobs"
TABLE = "jobs"
KEEP_RUNS = 20
DEFAULT_MAX_FAILURES = 3
MAX_DELAY_S = 24 * 3600
STALE_CLAIM = timedelta(hours=24)
"""A claim older than this is taken to be dead even when its host cannot be asked."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DELAY = re.compile(r"([0-9]+)\s*([smh]?)")

Trigger = Literal["schedule", "manual"]
RunOutcome = Literal["ok", "failed", "interrupted"]


class JobRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: Trigger
    due: datetime | None = None
    """The scheduled time this run handled (None for a manual run)."""
    started_at: datetime
    finished_at: datetime | None = None
    outcome: RunOutcome
    sent: int = 0
    skipped_invalid: int = 0
    failed: int = 0
    batches: int = 0
    message: str | None = None


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str
    host: str
    pid: int
    at: datetime
    trigger: Trigger
    due: datetime | None = None


class ExportJob(BaseModel):
    """A saved export. Option fields and bounds are `core.capi.ExportOptions`'."""

    model_config = ConfigDict(extra="forbid")

    name: str
    file: str
    tag_id: str
    token_env: str | None = None
    channel_id: str | None = None
    batch_size: int = 1000
    ignore_invalid_records: bool = True
    max_retry: int = 8
    initial_retry_wait: int = 15
    max_retry_wait: int = 3600
    connection_timeout: int = 300
    phone_region: str = "JP"
    schedule: str = ""
    """Cron (Treasure Data's semantics) or a preset; "" means it runs only when asked."""
    timezone: str = "UTC"
    delay_s: int = 0
    """Seconds after each scheduled time before the run starts (Treasure Data's delay)."""
    enabled: bool = True
    max_failures: int = DEFAULT_MAX_FAILURES
    consecutive_failures: int = 0
    notice: str | None = None
    created_at: datetime
    baseline: datetime
    """Scheduled times at or before this never run: creation, or the last re-enabling."""
    last_due: datetime | None = None
    """The latest scheduled time already claimed by a run."""
    claim: Claim | None = None
    runs: list[JobRun] = Field(default_factory=list)

    def options(self) -> ExportOptions:
        return ExportOptions(
            tag_id=self.tag_id,
            token_env=self.token_env,
            channel_id=self.channel_id,
            batch_size=self.batch_size,
            ignore_invalid_records=self.ignore_invalid_records,
            max_retry=self.max_retry,
            initial_retry_wait=self.initial_retry_wait,
            max_retry_wait=self.max_retry_wait,
            connection_timeout=self.connection_timeout,
            phone_region=self.phone_region,
        )

    def check(self) -> None:
        """Refuse a job that could never run: bad options, schedule, zone, delay or name."""
        if not _NAME.fullmatch(self.name):
            raise InputError(
                f"{self.name!r}: a job name is 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                source="job name",
            )
        self.options().check(sandbox=True, need_token=False)
        cron.parse(self.schedule)
        cron.zone(self.timezone)
        if not 0 <= self.delay_s <= MAX_DELAY_S:
            raise InputError(f"must be between 0 and {MAX_DELAY_S} seconds", source="--delay")
        if not 1 <= self.max_failures <= 100:
            raise InputError("must be between 1 and 100", source="--max-failures")

    def _mark(self) -> datetime:
        if self.last_due is not None and self.last_due > self.baseline:
            return self.last_due
        return self.baseline

    def due_at(self, now: datetime) -> datetime | None:
        """The scheduled time a run is due for at `now` (delay applied), or None."""
        schedule = cron.parse(self.schedule)
        if schedule is None or not self.enabled:
            return None
        until = now - timedelta(seconds=self.delay_s)
        return cron.latest_run(
            schedule, after=self._mark(), until=until, tz=cron.zone(self.timezone)
        )

    def next_run(self, now: datetime) -> datetime | None:
        """When the next scheduled run starts (delay included); None without a schedule."""
        schedule = cron.parse(self.schedule)
        if schedule is None or not self.enabled:
            return None
        due = self.due_at(now)
        if due is not None:
            return due + timedelta(seconds=self.delay_s)
        after = max(self._mark(), now - timedelta(seconds=self.delay_s))
        for run in cron.iter_runs(schedule, after, cron.zone(self.timezone)):
            return run + timedelta(seconds=self.delay_s)
        return None

    @property
    def last_run(self) -> JobRun | None:
        return self.runs[-1] if self.runs else None


@dataclass(frozen=True)
class ExportRun:
    """One run, as the scheduler and `lcc capi jobs run` report it."""

    job: str
    trigger: Trigger
    due: datetime | None
    outcome: RunOutcome
    sent: int
    skipped_invalid: int
    failed: int
    batches: int
    message: str | None
    disabled: bool = False
    notice: str | None = None

    def describe(self) -> str:
        when = f" (due {self.due.isoformat()})" if self.due else ""
        if self.outcome == "ok":
            text = f"export job {self.job}{when}: ok, {self.sent} events sent"
            if self.skipped_invalid:
                text += f", {self.skipped_invalid} invalid rows skipped"
        elif self.outcome == "interrupted":
            text = f"export job {self.job}{when}: an earlier run was interrupted"
        else:
            text = f"export job {self.job}{when}: FAILED, {self.sent} sent, {self.failed} failed"
            if self.message:
                text += f": {self.message}"
        if self.disabled and self.notice:
            text += f". {self.notice}"
        return text

    def __str__(self) -> str:
        return self.describe()

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "trigger": self.trigger,
            "due": self.due.isoformat() if self.due else None,
            "outcome": self.outcome,
            "sent": self.sent,
            "skipped_invalid": self.skipped_invalid,
            "failed": self.failed,
            "batches": self.batches,
            "message": self.message,
            "disabled": self.disabled,
            "notice": self.notice,
        }


def parse_delay(text: str) -> int:
    """`90`, `90s`, `15m` or `2h` to seconds."""
    match = _DELAY.fullmatch(text.strip().lower())
    if match is None:
        raise InputError(
            f"{text!r} is not a delay; write seconds, minutes or hours: 90s, 15m, 2h",
            source="--delay",
        )
    amount, unit = int(match.group(1)), match.group(2) or "s"
    seconds = amount * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds > MAX_DELAY_S:
        raise InputError(f"must be at most 24h (got {text})", source="--delay")
    return seconds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExportJobs:
    """The saved jobs of one data dir (`capi_jobs.json`). Every change holds the data dir lock."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _table(self) -> Table:
        return self._store.table(DB_NAME, TABLE)

    def all(self) -> list[ExportJob]:
        jobs = [ExportJob.model_validate(doc) for doc in self._table.all()]
        return sorted(jobs, key=lambda job: job.name)

    def find(self, name: str) -> ExportJob | None:
        doc = self._table.get(Query().name == name)
        return ExportJob.model_validate(doc) if doc is not None else None

    def get(self, name: str) -> ExportJob:
        job = self.find(name)
        if job is None:
            raise NotFound(f"no export job {name!r} in {self._store.data_dir}")
        return job

    def add(self, job: ExportJob, *, replace: bool = False) -> ExportJob:
        job.check()
        with self._store.transaction():
            existing = self.find(job.name)
            if existing is not None and not replace:
                raise InputError(
                    f"an export job named {job.name!r} exists; remove it first or use --replace",
                    source="job name",
                )
            if existing is not None:
                job = job.model_copy(update={"runs": existing.runs, "last_due": existing.last_due})
            self._save(job)
        return job

    def remove(self, name: str) -> None:
        with self._store.transaction():
            self.get(name)
            self._table.remove(Query().name == name)

    def set_enabled(self, name: str, enabled: bool, *, now: datetime) -> ExportJob:
        def change(job: ExportJob) -> ExportJob:
            if enabled and not job.enabled:
                return job.model_copy(
                    update={
                        "enabled": True,
                        "consecutive_failures": 0,
                        "notice": None,
                        "baseline": now,
                    }
                )
            return job.model_copy(update={"enabled": enabled})

        return self._update(name, change)

    def _save(self, job: ExportJob) -> None:
        self._table.upsert(job.model_dump(mode="json"), Query().name == job.name)

    def _update(self, name: str, change: Callable[[ExportJob], ExportJob]) -> ExportJob:
        with self._store.transaction():
            job = change(self.get(name))
            self._save(job)
            return job

    # --- claiming -----------------------------------------------------------------------------

    def claim(
        self, name: str, now: datetime, *, trigger: Trigger
    ) -> tuple[Claim | None, list[ExportRun]]:
        """Claim a run of `name` now: a scheduled one only when due, a manual one always.

        Returns the claim (None when there is nothing to run, or a live run holds the job) and
        the interrupted runs this found and recorded.
        """
        interrupted: list[ExportRun] = []
        with self._store.transaction():
            job = self.find(name)
            if job is None:
                return None, interrupted
            if job.claim is not None:
                if not self._stale(job.claim, now):
                    return None, interrupted
                job, run = self._record_interrupted(job, now)
                interrupted.append(run)
            due = None
            if trigger == "schedule":
                due = job.due_at(now)
                if due is None:
                    self._save(job)
                    return None, interrupted
            claim = Claim(
                token=uuid.uuid4().hex,
                host=socket.gethostname(),
                pid=os.getpid(),
                at=now,
                trigger=trigger,
                due=due,
            )
            update: dict[str, Any] = {"claim": claim}
            if due is not None:
                update["last_due"] = due
            self._save(job.model_copy(update=update))
            return claim, interrupted

    def _stale(self, claim: Claim, now: datetime) -> bool:
        if claim.host == socket.gethostname() and not _pid_alive(claim.pid):
            return True
        return now - claim.at > STALE_CLAIM

    def _record_interrupted(self, job: ExportJob, now: datetime) -> tuple[ExportJob, ExportRun]:
        claim = job.claim
        assert claim is not None
        run = JobRun(
            trigger=claim.trigger,
            due=claim.due,
            started_at=claim.at,
            finished_at=None,
            outcome="interrupted",
            message=f"the run started by pid {claim.pid} on {claim.host} never finished",
        )
        job, report = self._with_run(job.model_copy(update={"claim": None}), run, now)
        return job, report

    def finish(self, name: str, claim: Claim, run: JobRun, *, now: datetime) -> ExportRun:
        """Record a finished run, count failures, disable the job when they pile up."""
        with self._store.transaction():
            job = self.find(name)
            if job is None:
                # Removed while it ran: nothing to record into.
                return _report(name, run, None)
            if job.claim is not None and job.claim.token == claim.token:
                job = job.model_copy(update={"claim": None})
            job, report = self._with_run(job, run, now)
            self._save(job)
            return report

    def _with_run(self, job: ExportJob, run: JobRun, now: datetime) -> tuple[ExportJob, ExportRun]:
        runs = [*job.runs, run][-KEEP_RUNS:]
        failures = 0 if run.outcome == "ok" else job.consecutive_failures + 1
        update: dict[str, Any] = {"runs": runs, "consecutive_failures": failures}
        disabled_now = False
        if failures >= job.max_failures and job.enabled:
            disabled_now = True
            last = f" (last: {run.message})" if run.message else ""
            update["enabled"] = False
            update["notice"] = (
                f"disabled at {now.isoformat(timespec='seconds')} after {failures} consecutive "
                f"failed runs{last}; fix the cause, then `lcc capi jobs enable {job.name}`"
            )
        job = job.model_copy(update=update)
        return job, _report(job.name, run, job.notice if disabled_now else None)


def _report(name: str, run: JobRun, notice: str | None) -> ExportRun:
    return ExportRun(
        job=name,
        trigger=run.trigger,
        due=run.due,
        outcome=run.outcome,
        sent=run.sent,
        skipped_invalid=run.skipped_invalid,
        failed=run.failed,
        batches=run.batches,
        message=run.message,
        disabled=notice is not None,
        notice=notice,
    )


def _summary_message(summary: ExportSummary) -> str | None:
    if summary.refused_input:
        return f"{summary.invalid.rows} invalid rows and --no-ignore-invalid-records: nothing sent"
    if summary.input_aborted:
        return summary.input_aborted
    if summary.rows and not summary.valid:
        return f"all {summary.rows} rows were invalid"
    if summary.stopped:
        return summary.stopped
    if summary.problems:
        first = summary.problems[0].describe()
        more = len(summary.problems) - 1
        return first + (f" (and {more} more batches)" if more else "")
    return None


async def _execute(
    jobs: ExportJobs,
    job: ExportJob,
    claim: Claim,
    settings: Settings,
    now: datetime,
    *,
    sandbox: Any,
    transport: Any,
    sleep: Any,
) -> ExportRun:
    started = now
    timer = time.monotonic()

    def finished() -> datetime:
        """`started` plus the time taken: never before `started`, whatever clock gave `now`."""
        return started + timedelta(seconds=time.monotonic() - timer)

    try:
        summary = await export_file(
            Path(job.file),
            job.options(),
            capi_base=settings.capi_base,
            now=now,
            sandbox=sandbox,
            transport=transport,
            sleep=sleep,
        )
    except InputError as exc:
        run = JobRun(
            trigger=claim.trigger,
            due=claim.due,
            started_at=started,
            finished_at=finished(),
            outcome="failed",
            message=exc.describe(),
        )
    except Exception as exc:
        run = JobRun(
            trigger=claim.trigger,
            due=claim.due,
            started_at=started,
            finished_at=finished(),
            outcome="failed",
            message=f"internal error: {type(exc).__name__}: {exc}",
        )
    else:
        try:
            run = JobRun(
                trigger=claim.trigger,
                due=claim.due,
                started_at=started,
                finished_at=finished(),
                outcome="ok" if summary.exit_code == 0 else "failed",
                sent=summary.sent,
                skipped_invalid=summary.skipped_invalid,
                failed=summary.failed,
                batches=summary.batches,
                message=_summary_message(summary),
            )
        finally:
            summary.close()
    return jobs.finish(job.name, claim, run, now=now)


async def run_due_exports(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    sandbox: Any = None,
    transport: Any = None,
    sleep: Any = None,
) -> list[ExportRun]:
    """Run every export job that is due at `now`, once each; the runs, in job-name order.

    `sandbox` is the `SandboxState` to send to when `capi_base` is `sandbox` (a fresh one
    otherwise). Interrupted runs found on the way are reported too.
    """
    if now.tzinfo is None:
        raise ValueError("`now` needs a time zone")
    jobs = ExportJobs(store)
    reports: list[ExportRun] = []
    claimed: list[tuple[ExportJob, Claim]] = []
    for job in jobs.all():
        if not job.enabled or not job.schedule:
            continue
        claim, interrupted = jobs.claim(job.name, now, trigger="schedule")
        reports.extend(interrupted)
        if claim is not None:
            claimed.append((jobs.get(job.name), claim))
    runs = await asyncio.gather(
        *(
            _execute(
                jobs, job, claim, settings, now, sandbox=sandbox, transport=transport, sleep=sleep
            )
            for job, claim in claimed
        )
    )
    return [*reports, *runs]


async def run_job(
    store: Store,
    settings: Settings,
    name: str,
    now: datetime,
    *,
    sandbox: Any = None,
    transport: Any = None,
    sleep: Any = None,
) -> ExportRun:
    """Run `name` now, whatever its schedule (and even when disabled): `lcc capi jobs run`."""
    jobs = ExportJobs(store)
    job = jobs.get(name)
    claim, _ = jobs.claim(name, now, trigger="manual")
    if claim is None:
        running = jobs.get(name).claim
        since = f" since {running.at.isoformat()} (pid {running.pid})" if running else ""
        raise InputError(f"export job {name!r} is already running{since}", source="job name")
    return await _execute(
        jobs, job, claim, settings, now, sandbox=sandbox, transport=transport, sleep=sleep
    )
