"""The scheduler pass: due campaigns start, late ones wait for the operator, leases exclude."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from core.clock import SimulatedClock
from core.fixture import Fixture
from core.models import CampaignState, ScheduledSchedule, SenderAccount
from core.sandbox.faults import Fault
from core.scheduler import Scheduler, run_pass
from core.service import HELD, LATE_START, Services
from tests.core.test_delivery import START, delivered_counts, services_for, user, world


def planned(services: Services, fixture: Fixture, *, due_in: timedelta) -> str:
    campaign = services.import_fixture(fixture)
    at = services.clock.now() + due_in
    services.update_draft(
        campaign.id,
        lambda spec: spec.model_copy(update={"schedule": ScheduledSchedule(at=at)}),
    )
    assert services.launch(campaign.id, actor="op").state is CampaignState.PLANNED
    return campaign.id


async def test_a_planned_campaign_starts_when_its_time_comes(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = planned(services, world(5), due_in=timedelta(hours=2))
    early = await run_pass(services)
    assert early.started == [] and not early.failed
    assert services.store.campaigns.get(campaign_id).state is CampaignState.PLANNED
    clock.advance_to(START + timedelta(hours=2, minutes=3))
    report = await run_pass(services)
    assert report.started == [campaign_id] and report.finished == [campaign_id]
    assert not report.failed
    assert delivered_counts(services) == {user(i): 1 for i in range(5)}
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.FINISHED and campaign.aggregation_unit
    actions = [t.action for t in services.store.transitions.for_campaign(campaign_id)]
    assert actions == ["schedule", "start", "finish"]


async def test_a_campaign_found_past_the_grace_is_flagged_not_sent(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = planned(services, world(3), due_in=timedelta(minutes=30))
    clock.advance_to(START + timedelta(hours=5))
    report = await run_pass(services)
    [(flagged, reason)] = report.flagged
    assert flagged == campaign_id and "late" in reason and "grace 15 min" in reason
    assert not report.failed and services.sandbox.deliveries == {}
    assert services.store.campaigns.get(campaign_id).state is CampaignState.PLANNED
    assert services.store.flags.get(campaign_id, LATE_START) is not None
    again = await run_pass(services)
    assert again.flagged == [] and [c for c, _ in again.waiting] == [campaign_id]
    # The operator decides: launch it now.
    await services.launch_async(campaign_id, actor="op")
    assert services.store.flags.get(campaign_id, LATE_START) is None
    await services.deliver(campaign_id, actor="op")
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


async def test_within_the_grace_it_still_starts(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = planned(services, world(2), due_in=timedelta(minutes=10))
    clock.advance_to(START + timedelta(minutes=24))
    report = await run_pass(services)
    assert report.started == [campaign_id]


async def test_failing_validation_at_its_time_suspends_with_the_reason(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = planned(services, world(2), due_in=timedelta(minutes=5))
    services.store.directory.save_account(SenderAccount(id="oa", name="Acme", workspaces=[]))
    clock.advance_to(START + timedelta(minutes=6))
    report = await run_pass(services)
    assert report.failed and [c for c, _ in report.suspended] == [campaign_id]
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.SUSPENDED
    assert (campaign.suspend_reason or "").startswith("not started at its scheduled time")
    assert "sender_account" in (campaign.suspend_reason or "")
    assert services.sandbox.deliveries == {}


async def test_interrupted_active_campaigns_are_resumed_unless_someone_holds_them(
    data_dir: Path,
) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(4))
    await services.launch_async(campaign.id, actor="op")
    services.release_claim(campaign.id)  # as if the launching process had died
    other = services_for(data_dir, sandbox=services.sandbox)
    assert other.try_claim(campaign.id)
    busy = await run_pass(services)
    assert busy.busy == [campaign.id] and busy.resumed == []
    other.release_claim(campaign.id)
    report = await run_pass(services)
    assert report.resumed == [campaign.id] and report.finished == [campaign.id]
    assert delivered_counts(services) == {user(i): 1 for i in range(4)}


async def test_a_campaign_this_process_launched_is_left_to_its_launcher(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(2))
    await services.launch_async(campaign.id, actor="op")
    report = await run_pass(services)
    assert report.resumed == [] and report.busy == []
    await services.deliver(campaign.id, actor="op")


async def test_held_planned_campaigns_wait_for_the_operator(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = planned(services, world(2), due_in=timedelta(minutes=5))
    services.kill_switch("oa", actor="op", reason="account under review")
    assert services.store.flags.get(campaign_id, HELD) is not None
    clock.advance_to(START + timedelta(minutes=6))
    report = await run_pass(services)
    assert [c for c, _ in report.waiting] == [campaign_id] and report.started == []


async def test_a_fatal_answer_during_a_pass_fails_the_pass(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock, faults=[Fault(kind="unauthorized")])
    campaign_id = planned(services, world(2), due_in=timedelta(minutes=1))
    clock.advance_to(START + timedelta(minutes=2))
    report = await run_pass(services)
    assert report.failed and [c for c, _ in report.suspended] == [campaign_id]
    assert "401" in report.suspended[0][1]


async def test_the_daemon_stops_cleanly(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock, faults=[Fault(kind="latency", ms=10)])
    campaign_id = planned(services, world(200), due_in=timedelta(seconds=1))
    clock.advance_to(START + timedelta(seconds=2))
    lines: list[str] = []
    scheduler = Scheduler(services, interval_s=0.05, listener=lines.append)
    task = asyncio.create_task(scheduler.run())
    for _ in range(200):
        await asyncio.sleep(0.02)
        if services.delivering(campaign_id):
            break
    scheduler.stop()
    await asyncio.wait_for(task, 10)
    assert any(line.startswith("started") for line in lines)
    campaign = services.store.campaigns.get(campaign_id)
    recorded = services.counts(campaign_id).delivered
    assert recorded == sum(delivered_counts(services).values()), "nothing in flight lost"
    if campaign.state is CampaignState.ACTIVE:  # the next scheduler (a new process) resumes
        after = services_for(data_dir, clock=clock, sandbox=services.sandbox)
        report = await run_pass(after)
        assert report.resumed == [campaign_id]
    assert delivered_counts(services) == {user(i): 1 for i in range(200)}
