"""Target Audience: the pickers, the reach funnel and the excluded profiles with why."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from core.models import AudienceRef
from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import (
    GOLD,
    LAPSED,
    SPRING,
    console,
    create,
    open_campaign,
    settle,
    spring_spec,
    tab_labels,
    text_of,
    world_services,
)


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


def audience_of(services: Services, campaign_id: str) -> AudienceRef | None:
    return services.store.campaigns.get(campaign_id).audience


async def test_the_funnel_and_who_is_left_out(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        funnel = text_of(screen, "#audience-funnel")
        lines = funnel.splitlines()
        assert lines[0].split()[:2] == ["Segment", "5"] and "100.0%" in lines[0]
        assert "4  80.0%" in lines[1]  # with a LINE user id
        assert "3  60.0%" in lines[2]  # valid
        assert "2  40.0%" in lines[3]  # unique: will receive
        assert "missing 1 · invalid 1 · duplicate 1" in lines[4]
        samples = text_of(screen, "#audience-samples")
        assert "c-003" in samples and "missing_recipient_id" in samples
        assert "c-004" in samples and "invalid_recipient_id" in samples
        assert "c-005" in samples and "duplicate_recipient_id" in samples


async def test_choosing_a_segment_and_a_parent(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        parent = screen.query_one("#audience-parent", Select)
        segment = screen.query_one("#audience-segment", Select)
        assert parent.value == SPRING.parent_segment and segment.value == SPRING.segment
        segment.value = LAPSED.segment
        await settle(pilot)
        assert audience_of(services, campaign.id) == AudienceRef(
            parent_segment=LAPSED.parent_segment, segment=LAPSED.segment
        )
        assert text_of(screen, "#audience-funnel").splitlines()[0].split()[:2] == ["Segment", "1"]

        parent.value = GOLD.parent_segment
        await settle(pilot)
        assert audience_of(services, campaign.id) is None  # the old segment no longer applies
        assert parent.value == GOLD.parent_segment  # the choice stays on screen
        assert tab_labels(screen)[0] == "Target Audience ●1"
        options = [value for _label, value in segment._options if isinstance(value, str)]
        assert options == [GOLD.segment]
        segment.value = GOLD.segment
        await settle(pilot)
        assert audience_of(services, campaign.id) == AudienceRef(
            parent_segment=GOLD.parent_segment, segment=GOLD.segment
        )
        assert tab_labels(screen)[0] == "Target Audience"


async def test_pick_a_segment_with_the_keyboard(services: Services) -> None:
    campaign = create(services, spring_spec(audience=None))
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert "Choose a segment" in text_of(screen, "#audience-funnel")
        screen.query_one("#audience-parent", Select).focus()
        await pilot.press("enter", "down", "enter")  # the first parent: All Customers
        await pilot.pause()
        await pilot.press("tab", "enter", "down", "enter")  # its first segment
        await settle(pilot)
        assert audience_of(services, campaign.id) == AudienceRef(
            parent_segment="All Customers", segment="Lapsed Buyers"
        )
