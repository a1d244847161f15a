"""The scheduler: starts Planned campaigns when their time comes, resumes interrupted deliveries,
and runs due conversion exports.

One pass (`run_pass`) is what `lcc scheduler --once` runs, what the daemon (`lcc scheduler`)
repeats, and what the open console runs periodically. A campaign is delivered only by whoever
holds its lease, so two schedulers, or a console and a scheduler, never send for the same
campaign at once; a delivery interrupted by a crash or a kill has no holder and is resumed by the
next pass (pending requests only, under their stored retry keys).

A Planned campaign found more than the grace (`schedule_grace_minutes`, 15 by default) past its
time is not started silently (a server that was down for a day must not send yesterday's
"sale starts now"): it stays Planned, flagged for the operator, who launches or cancels it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.delivery import DeliveryProgress
from core.errors import LccError
from core.models import CampaignState, ScheduledSchedule
from core.service import HELD, LATE_START, UNKNOWN_OUTCOMES, Services
from core.store import CampaignFlag

log = logging.getLogger(__name__)

ACTOR = "scheduler"

ProgressFor = Callable[[str], Callable[[DeliveryProgress], None] | None]
"""Given a campaign id, the progress callback for its delivery (or None)."""


@dataclass
class PassReport:
    """What one pass did. `failed` is what makes `lcc scheduler --once` exit 1."""

    at: datetime
    started: list[str] = field(default_factory=list)
    """Planned campaigns that became Active in this pass."""
    resumed: list[str] = field(default_factory=list)
    """Active campaigns whose interrupted delivery this pass took up again."""
    finished: list[str] = field(default_factory=list)
    suspended: list[tuple[str, str]] = field(default_factory=list)
    """(campaign, reason): suspended during this pass (validation at due time, fatal answers)."""
    flagged: list[tuple[str, str]] = field(default_factory=list)
    """(campaign, reason): newly flagged for the operator (late start)."""
    waiting: list[tuple[str, str]] = field(default_factory=list)
    """(campaign, reason): due, but waiting for an operator's decision flagged earlier."""
    busy: list[str] = field(default_factory=list)
    """Being delivered elsewhere (another process holds the lease)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    exports: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    """Deliveries still running when the pass was asked not to wait."""
    listener: Callable[[str], None] | None = field(default=None, repr=False)
    """Hears a line per event as it happens (the daemon prints them)."""

    def note(self, kind: str, campaign_id: str, reason: str | None = None) -> None:
        """Record an event: `kind` is one of the list fields above."""
        target = getattr(self, kind)
        target.append((campaign_id, reason or "") if reason is not None else campaign_id)
        if self.listener is not None:
            self.listener(_LABELS[kind] + f" {campaign_id}" + (f": {reason}" if reason else ""))

    @property
    def failed(self) -> bool:
        return bool(self.suspended or self.errors)

    def lines(self) -> list[str]:
        """A line per thing that happened, for people."""
        out: list[str] = []
        for kind, label in _LABELS.items():
            for item in getattr(self, kind):
                if isinstance(item, tuple):
                    out.append(f"{label} {item[0]}: {item[1]}")
                else:
                    out.append(f"{label} {item}")
        out += [f"conversion export: {run}" for run in self.exports]
        return out


_LABELS = {
    "started": "started",
    "resumed": "resumed",
    "finished": "finished",
    "suspended": "suspended",
    "flagged": "flagged for the operator",
    "waiting": "waiting for the operator",
    "busy": "being delivered by another process",
    "errors": "error",
}


def _due_at(schedule: object) -> datetime | None:
    return schedule.at if isinstance(schedule, ScheduledSchedule) else None


async def run_pass(
    services: Services,
    *,
    now: datetime | None = None,
    wait: bool = True,
    progress: ProgressFor | None = None,
    apply_grace: bool = True,
    exports: bool = True,
    listener: Callable[[str], None] | None = None,
) -> PassReport:
    """One scheduler pass; with `wait` (the default) it returns when its deliveries are done.

    `apply_grace=False` is for replays that move their own simulated clock to the due time.
    """
    now = now or services.clock.now()
    report = PassReport(at=now, listener=listener)
    grace = timedelta(minutes=services.settings.schedule_grace_minutes)
    jobs: list[tuple[str, bool]] = []
    for campaign in services.store.campaigns.in_state(CampaignState.PLANNED):
        due = _due_at(campaign.schedule)
        if due is None or due > now:
            continue
        flags = {flag.kind: flag for flag in services.store.flags.for_campaign(campaign.id)}
        held = flags.get(HELD) or flags.get(LATE_START)
        if held is not None:
            report.note("waiting", campaign.id, held.reason)
            continue
        late = now - due
        if apply_grace and late > grace:
            reason = (
                f"was due at {due.isoformat()} and is {_duration(late)} late (grace "
                f"{services.settings.schedule_grace_minutes:g} min); not started on its own: "
                "launch it now or cancel it"
            )
            services.store.flags.raise_flag(
                CampaignFlag(
                    campaign_id=campaign.id,
                    kind=LATE_START,
                    reason=reason,
                    at=now,
                    data={"due": due.isoformat()},
                )
            )
            report.note("flagged", campaign.id, reason)
            continue
        if not services.try_claim(campaign.id):
            report.note("busy", campaign.id)
            continue
        jobs.append((campaign.id, True))
    for campaign in services.store.campaigns.in_state(CampaignState.ACTIVE):
        if services.claimed(campaign.id) or services.delivering(campaign.id):
            continue  # this process launched it or delivers it already
        if services.store.flags.get(campaign.id, UNKNOWN_OUTCOMES) is not None:
            continue
        if not services.try_claim(campaign.id):
            report.note("busy", campaign.id)
            continue
        jobs.append((campaign.id, False))

    async def job(campaign_id: str, planned: bool) -> None:
        try:
            await _run_job(services, report, campaign_id, planned, progress)
        except LccError as exc:
            report.note("errors", campaign_id, str(exc))
        except Exception as exc:  # one campaign's bug must not stop the others
            log.exception("scheduler: campaign %s failed", campaign_id)
            report.note("errors", campaign_id, f"{type(exc).__name__}: {exc}")
        finally:
            if not services.delivering(campaign_id):
                services.release_claim(campaign_id)

    report.tasks = [asyncio.create_task(job(cid, planned)) for cid, planned in jobs]
    if exports:
        await _run_exports(services, report, now)
    if wait:
        await asyncio.gather(*report.tasks)
        report.tasks = []
    return report


async def _run_job(
    services: Services,
    report: PassReport,
    campaign_id: str,
    planned: bool,
    progress: ProgressFor | None,
) -> None:
    if planned:
        campaign = await services.start_planned(campaign_id, actor=ACTOR)
        if campaign.state is CampaignState.SUSPENDED:
            report.note("suspended", campaign_id, campaign.suspend_reason or "suspended")
            return
        report.note("started", campaign_id)
    else:
        report.note("resumed", campaign_id)
    callback = progress(campaign_id) if progress is not None else None
    await services.deliver(campaign_id, actor=ACTOR, progress=callback)
    after = services.store.campaigns.get(campaign_id)
    if after.state is CampaignState.FINISHED:
        report.note("finished", campaign_id)
    elif after.state is CampaignState.SUSPENDED:
        report.note("suspended", campaign_id, after.suspend_reason or "suspended")


async def _run_exports(services: Services, report: PassReport, now: datetime) -> None:
    """Conversion exports that are due (`core.export_jobs`, when this build has it)."""
    if importlib.util.find_spec("core.export_jobs") is None:
        return
    try:
        module = importlib.import_module("core.export_jobs")
        run_due_exports = module.run_due_exports
        sandbox = services.sandbox if services.settings.capi_is_sandbox else None
        runs = await run_due_exports(services.store, services.settings, now, sandbox=sandbox)
        report.exports.extend(runs)
    except LccError as exc:
        report.note("errors", "conversion exports", str(exc))
    except Exception as exc:
        log.exception("scheduler: conversion exports failed")
        report.note("errors", "conversion exports", f"{type(exc).__name__}: {exc}")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} days"


class Scheduler:
    """The daemon: a pass every `interval_s` seconds until stopped.

    Deliveries run alongside the passes (a long campaign never delays another one's start).
    `stop()` (SIGTERM, ctrl+c) stops sending at once, lets requests in flight finish, records
    them, and returns; the campaigns stay Active and the next scheduler resumes them.
    """

    def __init__(
        self,
        services: Services,
        *,
        interval_s: float | None = None,
        progress: ProgressFor | None = None,
        listener: Callable[[str], None] | None = None,
    ) -> None:
        self.services = services
        self.interval_s = interval_s or services.settings.scheduler_interval_s
        self.progress = progress
        self.listener = listener
        self.reports: list[PassReport] = []
        self._failed_earlier = False
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def failed(self) -> bool:
        return self._failed_earlier or any(report.failed for report in self.reports)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        self.services.stop_deliveries("the scheduler is shutting down")

    async def run(self) -> None:
        self._stop = asyncio.Event()
        try:
            while not self._stop.is_set():
                report = await run_pass(
                    self.services, wait=False, progress=self.progress, listener=self.listener
                )
                self.reports.append(report)
                if len(self.reports) > 100:
                    self._failed_earlier |= any(r.failed for r in self.reports[:-100])
                    del self.reports[:-100]
                for task in report.tasks:
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
                except TimeoutError:
                    pass
        finally:
            self.services.stop_deliveries("the scheduler is shutting down")
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
