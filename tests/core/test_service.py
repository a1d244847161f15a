"""Use cases shared by every front door: editing drafts, launching, refusing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core import states
from core.delivery import DeliveryProgress
from core.delivery_log import hash_user_id
from core.errors import IllegalTransition, InputError
from core.fixture import load_fixture
from core.models import CampaignState, ScheduledSchedule, TextV2Message
from core.service import HELD, DeliveryBusy, LaunchRefused, Services
from core.settings import Settings
from tests.conftest import FIXTURES
from tests.core.test_delivery import (
    START,
    delivered_counts,
    launched,
    services_for,
    user,
    world,
)


def welcome(settings: Settings) -> tuple[Services, str]:
    services = Services.open(settings)
    campaign = services.import_fixture(load_fixture(FIXTURES / "welcome_text.json").fixture)
    return services, campaign.id


def test_update_draft_changes_content_and_launch_freezes_it(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.update_draft(
        campaign_id,
        lambda spec: spec.model_copy(update={"messages": [TextV2Message(text="Hello")]}),
    )
    stored = services.store.campaigns.get(campaign_id)
    assert isinstance(stored.messages[0], TextV2Message) and stored.messages[0].text == "Hello"
    assert services.launch(campaign_id, actor="op").state is CampaignState.ACTIVE
    with pytest.raises(IllegalTransition, match="cannot edit a campaign that is Active"):
        services.update_draft(campaign_id, lambda spec: spec)


def test_launch_refuses_an_invalid_campaign_and_leaves_it_a_draft(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.update_draft(campaign_id, lambda spec: spec.model_copy(update={"messages": []}))
    with pytest.raises(LaunchRefused) as caught:
        services.launch(campaign_id, actor="op")
    assert [issue.code for issue in caught.value.issues] == ["messages_required"]
    assert services.store.campaigns.get(campaign_id).state is CampaignState.DRAFT


async def test_deliver_finishes_and_records_the_history(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.launch(campaign_id, actor="op")
    seen: list[DeliveryProgress] = []
    summary = await services.deliver(campaign_id, actor="op", progress=seen.append)
    assert summary.delivered == 2
    history = services.store.transitions.for_campaign(campaign_id)
    assert [t.action for t in history] == [states.Action.LAUNCH, states.Action.FINISH]


# --- launch, quota, test send, leases, kill switch -------------------------------------------


async def test_quota_preflight_refuses_with_both_numbers_and_changes_nothing(
    data_dir: Path,
) -> None:
    services = services_for(data_dir, quota=25)
    services.sandbox.usage[START.strftime("%Y%m")] = 0
    campaign = services.import_fixture(world(30))
    with pytest.raises(LaunchRefused) as caught:
        await services.launch_async(campaign.id, actor="op")
    [issue] = caught.value.issues
    assert (issue.tab.value, issue.code) == ("activation", "quota_exceeded")
    assert "30 messages" in issue.message and "25 left" in issue.message
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.manifest(campaign.id) is None
    assert not services.claimed(campaign.id)
    assert services.sandbox.deliveries == {}


async def test_quota_preflight_counts_what_was_used_this_month(data_dir: Path) -> None:
    services = services_for(data_dir, quota=100)
    first = await launched(services, world(80))
    await services.deliver(first, actor="op")
    second = services.import_fixture(world(30))
    with pytest.raises(LaunchRefused, match="20 left this month"):
        await services.launch_async(second.id, actor="op")
    fits = services.import_fixture(world(20))
    assert (await services.launch_async(fits.id, actor="op")).state is CampaignState.ACTIVE


async def test_launch_fixes_the_aggregation_unit_and_freezes_the_content(
    data_dir: Path,
) -> None:
    services = services_for(data_dir)
    campaign_id = await launched(services, world(3))
    campaign = services.store.campaigns.get(campaign_id)
    manifest = services.manifest(campaign_id)
    assert manifest is not None
    assert campaign.aggregation_unit and campaign.aggregation_unit == manifest.aggregation_unit
    assert manifest.spec.messages == campaign.messages
    reach = services.reach(campaign_id)
    assert reach is not None and reach.unique == 3


async def test_reach_is_known_before_launch(data_dir: Path) -> None:
    services = services_for(data_dir)
    extra: list[dict[str, Any]] = [
        {"profile_id": "a", "line_user_id": None},
        {"profile_id": "b", "line_user_id": "Ubad"},
        {"profile_id": "c", "line_user_id": user(1)},
    ]
    campaign = services.import_fixture(world(4, extra=extra))
    reach = services.reach(campaign.id)
    assert reach is not None
    assert (reach.segment, reach.with_id, reach.valid, reach.unique) == (7, 6, 5, 4)
    assert [s.reason.value for s in reach.samples] == [
        "missing_recipient_id",
        "invalid_recipient_id",
        "duplicate_recipient_id",
    ]


async def test_test_send_renders_the_blank_profile_and_never_counts(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(3))
    target = user(999)
    result = await services.test_send(campaign.id, target, actor="op")
    assert result.accepted
    [delivery] = services.sandbox.deliveries[target]
    text = delivery["messages"][0]["text"]
    assert text.startswith("thereさん")
    assert "utm_source=line" in text and "utm_campaign=sale" in text
    assert delivery["unit"] is None, "a test send is not a campaign send"
    rows = list(services.store.delivery_log(campaign.id).rows())
    assert [(r["is_test"], r["status"], r["line_user_id"]) for r in rows] == [
        (True, "success", hash_user_id(target))
    ]
    counts = services.counts(campaign.id)
    assert (counts.delivered, counts.failed, counts.tests) == (0, 0, 1)
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    with pytest.raises(InputError, match="32 lowercase hex"):
        await services.test_send(campaign.id, "someone", actor="op")


async def test_test_send_rows_stay_out_of_the_campaign_figures(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(2))
    await services.test_send(campaign.id, user(50), actor="op")
    await services.launch_async(campaign.id, actor="op")
    await services.deliver(campaign.id, actor="op")
    counts = services.counts(campaign.id)
    assert (counts.delivered, counts.tests) == (2, 1)


async def test_a_second_process_cannot_deliver_a_campaign_being_delivered(
    data_dir: Path,
) -> None:
    services = services_for(data_dir)
    other = services_for(data_dir)
    campaign_id = await launched(services, world(3))
    assert services.claimed(campaign_id)
    with pytest.raises(DeliveryBusy, match="another lcc process"):
        await other.deliver(campaign_id, actor="op2")
    await services.deliver(campaign_id, actor="op")
    assert not services.claimed(campaign_id)
    assert delivered_counts(services) == {user(i): 1 for i in range(3)}


async def test_kill_switch_suspends_active_and_holds_planned_of_that_account_only(
    data_dir: Path,
) -> None:
    services = services_for(data_dir)
    active = await launched(services, world(2))
    services.release_claim(active)
    planned = services.import_fixture(world(2))
    services.update_draft(
        planned.id,
        lambda spec: spec.model_copy(
            update={"schedule": ScheduledSchedule(at=START + timedelta(days=1))}
        ),
    )
    assert (await services.launch_async(planned.id, actor="op")).state is CampaignState.PLANNED
    suspended = services.kill_switch("oa", actor="op", reason="token leaked")
    assert [c.id for c in suspended] == [active]
    assert services.store.campaigns.get(active).state is CampaignState.SUSPENDED
    assert services.store.campaigns.get(planned.id).state is CampaignState.PLANNED
    assert services.store.flags.get(planned.id, HELD) is not None
    assert services.kill_switch("other_oa", actor="op", reason="x") == []
    with pytest.raises(InputError):
        services.kill_switch("oa", actor="op", reason=" ")


async def test_a_template_that_cannot_render_refuses_the_launch(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(2, text="{{ profile.first_name | divided_by: 0 }}"))
    with pytest.raises(LaunchRefused):
        await services.launch_async(campaign.id, actor="op")
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.manifest(campaign.id) is None


def test_the_demo_can_open_on_campaigns_in_every_state(settings: Settings) -> None:
    from core.demo import seed_demo
    from core.fixture import load_fixture as load

    services = Services.open(settings)
    ids = seed_demo(services, FIXTURES, deliver=True)
    paths = sorted(FIXTURES.glob("*.json"))
    assert len(ids) == len(paths)
    seen = set()
    for path, campaign_id in zip(paths, ids, strict=True):
        state = services.store.campaigns.get(campaign_id).state
        seen.add(state)
        expect = load(path).fixture.expect
        if path.name == "scheduled_campaign.json":
            assert state in (CampaignState.PLANNED, CampaignState.DRAFT)  # the real clock
        elif expect is not None and expect.state is not None:
            assert state is expect.state, path.name
    assert {CampaignState.FINISHED, CampaignState.SUSPENDED, CampaignState.DRAFT} <= seen
    assert not services.sandbox.spec.faults, "the demo's sandbox is left without faults"


def test_the_demo_has_a_conversion_job_with_a_run(settings: Settings, tmp_path: Path) -> None:
    import csv

    from core.demo import seed_conversions
    from core.export_jobs import ExportJobs

    services = Services.open(settings.model_copy(update={"capi_base": "sandbox"}))
    name = seed_conversions(services, FIXTURES / "conversions" / "sample.csv", tmp_path / "demo")
    assert name is not None
    job = ExportJobs(services.store).get(name)
    now = services.clock.now()
    assert job.schedule and job.next_run(now) is not None
    [run] = job.runs
    assert (run.outcome, run.sent, run.skipped_invalid, run.failed) == ("ok", 4, 0, 0)
    with Path(job.file).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ages = [now.timestamp() - int(row["event_timestamp"]) for row in rows]
    assert len(rows) == 4 and all(0 < age < 7 * 86400 for age in ages)  # LINE's 7 days


async def test_reach_after_launch_is_the_frozen_audience_with_samples(data_dir: Path) -> None:
    services = services_for(data_dir)
    extra: list[dict[str, Any]] = [{"profile_id": "a", "line_user_id": None}]
    campaign_id = await launched(services, world(3, extra=extra))
    segment = services.store.directory.segment("All", "S")
    assert segment is not None and segment.profiles is not None
    segment.profiles.append(segment.profiles[0].model_copy(update={"profile_id": "late"}))
    services.store.directory.save_segment(segment)  # the segment changes after launch
    reach = services.reach(campaign_id)
    assert reach is not None and (reach.segment, reach.unique) == (4, 3)
    assert [(s.profile_id, s.reason.value) for s in reach.samples] == [
        ("a", "missing_recipient_id")
    ]


async def test_after_a_shutdown_no_delivery_starts(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign_id = await launched(services, world(5))
    services.stop_deliveries("shutting down")
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.requests == 0 and summary.pending == 5
    assert summary.stopped == "shutting down"
    assert services.store.campaigns.get(campaign_id).state is CampaignState.ACTIVE
    assert services.sandbox.deliveries == {}


async def test_launch_warns_when_the_channel_nears_lines_1000_unit_names(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(3))
    account = services.account_for(campaign)
    template = services.store.campaigns.get(campaign.id).model_dump(mode="json")
    launched_this_month = [
        {
            **template,
            "id": f"cmp-{index:012x}",
            "state": "Finished",
            "launched_at": START.isoformat(),
            "aggregation_unit": f"earlier_{index}",
        }
        for index in range(1, 951)
    ]
    services.store.table("campaigns", "campaigns").insert_multiple(launched_this_month)
    await services.launch_async(campaign.id, actor="op")
    [warning] = [n for n in services.notices if "aggregation unit names" in n]
    assert "950 of LINE's 1,000" in warning and (account.channel_id or account.id) in warning


async def test_launch_says_nothing_about_unit_names_far_from_the_cap(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign = services.import_fixture(world(3))
    await services.launch_async(campaign.id, actor="op")
    assert not [n for n in services.notices if "aggregation unit names" in n]
