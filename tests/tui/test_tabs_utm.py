"""UTM Tracking: defaults, overrides, extra parameters, per-area attribution, and the live list
of every link before and after."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, Input, Static

from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import console, create, open_campaign, settle, world_services
from tests.tui.campaign_world import type_into as type_in
from tui.screens.campaign import CampaignScreen
from tui.tabs.utm import RemoveParameter


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


def links(screen: CampaignScreen) -> str:
    return str(screen.query_one("#utm-links", Static).render())


async def test_the_link_list_follows_the_form_as_it_is_typed(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("5")
        await pilot.pause()
        before = links(screen)
        assert "1. text link 1  https://example.com/sale" in before
        assert (
            "https://example.com/sale?utm_source=line&utm_medium=social"
            "&utm_campaign=spring_sale_2026" in before
        )
        assert "2. area 1  https://example.com/product?ref=banner" in before
        placeholder = screen.query_one("#utm-utm_campaign", Input).placeholder
        assert "the campaign name (spring_sale_2026)" in placeholder

        await type_in(pilot, screen.query_one("#utm-utm_source", Input), "newsletter")
        assert "utm_source=newsletter" in links(screen)  # live, before anything is saved
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).utm.utm_source == "newsletter"

        await type_in(pilot, screen.query_one("#utm-utm_term", Input), "boots")
        await settle(pilot)
        assert "utm_term=boots" in links(screen)
        assert services.store.campaigns.get(campaign.id).utm.utm_term == "boots"


async def test_extra_parameters_are_added_and_removed(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("5")
        await pilot.pause()
        await type_in(pilot, screen.query_one("#utm-extra-key", Input), "coupon")
        await pilot.press("enter")  # on to the value
        await type_in(pilot, screen.query_one("#utm-extra-value", Input), "SPRING")
        await pilot.press("enter")
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).utm.extra == {"coupon": "SPRING"}
        assert "coupon=SPRING" in links(screen)
        remove = screen.query_one(RemoveParameter)
        assert remove.key == "coupon"
        remove.press()
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).utm.extra == {}
        assert "coupon" not in links(screen)


async def test_a_bad_parameter_name_is_named_on_the_tab(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("5")
        await pilot.pause()
        screen.query_one("#utm-extra-key", Input).value = "bad key"
        screen.query_one("#utm-extra-value", Input).value = "x"
        screen.query_one("#utm-extra-value", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        shown = "\n".join(str(w.render()) for w in screen.query("#utm-tab FieldIssues"))
        assert "'bad key'" in shown
        assert str(screen.query_one("Tab#--content-tab-utm").render()).startswith("UTM Tracking ●")


async def test_per_area_attribution(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("5")
        await pilot.pause()
        assert "utm_content" not in links(screen)
        screen.query_one("#utm-per-area", Checkbox).value = True
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).utm.per_area_content
        text = links(screen)
        assert "utm_content=m1-l1" in text and "utm_content=m2-a1" in text


async def test_leaving_at_once_still_saves_what_was_typed(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("5")
        await pilot.pause()
        await type_in(pilot, screen.query_one("#utm-utm_medium", Input), "chat")
        await pilot.press("escape")  # before the form's debounce has run
        await pilot.pause()
        assert not isinstance(app.screen, CampaignScreen)
        assert services.store.campaigns.get(campaign.id).utm.utm_medium == "chat"
