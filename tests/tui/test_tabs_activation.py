"""Activation: the retry policy in Draft, its issues on their fields, and the words about errors."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from core.models import ActivationPolicy
from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import (
    console,
    create,
    open_campaign,
    settle,
    tab_labels,
    text_of,
    type_into,
    world_services,
)
from tui.tabs.activation import wait_schedule


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


async def test_edit_the_retry_policy(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("4")
        await pilot.pause()
        text = "\n".join(str(w.render()) for w in screen.query("#activation-tab .explanation"))
        for words in ("Transient errors", "Permanent errors", "Fatal errors", "24 hours"):
            assert words in text
        attempts = screen.query_one("#activation-max_attempts", Input)
        assert attempts.value == "5"
        await type_into(pilot, attempts, "3")
        assert "1s · 2s" in text_of(screen, "#activation-waits")  # live, before saving
        await settle(pilot)
        stored = services.store.campaigns.get(campaign.id).activation
        assert stored == ActivationPolicy(max_attempts=3, initial_backoff_s=1.0, max_backoff_s=60.0)

        attempts.value = ""
        await settle(pilot)
        assert "whole number" in text_of(screen, "#activation-form-error")
        assert services.store.campaigns.get(campaign.id).activation.max_attempts == 3


async def test_an_out_of_range_policy_is_an_issue_on_its_field(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("4")
        await pilot.pause()
        await type_into(pilot, screen.query_one("#activation-max_attempts", Input), "50")
        await settle(pilot)
        assert tab_labels(screen)[3] == "Activation ●1"
        issues = [str(w.render()) for w in screen.query("#activation-tab FieldIssues")]
        assert "max_attempts" in issues[0]
        assert screen.check_action("launch", ()) is None


def test_wait_schedule_uses_the_retry_rule() -> None:
    policy = ActivationPolicy(max_attempts=4, initial_backoff_s=1.0, max_backoff_s=3.0)
    assert wait_schedule(policy) == (
        "Longest waits between attempts: 1s · 2s · 3s (at most 6s in all per request)."
    )
    single = ActivationPolicy(max_attempts=1)
    assert "One attempt" in wait_schedule(single)
