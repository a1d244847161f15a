"""The campaign screen as an operator drives it: tabs, keys, the launch flow, delivery."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Input, ProgressBar, Static, Tab, TabbedContent, Tabs, TextArea

from core import forking, states
from core.delivery import DeliveryProgress
from core.models import Campaign, CampaignSpec, CampaignState, TextV2Message
from core.service import Services
from core.settings import Settings
from core.webhook import import_file
from tests.core.test_render_ahead import render_children
from tests.tui.campaign_world import (
    ACME,
    FROZEN,
    SPRING_TEXT,
    WORKSPACE,
    confirm_by_typing,
    console,
    create,
    open_campaign,
    record_notifications,
    settle,
    spring_spec,
    tab_labels,
    text_of,
    user,
    world_services,
)
from tui.screens.campaign import CampaignScreen, DeliveryProgressed, delivery_hub
from tui.screens.confirm import ConfirmByTyping
from tui.screens.message_editor import MessageEditor


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


async def delivered(services: Services) -> Campaign:
    """A campaign of the test world, launched and delivered to the sandbox."""
    campaign = create(services)
    await services.launch_async(campaign.id, actor="test")
    await services.deliver(campaign.id, actor="test")
    return campaign


def drawn(widget: Static, separator: str = "\n") -> str:
    """The widget's text as drawn (a Rich table or wrapped lines included)."""
    return separator.join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


SEED_TABS = [
    "Target Audience",
    "Campaign Content",
    "Delivery Schedule",
    "Activation",
    "UTM Tracking",
    "Report",
]


async def test_header_and_the_seeds_tab_names(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert tab_labels(screen) == SEED_TABS
        assert "spring_sale_2026" in text_of(screen, "#campaign-name")
        meta = text_of(screen, "#campaign-meta")
        assert "Acme Official" in meta and campaign.id in meta
        assert "Draft" in text_of(screen, "#campaign-state")
        assert "Ready" in text_of(screen, "#status-line")
        assert "SANDBOX" in str(screen.query_one("#sandbox-badge", Static).render())


async def test_every_tab_stays_in_sight_on_80_columns(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(80, 24)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        short = ["Audience", "Content", "Schedule", "Activation", "UTM", "Report"]
        assert tab_labels(screen) == short
        last = screen.query_one(Tabs).query(Tab).last()
        assert last.region.right <= 80  # the Report tab is not scrolled out of sight
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert tab_labels(screen) == SEED_TABS


async def test_number_keys_and_brackets_switch_tabs(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        tabbed = screen.query_one(TabbedContent)
        for key, pane in zip(
            "123456",
            ["audience", "content", "schedule", "activation", "utm", "report"],
            strict=True,
        ):
            await pilot.press(key)
            await pilot.pause()
            assert tabbed.active == pane
        await pilot.press("right_square_bracket")
        assert tabbed.active == "audience"
        await pilot.press("left_square_bracket")
        assert tabbed.active == "report"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, CampaignScreen)


async def test_a_remapped_key_switches_tabs(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(120, 40)) as pilot:
        app.set_keymap({"campaign.tab.report": "f7"})
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("f7")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "report"


async def test_create_compose_fix_launch_finish_report(services: Services) -> None:
    """The issue's flow: a new campaign, a text added by typing, a problem seen and fixed,
    launched on the sandbox after typing the account's name, Finished, and reported."""
    campaign = create(services, spring_spec(messages=[]))
    app = console(services)
    titles = record_notifications(app)
    async with app.run_test(size=(100, 32), notifications=True) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert tab_labels(screen)[1] == "Campaign Content ●1"  # no message yet
        assert screen.check_action("launch", ()) is None  # greyed out: not valid

        await pilot.press("2", "t")
        await pilot.pause()
        assert isinstance(app.screen, MessageEditor)
        for char in "Hi {{ profile.first_name":
            await pilot.press(char)
        await settle(pilot, rounds=1)
        issues = str(app.screen.query_one("#editor-issues", Static).render())
        assert "text" in issues  # the broken template is named before saving
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        stored = services.store.campaigns.get(campaign.id)
        assert [m.text for m in stored.messages if isinstance(m, TextV2Message)] == [
            "Hi {{ profile.first_name"
        ]
        assert tab_labels(screen)[1].startswith("Campaign Content ●")
        assert "Message 1" in text_of(screen, "#content-message-issues")
        assert screen.check_action("launch", ()) is None

        await pilot.press("e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, MessageEditor)
        area = editor.query_one("#editor-text", TextArea)
        assert area.text == "Hi {{ profile.first_name"
        for char in " }}, see https://example.com/sale":
            await pilot.press(char)
        await pilot.press("f2")
        await settle(pilot)
        assert tab_labels(screen)[1] == "Campaign Content"
        assert screen.check_action("launch", ()) is True

        await pilot.press("l")
        await confirm_by_typing(pilot, ACME.name)
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        finished = services.store.campaigns.get(campaign.id)
        assert finished.state is CampaignState.FINISHED
        assert "Finished" in text_of(screen, "#campaign-state")
        await pilot.press("6")
        await settle(pilot)
        report = text_of(screen, "#report-counts")
        assert "Delivered          2" in report
        assert "Excluded           3" in report
        assert "missing_recipient_id" in text_of(screen, "#report-errors")
        assert "Delivery finished" in titles


async def test_launch_waits_for_the_exact_account_name(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        await open_campaign(pilot, campaign.id)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmByTyping)
        for char in "Acme":
            await pilot.press(char)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmByTyping)  # not yet
        await pilot.press("escape")
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT


async def test_suspend_and_resume_an_active_campaign(services: Services) -> None:
    campaign = create(services)
    await services.launch_async(campaign.id, actor="test")
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert screen.check_action("continue_delivery", ()) is True
        assert screen.check_action("resume", ()) is False
        await pilot.press("s")
        await settle(pilot)
        suspended = services.store.campaigns.get(campaign.id)
        assert suspended.state is CampaignState.SUSPENDED
        assert "Suspended" in text_of(screen, "#campaign-state")
        assert "Press r to resume" in text_of(screen, "#status-line")
        await pilot.press("r")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).state is CampaignState.FINISHED
        assert services.counts(campaign.id).delivered == 2


async def test_a_long_suspension_reason_wraps_instead_of_losing_its_end(
    services: Services,
) -> None:
    campaign = create(services)
    await services.launch_async(campaign.id, actor="test")
    reason = (
        "LINE refused: the account has reached its monthly message limit (429 'You have "
        "reached your monthly limit.'); resume once the plan allows more messages"
    )
    assert campaign.sender_account is not None
    services.kill_switch(campaign.sender_account, actor="test", reason=reason)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        line = screen.query_one("#status-line", Static)
        assert line.size.height == 3
        words = " ".join(drawn(line, "").split())
        assert words.startswith("Suspended: ") and words.endswith(f"{reason}. Press r to resume.")


async def test_progress_is_drawn_from_the_delivery_callback(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        hub = delivery_hub(app)
        run = hub.start(campaign.id)
        assert run is not None
        assert hub.start(campaign.id) is None  # one delivery per campaign
        run.listeners.add(screen)
        for sent in (10, 20, 40):  # a burst collapses to the latest figures
            hub.publish(run, DeliveryProgress(sent, 2, 58 - sent, 125.0, 3.5, total=100))
        await pilot.pause()
        status = text_of(screen, "#status-line")
        assert "sent 40" in status and "failed 2" in status and "remaining 18" in status
        assert "125/s" in status and "4s left" in status
        bar = screen.query_one("#delivery-bar", ProgressBar)
        assert bar.display and bar.total == 100 and bar.progress == 42
        assert screen.check_action("continue_delivery", ()) is False
        hub.finish(run)
        await settle(pilot)
        assert not bar.display


async def test_progress_message_coalesces(services: Services) -> None:
    first = DeliveryProgressed("cmp-1", DeliveryProgress(1, 0, 9, 1.0, None))
    later = DeliveryProgressed("cmp-1", DeliveryProgress(2, 0, 8, 1.0, None))
    other = DeliveryProgressed("cmp-2", DeliveryProgress(2, 0, 8, 1.0, None))
    assert later.can_replace(first)
    assert not other.can_replace(first)


async def test_cancel_a_draft_by_typing_its_name(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert screen.check_action("cancel_campaign", ()) is True
        assert screen.check_action("unschedule", ()) is False
        await pilot.press("x")
        await confirm_by_typing(pilot, campaign.name)
        await settle(pilot)
        cancelled = services.store.campaigns.get(campaign.id)
        assert cancelled.state is CampaignState.SUSPENDED
        assert states.allowed_actions(cancelled) == []
        assert screen.check_action("resume", ()) is False


async def test_the_report_tab_fetches_line_statistics(services: Services, tmp_path: Path) -> None:
    draft = create(services)
    campaign = await delivered(services)
    blocked = {  # a recipient blocks the account an hour after the send
        "destination": "U0123456789abcdef0123456789abcdef",
        "events": [
            {
                "type": "unfollow",
                "mode": "active",
                "timestamp": int((FROZEN + timedelta(hours=1)).timestamp() * 1000),
                "source": {"type": "user", "userId": user(1)},
                "webhookEventId": "01KB1W0000UNFOLLOW0000000A",
                "deliveryContext": {"isRedelivery": False},
            }
        ],
    }
    events = tmp_path / "events.json"
    events.write_text(json.dumps(blocked))
    import_file(services.store, events)
    app = console(services)
    async with app.run_test(size=(140, 60)) as pilot:
        screen = await open_campaign(pilot, draft.id)
        await pilot.press("6")
        await settle(pilot)
        assert screen.check_action("report", ("fetch_insights",)) is False  # never launched
        await pilot.press("escape")
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("6")
        await settle(pilot)
        assert "Not fetched yet" in text_of(screen, "#report-insights")
        assert "lcc insights fetch" not in text_of(screen, "#report-notes")
        timeline = drawn(screen.query_one("#report-timeline", Static))
        assert "11-30 09:00" in timeline and "delivered" in timeline
        webhook = drawn(screen.query_one("#report-webhook", Static))
        assert re.search(r"unfollow \(block\) +1", webhook)
        assert re.search(r"block rate +50\.0% +1 of 2", webhook)
        assert not screen.query_one("#report-reconciliation").display  # LINE's counts not in
        assert screen.check_action("report", ("fetch_insights",)) is True
        await pilot.press("f")
        await app.workers.wait_for_complete()
        await settle(pilot)
        shown = drawn(screen.query_one("#report-insights", Static))
        assert "LINE statistics for unit" in shown and "opened (users)" in shown
        unit = services.store.campaigns.get(campaign.id).aggregation_unit
        assert unit is not None and unit in shown
        assert screen.query_one("#report-reconciliation").display
        ours_and_line = drawn(screen.query_one("#report-reconciliation", Static))
        assert "2026-11-30" in ours_and_line


async def test_a_finished_campaign_is_read_only(services: Services) -> None:
    campaign = await delivered(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("2")
        await pilot.pause()
        for action in ("add_text", "edit", "delete", "move_up"):
            assert screen.check_action("content", (action,)) is None
        assert screen.check_action("launch", ()) is False
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        await pilot.press("5")
        await pilot.pause()
        assert screen.query_one("#utm-utm_source", Input).disabled
        await pilot.press("1")
        await pilot.pause()
        assert "Read-only" in text_of(screen, "#audience-readonly")


async def test_issues_appear_next_to_their_field(services: Services) -> None:
    spec = spring_spec(sender_account=None, audience=None)
    campaign = create(services, spec)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert tab_labels(screen)[:2] == ["Target Audience ●1", "Campaign Content ●1"]
        audience_issues = text_of(screen, "#audience-tab FieldIssues")
        assert "segment" in audience_issues
        await pilot.press("2")
        await pilot.pause()
        account_issues = str(screen.query("#content-tab FieldIssues").first().render())
        assert "sender account" in account_issues
        assert "2 problem(s) block launch" in text_of(screen, "#status-line")


def test_spec_helpers_are_valid_campaigns(services: Services) -> None:
    campaign = create(services)
    assert services.validate(campaign) == []
    assert campaign.workspace == WORKSPACE
    assert isinstance(spring_spec(), CampaignSpec)


async def test_a_change_made_elsewhere_shows_up(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        assert "Draft" in text_of(screen, "#campaign-state")
        await services.launch_async(campaign.id, actor="another console")
        await services.deliver(campaign.id, actor="another console")
        for _ in range(20):  # the screen looks every POLL_S seconds
            await pilot.pause(0.25)
            if "Finished" in text_of(screen, "#campaign-state"):
                break
        assert "Finished" in text_of(screen, "#campaign-state")
        assert screen.check_action("launch", ()) is False


async def test_a_launch_in_the_console_renders_pushes_in_a_forked_child(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's own event loop forks the rendering child (as for a large campaign) and the
    campaign finishes as it would rendered in process."""
    if not forking.fork_is_safe():
        pytest.skip("pushes are rendered ahead only where fork is safe (Linux)")
    started = render_children(monkeypatch)
    services.render_ahead_min_requests = 0
    campaign = create(services, spring_spec(messages=[TextV2Message(text=SPRING_TEXT)]))
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_campaign(pilot, campaign.id)
        await pilot.press("l")
        await confirm_by_typing(pilot, ACME.name)
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert services.store.campaigns.get(campaign.id).state is CampaignState.FINISHED
        assert "Finished" in text_of(screen, "#campaign-state")
    assert started
    assert services.counts(campaign.id).delivered == 2
