"""Pilot tests of the console skeleton: the list and a campaign's five tabs."""

from __future__ import annotations

from textual.widgets import DataTable, TabbedContent, Tabs

from core.demo import seed_demo
from core.service import Services
from core.settings import Settings
from tests.conftest import FIXTURES
from tui.app import ConsoleApp
from tui.screens.campaign import CampaignScreen


async def test_opens_a_campaign_on_its_five_tabs(settings: Settings) -> None:
    services = Services.open(settings)
    [campaign_id, *_] = seed_demo(services, FIXTURES)
    app = ConsoleApp(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count >= 1
        assert "SANDBOX" in str(app.screen.query_one("#sandbox-badge").render())
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.campaign_id == campaign_id
        tabs = app.screen.query_one(Tabs)
        labels = [str(tab.label) for tab in tabs.query("Tab")]
        assert labels == [
            "Target Audience",
            "Campaign Content",
            "Delivery Schedule",
            "Activation",
            "UTM Tracking",
        ]
        await pilot.click("Tab#--content-tab-utm")
        await pilot.pause()
        assert app.screen.query_one(TabbedContent).active == "utm"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CampaignScreen)
