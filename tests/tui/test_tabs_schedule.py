"""Delivery Schedule: Send Immediately, Schedule for Later in an IANA zone, Recurring disabled."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Static, TabbedContent

from core.models import Campaign, CampaignState, ImmediateSchedule, ScheduledSchedule
from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import (
    ACME,
    confirm_by_typing,
    console,
    create,
    open_campaign,
    record_notifications,
    settle,
    spring_spec,
    tab_labels,
    world_services,
)
from tui.screens.campaign import CampaignScreen
from tui.screens.confirm import ConfirmByTyping
from tui.tabs.schedule import describe_gap, parse_moment

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


def launch_description(screen: CampaignScreen) -> str:
    for active in screen.active_bindings.values():
        if active.binding.id == "campaign.launch":
            return active.binding.description
    return ""


def stored_schedule(services: Services, campaign_id: str) -> object:
    return services.store.campaigns.get(campaign_id).schedule


def scheduled(services: Services, at: datetime) -> Campaign:
    """A Draft of the test world scheduled for `at` in Asia/Tokyo."""
    return create(services, spring_spec(schedule=ScheduledSchedule(at=at, timezone="Asia/Tokyo")))


async def on_schedule(pilot: Pilot[Any], campaign_id: str) -> CampaignScreen:
    screen = await open_campaign(pilot, campaign_id)
    await pilot.press("3")
    await pilot.pause()
    return screen


def summary_of(screen: CampaignScreen) -> str:
    return str(screen.query_one("#schedule-summary", Static).render())


async def test_schedule_for_later_then_plan_and_unschedule(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        assert screen.query_one("#schedule-recurring", RadioButton).disabled
        assert screen.query_one("#schedule-date", Input).disabled  # immediate: no date
        assert launch_description(screen) == "Launch"
        await pilot.click("#schedule-later")
        await settle(pilot)
        schedule = stored_schedule(services, campaign.id)
        assert isinstance(schedule, ScheduledSchedule)
        assert schedule.timezone == "Asia/Tokyo"
        assert schedule.at == datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # tomorrow, 10:00
        assert launch_description(screen) == "Schedule"
        summary = str(screen.query_one("#schedule-summary", Static).render())
        assert "2026-12-01 10:00 JST" in summary and "in 1d 1h" in summary

        time_input = screen.query_one("#schedule-time", Input)
        time_input.value = "18:30"
        zone = screen.query_one("#schedule-zone", Input)
        zone.value = "Europe/London"
        await settle(pilot)
        schedule = stored_schedule(services, campaign.id)
        assert isinstance(schedule, ScheduledSchedule)
        assert schedule.timezone == "Europe/London"
        assert schedule.at == datetime(2026, 12, 1, 18, 30, tzinfo=ZoneInfo("Europe/London"))

        await pilot.press("l")
        await confirm_by_typing(pilot, ACME.name)
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).state is CampaignState.PLANNED
        status = str(screen.query_one("#status-line", Static).render())
        assert "Planned for 2026-12-01 18:30 GMT. The scheduler" in status
        summary = str(screen.query_one("#schedule-summary", Static).render())
        assert summary.startswith("Planned: starts 2026-12-01 18:30 GMT")
        assert "Press l" not in summary
        assert screen.check_action("unschedule", ()) is True
        await pilot.press("u")
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT


async def test_bad_zone_is_refused_before_saving(services: Services) -> None:
    when = datetime(2026, 12, 24, 20, 0, tzinfo=TOKYO)
    campaign = scheduled(services, when)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        assert screen.query_one("#schedule-date", Input).value == "2026-12-24"
        assert screen.query_one("#schedule-time", Input).value == "20:00"
        screen.query_one("#schedule-zone", Input).value = "Mars/Olympus"
        await settle(pilot)
        problem = str(screen.query_one("#schedule-form-error", Static).render())
        assert "not an IANA zone" in problem
        schedule = stored_schedule(services, campaign.id)
        assert isinstance(schedule, ScheduledSchedule) and schedule.timezone == "Asia/Tokyo"


async def test_a_time_in_the_past_is_an_issue_on_the_tab(services: Services) -> None:
    past = datetime(2026, 11, 29, 9, 0, tzinfo=TOKYO)
    campaign = scheduled(services, past)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert tab_labels(screen)[2].startswith("Delivery Schedule ●")
        assert screen.check_action("launch", ()) is None
        await pilot.press("3")
        await pilot.pause()
        assert "schedule.at" in str(screen.query_one("#schedule-tab FieldIssues").render())
        await pilot.click("#schedule-immediate")
        await settle(pilot)
        assert isinstance(stored_schedule(services, campaign.id), ImmediateSchedule)
        assert tab_labels(screen)[2] == "Delivery Schedule"
        assert screen.check_action("launch", ()) is True


def test_parse_moment_names_each_problem() -> None:
    moment, problem = parse_moment("2026-12-01", "09:15", "Asia/Tokyo")
    assert problem is None and moment == datetime(2026, 12, 1, 9, 15, tzinfo=TOKYO)
    assert "YYYY-MM-DD" in str(parse_moment("1/12/2026", "09:15", "Asia/Tokyo")[1])
    assert "HH:MM" in str(parse_moment("2026-12-01", "9.15pm", "Asia/Tokyo")[1])
    # 01:30 on the morning the UK clocks go forward does not exist
    assert "does not exist" in str(parse_moment("2027-03-28", "01:30", "Europe/London")[1])


def test_describe_gap() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=TOKYO)
    assert describe_gap(datetime(2026, 11, 30, 9, 45, tzinfo=TOKYO), now) == "in 45m"
    assert describe_gap(datetime(2026, 12, 2, 12, 0, tzinfo=TOKYO), now) == "in 2d 3h"
    assert describe_gap(datetime(2026, 11, 29, 9, 0, tzinfo=TOKYO), now) == "in the past"


async def test_a_past_time_is_not_offered_for_launch(services: Services) -> None:
    past = datetime(2026, 11, 29, 9, 0, tzinfo=TOKYO)
    campaign = scheduled(services, past)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        summary = summary_of(screen)
        assert "in the past: choose a later time, or Send Immediately" in summary
        assert "Press l" not in summary


async def test_a_sent_campaign_says_when_it_was_launched(services: Services) -> None:
    campaign = create(services)
    await services.launch_async(campaign.id, actor="test")
    await services.deliver(campaign.id, actor="test")
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        # the test world's clock: 2026-11-30 09:00 JST
        assert summary_of(screen) == "Sent immediately: launched 2026-11-30 09:00 UTC+9."


async def test_launch_saves_the_form_first(services: Services) -> None:
    when = datetime(2026, 12, 24, 20, 0, tzinfo=TOKYO)
    campaign = scheduled(services, when)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        screen.query_one("#schedule-time", Input).value = "21:15"  # the save is still pending
        await pilot.press("l")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmByTyping)
        assert "at 2026-12-24 21:15 JST" in str(dialog.prompt_text)  # what will be scheduled
        await confirm_by_typing(pilot, ACME.name)
        await settle(pilot)
        stored = services.store.campaigns.get(campaign.id)
        assert stored.state is CampaignState.PLANNED
        assert isinstance(stored.schedule, ScheduledSchedule)
        assert stored.schedule.at == datetime(2026, 12, 24, 21, 15, tzinfo=TOKYO)


async def test_launch_is_refused_while_a_form_holds_what_cannot_be_saved(
    services: Services,
) -> None:
    when = datetime(2026, 12, 24, 20, 0, tzinfo=TOKYO)
    campaign = scheduled(services, when)
    app = console(services)
    titles = record_notifications(app)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_schedule(pilot, campaign.id)
        screen.query_one("#schedule-date", Input).value = "2026-12-2"  # half typed
        await settle(pilot)
        assert screen.check_action("launch", ()) is True  # the stored schedule is valid
        await pilot.press("1")  # from another tab too
        await pilot.press("l")
        await settle(pilot)
        assert titles[-1] == "Not launched"
        assert screen.query_one(TabbedContent).active == "schedule"  # shown where it is
        assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
