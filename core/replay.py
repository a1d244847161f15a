"""Headless replay of fixture campaigns (contract section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core import states
from core.audience import funnel
from core.clock import SimulatedClock, SystemClock
from core.fixture import LoadedFixture
from core.models import CampaignState, ScheduledSchedule
from core.sandbox.app import SandboxState
from core.service import Services
from core.settings import Settings
from core.validation import Issue

ACTOR = "replay"


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
        }


async def replay(loaded: LoadedFixture, settings: Settings) -> ReplayResult:
    fixture = loaded.fixture
    clock = SimulatedClock(fixture.clock) if fixture.clock else SystemClock()
    services = Services.open(settings, clock=clock, sandbox=SandboxState(spec=fixture.sandbox))
    campaign = services.import_fixture(fixture)
    result = ReplayResult(campaign_id=campaign.id, name=campaign.name, state=campaign.state)
    segment = (
        services.store.directory.segment(
            *(campaign.audience.parent_segment, campaign.audience.segment)
        )
        if campaign.audience
        else None
    )
    if segment is not None:
        reach = funnel(segment)
        result.audience = reach.segment
        result.excluded = reach.excluded
    result.issues = services.validate(campaign)
    if not result.issues:
        services.launch(campaign.id, actor=ACTOR)
        if isinstance(campaign.schedule, ScheduledSchedule):
            if isinstance(clock, SimulatedClock):
                clock.advance_to(campaign.schedule.at)
            services.act(campaign.id, states.Action.START, actor="scheduler")
        summary = await services.deliver(campaign.id, actor=ACTOR)
        result.requests = summary.requests
        counts = services.counts(campaign.id)
        result.delivered = counts.delivered
        result.failed = counts.failed
    result.state = services.store.campaigns.get(campaign.id).state
    _check_expectations(loaded, result)
    return result


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
