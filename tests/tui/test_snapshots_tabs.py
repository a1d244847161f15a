"""SVG snapshots of the campaign screen's six tabs at 80x24 and 120x40.

The campaign is fixed (id, clock, data), so a difference is a change in what operators see:
look at `snapshot_report.html` before accepting one with `--snapshot-update`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from textual.pilot import Pilot

from core import service as service_module
from core.models import ActivationPolicy, ScheduledSchedule, UtmSettings
from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import (
    FIXED_ID,
    FROZEN,
    console,
    create,
    open_campaign,
    settle,
    spring_spec,
    world_services,
)
from tui.screens.campaign import TAB_IDS

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


async def _send(services: Services, campaign_id: str) -> None:
    await services.launch_async(campaign_id, actor="snapshot")
    await services.deliver(campaign_id, actor="snapshot")


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("tab", TAB_IDS)
def test_tab(
    snap_compare: Callable[..., bool],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tab: str,
    size: str,
) -> None:
    services = world_services(settings, monkeypatch)
    monkeypatch.setattr(service_module, "new_campaign_id", lambda: FIXED_ID)
    utm = UtmSettings(utm_content="hero", extra={"coupon": "SPRING"})
    if tab == "report":  # a report is worth seeing once something was sent
        campaign = create(services, spring_spec(utm=utm))
        asyncio.run(_send(services, campaign.id))
    else:  # a Draft planned for tomorrow, with one problem to show how issues look
        at = datetime(2026, 12, 1, 10, 0, tzinfo=FROZEN.tzinfo)
        spec = spring_spec(
            schedule=ScheduledSchedule(at=at, timezone="Asia/Tokyo"),
            utm=utm,
            activation=ActivationPolicy(max_attempts=12),
        )
        create(services, spec)
    number = str(TAB_IDS.index(tab) + 1)

    async def show_tab(pilot: Pilot[Any]) -> None:
        await open_campaign(pilot, FIXED_ID)
        await pilot.press(number)
        await settle(pilot)

    assert snap_compare(console(services), terminal_size=SIZES[size], run_before=show_tab)
