"""The kill switch from the campaign list: one account's Active campaigns suspended, its Planned
ones held, nothing of other accounts touched, and nothing at all without a reason and the name."""

from __future__ import annotations

from datetime import datetime

import pytest
from textual.widgets import Button, Input, Select, Static

from core.models import CampaignState, ScheduledSchedule
from core.service import HELD, Services
from core.settings import Settings
from tests.tui.campaign_world import (
    ACME,
    FROZEN,
    NORTH,
    console,
    create,
    record_notifications,
    settle,
    spring_spec,
    world_services,
)
from tui.screens.campaigns import CampaignListScreen
from tui.screens.kill_switch import KillSwitchDialog


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


async def launched(services: Services, **changes: object) -> str:
    campaign = create(services, spring_spec(**changes))
    await services.launch_async(campaign.id, actor="test")  # Active (or Planned), not sent yet
    return campaign.id


async def test_the_kill_switch_stops_one_account(services: Services) -> None:
    later = ScheduledSchedule(at=datetime(2026, 12, 24, 20, 0, tzinfo=FROZEN.tzinfo))
    active = await launched(services, name="acme_now")
    planned = await launched(services, name="acme_later", schedule=later)
    other = await launched(services, name="north_now", sender_account=NORTH.id)
    app = console(services)
    titles = record_notifications(app)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen)
        await pilot.press("K")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, KillSwitchDialog)
        picker = dialog.query_one("#kill-account", Select)
        offered = {value: str(label) for label, value in picker._options if value in dialog.reach}
        assert offered == {
            ACME.id: "Acme Official (acme_oa) · 1 Active, 1 Planned",
            NORTH.id: "Acme North (north_oa) · 1 Active, 0 Planned",  # not another workspace's
        }
        picker.value = ACME.id
        await settle(pilot, rounds=1)
        assert dialog.query_one("#kill", Button).disabled  # no reason yet

        dialog.query_one("#kill-reason", Input).value = "wrong price in the copy"
        dialog.query_one("#kill-confirm", Input).value = "Acme"
        await dialog.query_one("#kill-confirm", Input).action_submit()
        await settle(pilot, rounds=1)
        assert dialog.is_active  # the name is not typed in full: nothing happens
        assert "type the account's name" in str(dialog.query_one("#kill-error", Static).render())
        assert services.store.campaigns.get(active).state is CampaignState.ACTIVE

        dialog.query_one("#kill-confirm", Input).value = ACME.name
        await settle(pilot, rounds=1)
        assert not dialog.query_one("#kill", Button).disabled
        await pilot.click("#kill")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)

    stopped = services.store.campaigns.get(active)
    assert stopped.state is CampaignState.SUSPENDED
    reason = stopped.suspend_reason or ""
    assert reason.startswith("kill switch by console") and reason.endswith(
        ": wrong price in the copy"
    )
    assert services.store.campaigns.get(planned).state is CampaignState.PLANNED
    assert [flag.kind for flag in services.store.flags.for_campaign(planned)] == [HELD]
    assert services.store.campaigns.get(other).state is CampaignState.ACTIVE
    assert "Kill switch pulled" in titles


async def test_escape_pulls_nothing(services: Services) -> None:
    active = await launched(services, name="acme_now")
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("K")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, KillSwitchDialog)
        # the current row's account is chosen already; everything fits on 80x24
        assert dialog.query_one("#kill-account", Select).value == ACME.id
        assert dialog.query_one("#kill", Button).region.bottom <= 24
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen)
    assert services.store.campaigns.get(active).state is CampaignState.ACTIVE
