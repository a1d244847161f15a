"""Pilot tests of the campaign list and the new-campaign dialog."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Input

from core.errors import InputError
from core.models import CampaignSpec, CampaignState, TextV2Message, Workspace
from core.service import Services
from tests.tui.test_app import (
    NOW,
    WORKSPACE,
    FrozenClock,
    console,
    fixed_campaign,
    notifications,
    settle,
    table_of,
    wait_until,
    world_services,
)
from tui.app import ConsoleApp
from tui.screens.campaign import CampaignScreen
from tui.screens.campaigns import (
    CampaignListScreen,
    CampaignTable,
    changed_text,
    column_widths,
    schedule_texts,
)
from tui.screens.new_campaign import NewCampaignDialog


def names(app: ConsoleApp) -> list[str]:
    return [row.name for row in table_of(app).rows]


def showing(app: ConsoleApp, screen_type: type[object]) -> bool:
    """Whether that screen is in front (a function, so type checkers do not narrow app.screen)."""
    return isinstance(app.screen, screen_type)


def line_text(table: CampaignTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_list_shows_state_sender_schedule_progress_and_last_change(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = table_of(app)
        # newest change first
        assert names(app) == [
            "welcome_friends",
            "spring_sale_2026",
            "[red]black friday[/red]",
            "autumn_newsletter",
            "winter_preview",
        ]
        header = line_text(table, 0)
        for label in ("Campaign", "State", "Sender account", "Schedule", "Progress"):
            assert label in header
        assert "Last change ↓" in header
        planned = line_text(table, 2)
        # Tokyo time, in the campaign's zone: 2026-12-01 00:00 UTC is 09:00 JST
        assert "◷ Planned" in planned and "2026-12-01 09:00 JST" in planned
        assert "Acme Official" in planned and "3h ago" in planned
        finished = line_text(table, 4)
        assert "✓ Finished" in finished and "2/3" in finished and "3d ago" in finished
        assert "—" in line_text(table, 1)  # a Draft has no progress yet
        assert "2026-11-10" in line_text(table, 5)  # older than a week: the date


async def test_markup_and_escape_sequences_in_names_are_drawn_literally(data_dir: Path) -> None:
    services = world_services(data_dir)
    services.store.campaigns.save(
        fixed_campaign(9, "evil \x1b[31mred\x07 [b]bold[/b]", age=timedelta(seconds=1))
    )
    app = console(services)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = line_text(table_of(app), 1)
        assert "evil ␛[31mred␇ [b]bold[/b]" in text
        assert "\x1b" not in text
        assert "[red]black friday[/red]" in line_text(table_of(app), 4)


async def test_filter_by_state_with_number_keys(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        assert names(app) == ["winter_preview"]
        await pilot.press("1")
        assert names(app) == ["welcome_friends"]
        await pilot.press("1")  # the same key again shows every state
        assert len(names(app)) == 5
        await pilot.press("4", "0")
        assert len(names(app)) == 5
        await pilot.press("3")
        assert "Active" in str(app.screen.query_one("#list-status").render())


async def test_sort_cycles_reverses_and_follows_header_clicks(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")  # last change -> name
        assert names(app) == sorted(names(app), key=str.casefold)
        await pilot.press("S")
        assert names(app) == sorted(names(app), key=str.casefold, reverse=True)
        await pilot.press("s")  # -> state, in lifecycle order
        assert [row.state for row in table_of(app).rows] == list(CampaignState)
        table = table_of(app)
        widths = column_widths(table.size.width)
        progress_x = sum(widths[:4]) + 4 + 1
        await pilot.click(CampaignTable, offset=(progress_x, 0))
        await pilot.pause()
        assert table.sort == "progress" and table.descending
        assert names(app)[0] == "autumn_newsletter"
        await pilot.click(CampaignTable, offset=(progress_x, 0))
        await pilot.pause()
        assert not table.descending


async def test_search_filters_as_you_type_and_escape_clears(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"SPRING")
        assert names(app) == ["spring_sale_2026"]
        await pilot.press("enter")
        assert isinstance(app.focused, CampaignTable)
        assert names(app) == ["spring_sale_2026"]
        await pilot.press("slash", "escape")
        assert len(names(app)) == 5
        assert isinstance(app.focused, CampaignTable)
        await pilot.press("slash", *"000000000005")  # by id
        assert names(app) == ["winter_preview"]
        await pilot.press("backspace", *"9")
        await pilot.pause()
        assert names(app) == []
        assert "No campaign matches" in line_text(table_of(app), 2)


async def test_enter_and_clicks_open_the_campaign(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.campaign_id == "cmp-000000000002"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen)
        assert table_of(app).current_id == "cmp-000000000002"  # the cursor stayed
        await pilot.click(CampaignTable, offset=(2, 3))  # third row: highlight
        await pilot.pause()
        assert not showing(app, CampaignScreen)
        await pilot.click(CampaignTable, offset=(2, 3))  # again: open
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.campaign_id == "cmp-000000000003"


async def test_new_campaign_flow_lands_on_the_campaign_as_a_draft(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NewCampaignDialog)
        assert "LINE Official Account" in str(app.screen.query_one("#campaign-type").render())
        await pilot.press(*"new_year_2027", "enter")
        await wait_until(pilot, lambda: showing(app, CampaignScreen), "the new campaign")
        assert isinstance(app.screen, CampaignScreen)
        created = services.store.campaigns.get(app.screen.campaign_id)
        assert created.name == "new_year_2027"
        assert created.state is CampaignState.DRAFT
        assert created.workspace == WORKSPACE
        assert app.screen.query_one("TabbedContent").active == "audience"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(
            pilot,
            lambda: showing(app, CampaignListScreen) and "new_year_2027" in names(app),
            "the list with it",
        )
        assert isinstance(app.screen, CampaignListScreen)
        assert table_of(app).current_id == created.id


async def test_new_campaign_refuses_empty_and_taken_names(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, NewCampaignDialog)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog
        assert "needs a name" in str(dialog.query_one("#name-error").render())
        await pilot.press(*"Welcome_Friends")  # taken, whatever the case
        await pilot.pause()
        assert "already exists" in str(dialog.query_one("#name-error").render())
        await pilot.click("#create")
        await settle(pilot)
        assert app.screen is dialog
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen)
        assert len(services.store.campaigns.all()) == 5


async def test_a_name_taken_meanwhile_is_refused_by_the_store_check(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        # another console creates the same name after this dialog opened
        other = Services.open(services.settings, clock=FrozenClock())
        other.create_draft("race", workspace=WORKSPACE)
        await pilot.press(*"race", "enter")
        await settle(pilot)
        assert isinstance(app.screen, NewCampaignDialog)
        assert "already exists" in str(app.screen.query_one("#name-error").render())


def test_name_rules(data_dir: Path) -> None:
    services = world_services(data_dir)
    assert Services.name_problem("x" * 100) is None
    assert "at most 100" in (Services.name_problem("x" * 101) or "")
    assert "control characters" in (Services.name_problem("a\x1b[2Jb") or "")
    with pytest.raises(InputError) as refused:
        services.create_draft("  ", workspace=WORKSPACE)
    assert refused.value.location == "name"
    assert services.create_draft(" trimmed ", workspace="elsewhere").name == "trimmed"
    # unique per workspace only
    assert services.create_draft("welcome_friends", workspace="elsewhere").workspace == "elsewhere"


async def test_duplicate_makes_a_draft_copy_and_selects_it(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        await settle(pilot)
        copy_id = table_of(app).current_id
        assert copy_id is not None
        copy = services.store.campaigns.get(copy_id)
        original = services.store.campaigns.get("cmp-000000000001")
        assert copy.name == "welcome_friends (copy)"
        assert copy.state is CampaignState.DRAFT
        assert copy.messages == original.messages and copy.audience == original.audience
        assert "Copied as 'welcome_friends (copy)', a new Draft." in notifications(app)
        await pilot.press("d")
        await settle(pilot)
        await settle(pilot)
        assert "welcome_friends (copy) (copy)" in names(app)


async def test_the_list_follows_changes_made_elsewhere(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        other = Services.open(services.settings, clock=FrozenClock(NOW + timedelta(seconds=1)))
        other.create_campaign(
            CampaignSpec(name="from_another_console", messages=[TextV2Message(text="hi")]),
            workspace=WORKSPACE,
        )
        screen = app.screen
        assert isinstance(screen, CampaignListScreen)
        screen._poll()  # what the interval does every few seconds
        await settle(pilot)
        assert names(app)[0] == "from_another_console"
        # nothing changed: the poll reads nothing and keeps the rows as they are
        rows = table_of(app).rows
        screen._poll()
        await settle(pilot)
        assert table_of(app).rows is rows


async def test_ten_thousand_campaigns(data_dir: Path) -> None:
    """Opening, filtering, sorting and searching 10,000 campaigns (timings: bench/)."""
    services = world_services(data_dir)
    docs = [
        fixed_campaign(
            100 + n,
            f"bulk campaign {n:05d}",
            list(CampaignState)[n % 5],
            age=timedelta(minutes=n),
        ).model_dump(mode="json")
        for n in range(10_000)
    ]
    services.store.table("campaigns", "campaigns").insert_multiple(docs)
    app = console(services)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = table_of(app)
        assert len(table.rows) == 10_005
        await pilot.press("2")
        assert len(table.rows) == 2_001
        await pilot.press("0", "slash", *"09999", "enter")
        # the name, and the one whose id is cmp-000000009999
        assert sorted(row.name for row in table.rows) == [
            "bulk campaign 09899",
            "bulk campaign 09999",
        ]
        await pilot.press("slash", "escape", "s", "end")
        assert table.current is not None and table.current.name == "winter_preview"
        assert "winter_preview" in "".join(line_text(table, y) for y in range(1, table.size.height))


def test_schedule_and_change_texts() -> None:
    assert schedule_texts("scheduled", NOW, "America/Sao_Paulo")[0] == "2026-11-30 06:00 UTC-3"
    assert schedule_texts("scheduled", NOW, "Asia/Kolkata")[0] == "2026-11-30 14:30 IST"
    assert schedule_texts("scheduled", NOW, None)[1] == "11-30 09:00 UTC"
    assert schedule_texts("scheduled", NOW, "Not/AZone")[1] == "11-30 09:00 UTC"
    assert schedule_texts("immediate", None, None) == ("Immediately", "Immediately", None)
    assert changed_text(NOW - timedelta(seconds=20), NOW) == "just now"
    assert changed_text(NOW - timedelta(minutes=59), NOW) == "59m ago"
    assert changed_text(NOW - timedelta(hours=23), NOW) == "23h ago"
    assert changed_text(NOW - timedelta(days=6), NOW) == "6d ago"


async def test_an_unreadable_stored_campaign_is_reported_and_the_rest_listed(
    data_dir: Path,
) -> None:
    services = world_services(data_dir)
    services.store.table("campaigns", "campaigns").insert_multiple(
        [{"id": "cmp-broken", "workspace": WORKSPACE, "name": "half", "updated_at": "yesterday"}]
    )
    app = console(services)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert len(names(app)) == 5
        [warning] = [m for m in notifications(app) if "could not be read" in m]
        assert "cmp-broken" in warning and "campaigns.json" in warning


async def test_w_switches_to_another_workspace(data_dir: Path) -> None:
    services = world_services(data_dir)
    services.store.directory.save_workspace(Workspace(name="brand-b"))
    services.create_draft("only_in_b", workspace="brand-b")
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "only_in_b" not in names(app)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press(*"brand-b")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: showing(app, CampaignListScreen) and names(app) == ["only_in_b"],
            "the other workspace's campaigns",
        )
        assert "brand-b" in str(app.screen.query_one("#list-status").render())
