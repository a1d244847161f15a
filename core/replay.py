"""Headless replay of fixture campaigns (contract sections 4 and 5).

A replay imports the fixture's world into the data dir, validates and launches its campaign, and
delivers it, through the same use cases as the console and the scheduler. The fixture's `clock`
starts a simulated clock: a scheduled campaign stays Planned until that clock reaches its time
(the replay moves it there; the scheduler's late-start grace does not apply to a clock the replay
moves itself), then it starts as the scheduler would start it.

With `line_api_base` = `sandbox` the LINE sandbox runs in-process with the fixture's faults;
against a served sandbox (`lcc sandbox`) or LINE itself the fixture's faults are not applied (the
server has its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.audience import Funnel
from core.clock import Clock, SimulatedClock, SystemClock
from core.delivery import DeliveryProgress
from core.errors import InputError
from core.fixture import LoadedFixture
from core.models import CampaignState, ScheduledSchedule
from core.sandbox.state import SandboxState
from core.scheduler import ACTOR as SCHEDULER
from core.service import LaunchRefused, Services
from core.settings import Settings
from core.validation import PROFILES_UNREADABLE, Issue

ACTOR = "replay"

ProgressFactory = Callable[[str, str], Callable[[DeliveryProgress], None] | None]
"""(campaign id, campaign name) -> a progress callback for its delivery."""


@dataclass
class ReplayResult:
    campaign_id: str
    name: str
    state: CampaignState
    audience: int = 0
    excluded: int = 0
    delivered: int = 0
    failed: int = 0
    requests: int = 0
    issues: list[Issue] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    expected: bool = False
    notices: list[str] = field(default_factory=list)
    suspend_reason: str | None = None

    @property
    def expectations_met(self) -> bool:
        return not self.mismatches

    @property
    def succeeded(self) -> bool:
        """Met its expectations, or (without any) finished without a refusal."""
        if self.expected:
            return self.expectations_met
        return self.state is CampaignState.FINISHED and not self.issues

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "state": self.state.value,
            "audience": self.audience,
            "excluded": self.excluded,
            "delivered": self.delivered,
            "failed": self.failed,
            "requests": self.requests,
            "expectations_met": self.expectations_met,
            "issues": [issue.model_dump(mode="json") for issue in self.issues],
            "mismatches": self.mismatches,
            "suspend_reason": self.suspend_reason,
            "notices": self.notices,
        }


def _clock_seconds(clock: Clock) -> Callable[[], float]:
    return lambda: clock.now().timestamp()


def _sandbox_for(loaded: LoadedFixture, clock: Clock) -> SandboxState:
    """The in-process sandbox on the replay's clock (retry keys and months follow it)."""
    return SandboxState(spec=loaded.fixture.sandbox, clock=_clock_seconds(clock))


async def replay(
    loaded: LoadedFixture,
    settings: Settings,
    *,
    progress: ProgressFactory | None = None,
    sandbox: SandboxState | None = None,
) -> ReplayResult:
    """Replay one fixture; `sandbox` (tests) is the in-process sandbox to use and inspect."""
    fixture = loaded.fixture
    clock: Clock = SimulatedClock(fixture.clock) if fixture.clock else SystemClock()
    if sandbox is None:
        sandbox = _sandbox_for(loaded, clock)
    else:
        sandbox.set_spec(fixture.sandbox)
        sandbox.clock = _clock_seconds(clock)
    services = Services.open(settings, clock=clock, sandbox=sandbox)
    campaign = services.import_fixture(fixture)
    result = ReplayResult(campaign_id=campaign.id, name=campaign.name, state=campaign.state)
    if not settings.line_is_sandbox and fixture.sandbox.faults:
        result.notices.append(
            f"the fixture's {len(fixture.sandbox.faults)} sandbox fault(s) are not applied: "
            f"LINE is {settings.line_api_base}, not the in-process sandbox"
        )
    result.issues = services.validate(campaign)
    unreadable = [issue for issue in result.issues if issue.code == PROFILES_UNREADABLE]
    if unreadable:  # part of the fixture cannot be read: bad input, not a refused campaign
        raise InputError(unreadable[0].message, source=str(loaded.path), location="segments")
    _apply_funnel(result, services.reach(campaign.id))
    if not result.issues:
        try:
            campaign = await services.launch_async(campaign.id, actor=ACTOR)
        except LaunchRefused as refused:
            result.issues = refused.issues
        else:
            if campaign.state is CampaignState.PLANNED:
                await _reach_due_time(clock, campaign.schedule)
                campaign = await services.start_planned(campaign.id, actor=SCHEDULER)
            if campaign.state is CampaignState.ACTIVE:
                callback = progress(campaign.id, campaign.name) if progress else None
                summary = await services.deliver(campaign.id, actor=ACTOR, progress=callback)
                result.requests = summary.requests
    _apply_funnel(result, services.reach(campaign.id))
    counts = services.counts(campaign.id)
    result.delivered = counts.delivered
    result.failed = counts.failed
    final = services.store.campaigns.get(campaign.id)
    result.state = final.state
    result.suspend_reason = final.suspend_reason
    result.notices.extend(services.notices)
    _check_expectations(loaded, result)
    return result


def _apply_funnel(result: ReplayResult, reach: Funnel | None) -> None:
    if reach is not None:
        result.audience = reach.segment
        result.excluded = reach.excluded


async def _reach_due_time(clock: Clock, schedule: object) -> None:
    """Move the simulated clock to the campaign's time, or wait for it on the real clock."""
    if not isinstance(schedule, ScheduledSchedule):
        return
    if isinstance(clock, SimulatedClock):
        clock.advance_to(schedule.at)
        return
    wait = (schedule.at - clock.now()).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait)


def _check_expectations(loaded: LoadedFixture, result: ReplayResult) -> None:
    expect = loaded.fixture.expect
    if expect is None:
        return
    result.expected = True
    observed = {
        "state": result.state,
        "delivered": result.delivered,
        "failed": result.failed,
        "excluded": result.excluded,
    }
    for key, wanted in expect.model_dump(exclude_none=True).items():
        got = observed[key]
        if got != wanted:
            got_text = got.value if isinstance(got, CampaignState) else got
            wanted_text = wanted.value if isinstance(wanted, CampaignState) else wanted
            result.mismatches.append(f"{key}: expected {wanted_text}, got {got_text}")
