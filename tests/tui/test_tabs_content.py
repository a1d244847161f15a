"""Campaign Content: the sender account, the message list (add, edit, delete, reorder, the cap
of five), the phone preview (blank or a chosen profile, markup shown literally), test send."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea

from core.models import MAX_MESSAGES, ImagemapMessage, TextV2Message, UriAction
from core.service import Services
from core.settings import Settings
from tests.tui.campaign_world import (
    ACME,
    NORTH,
    console,
    create,
    open_campaign,
    settle,
    spring_spec,
    user,
    world_services,
)
from tui.previews import ImagemapCard, PhonePreview
from tui.screens.campaign import CampaignScreen
from tui.screens.message_editor import AskText, AskYesNo, MessageEditor
from tui.tabs.content import MessageList


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    return world_services(settings, monkeypatch)


def texts(services: Services, campaign_id: str) -> list[str]:
    stored = services.store.campaigns.get(campaign_id)
    return [m.text if isinstance(m, TextV2Message) else m.type for m in stored.messages]


def three_texts() -> list[TextV2Message]:
    return [TextV2Message(text=word) for word in ("one", "two", "three")]


def phone_text(screen: CampaignScreen) -> str:
    phone = screen.query_one(PhonePreview)
    return "\n".join(str(widget.render()) for widget in phone.query(Static))


async def on_content(pilot: Pilot[Any], campaign_id: str) -> CampaignScreen:
    screen = await open_campaign(pilot, campaign_id)
    await pilot.press("2")
    await settle(pilot, rounds=1)
    return screen


async def test_reorder_with_keys(services: Services) -> None:
    campaign = create(services, spring_spec(messages=three_texts()))
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await on_content(pilot, campaign.id)
        listing = screen.query_one(MessageList)
        listing.focus()
        await pilot.press("J")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["two", "one", "three"]
        assert listing.cursor == 1
        await pilot.press("alt+down")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["two", "three", "one"]
        await pilot.press("K", "K")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["one", "two", "three"]
        await pilot.press("K")  # already first: nothing moves
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["one", "two", "three"]


async def test_reorder_by_dragging_a_row(services: Services) -> None:
    campaign = create(services, spring_spec(messages=three_texts()))
    async with console(services).run_test(size=(100, 32)) as pilot:
        screen = await on_content(pilot, campaign.id)
        listing = screen.query_one(MessageList)
        await pilot.mouse_down(listing, offset=(8, 0))
        await pilot.mouse_up(listing, offset=(8, 2))
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["two", "three", "one"]
        assert listing.cursor == 2


async def test_delete_asks_first(services: Services) -> None:
    campaign = create(services, spring_spec(messages=three_texts()))
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_content(pilot, campaign.id)
        screen.query_one(MessageList).focus()
        await pilot.press("down", "d")
        await pilot.pause()
        assert isinstance(app.screen, AskYesNo)
        await pilot.press("n")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["one", "two", "three"]
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["one", "three"]


async def test_five_messages_is_the_cap(services: Services) -> None:
    messages = [TextV2Message(text=f"m{n}") for n in range(MAX_MESSAGES)]
    campaign = create(services, spring_spec(messages=messages))
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_content(pilot, campaign.id)
        assert "5 of 5" in str(screen.query_one("#content-count", Static).render())
        assert screen.check_action("content", ("add_text",)) is None  # shown greyed out
        assert screen.check_action("content", ("add_imagemap",)) is None
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        screen.query_one(MessageList).focus()
        await pilot.press("d", "y")
        await settle(pilot, rounds=1)
        assert screen.check_action("content", ("add_text",)) is True


async def test_add_a_text_by_typing_with_a_live_count(services: Services) -> None:
    campaign = create(services, spring_spec(messages=[]))
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_content(pilot, campaign.id)
        await pilot.press("t")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, MessageEditor)
        for char in "Sale now":
            await pilot.press(char)
        await pilot.pause()
        count = editor.query_one("#editor-count", Static)
        assert str(count.render()).startswith("8 / 5,000")
        editor.query_one("#editor-text", TextArea).insert(" 🌸")  # as a paste arrives
        await pilot.pause()
        assert str(count.render()).startswith("11 / 5,000")  # the emoji counts two units
        await pilot.press("escape")  # changed: asks before throwing it away
        await pilot.pause()
        assert isinstance(app.screen, AskYesNo)
        await pilot.press("n")
        await pilot.press("f2")
        await settle(pilot, rounds=1)
        assert texts(services, campaign.id) == ["Sale now 🌸"]


async def test_add_an_imagemap_with_two_areas(services: Services) -> None:
    campaign = create(services, spring_spec(messages=[]))
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await on_content(pilot, campaign.id)
        await pilot.press("i")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, MessageEditor)
        base = editor.query_one("#editor-base-url", Input)
        base.value = ""
        for char in "https://example.com/img/x":
            await pilot.press(char)
        await pilot.press("tab")
        for char in "Winter":
            await pilot.press(char)
        await pilot.press("f3")
        await pilot.pause()
        targets = list(editor.query(".area-target").results(Input))
        assert len(targets) == 2
        targets[0].value = "https://example.com/a"
        widths = list(editor.query(".area-width").results(Input))
        widths[0].value = "520"
        second_x = list(editor.query(".area-x").results(Input))[1]
        second_x.value = "520"
        widths[1].value = "520"
        second_type = list(editor.query(".area-type").results(Select))[1]
        second_type.value = "message"
        targets[1].value = "Show me"
        await pilot.press("f2")
        await settle(pilot)
        stored = services.store.campaigns.get(campaign.id).messages
        assert len(stored) == 1 and isinstance(stored[0], ImagemapMessage)
        imagemap = stored[0]
        assert imagemap.baseUrl == "https://example.com/img/x" and imagemap.altText == "Winter"
        assert [a.type for a in imagemap.actions] == ["uri", "message"]
        second = imagemap.actions[1]
        assert second.area is not None and second.area.x == 520
        card = screen.query_one(ImagemapCard)
        grid = str(card.query_one(".imagemap-grid").render())
        assert "1" in grid and "2" in grid
        targets_text = str(card.query_one(".area-targets", Static).render())
        assert "utm_source=line" in targets_text and "Show me" in targets_text


async def test_edit_keeps_what_the_editor_does_not_show(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await on_content(pilot, campaign.id)
        screen.query_one(MessageList).focus()
        await pilot.press("down", "e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, MessageEditor) and editor.kind == "imagemap"
        alt = editor.query_one("#editor-alt-text", Input)
        alt.value = "Spring sale!"
        await pilot.press("f2")
        await settle(pilot, rounds=1)
        stored = services.store.campaigns.get(campaign.id).messages[1]
        assert isinstance(stored, ImagemapMessage)
        assert stored.altText == "Spring sale!"
        action = stored.actions[0]
        assert isinstance(action, UriAction)
        assert action.linkUri == "https://example.com/product?ref=banner"


async def test_markup_and_escape_sequences_are_shown_literally(services: Services) -> None:
    hostile = "[bold red]boom[/] \x1b[31mred\x1b[0m [link=mailto:x]x[/link] [@click=app.quit]q[/]"
    campaign = create(
        services,
        spring_spec(name="[blink]sale[/blink]", messages=[TextV2Message(text=hostile)]),
    )
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await on_content(pilot, campaign.id)
        bubble = phone_text(screen)
        assert "[bold red]boom[/]" in bubble
        assert "\u241b[31mred\u241b[0m" in bubble and "\x1b" not in bubble
        assert "[link=mailto:x]x[/link] [@click=app.quit]q[/]" in bubble
        row = str(screen.query_one(MessageList).render())
        assert "[bold red]boom[/]" in row and "\x1b" not in row
        assert "[blink]sale[/blink]" in str(screen.query_one("#campaign-name", Static).render())


async def test_links_in_their_final_form_and_preview_as_a_profile(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await on_content(pilot, campaign.id)
        text = phone_text(screen)
        assert "Hi there!" in text
        assert "https://example.com/sale?utm_source=line&utm_medium=social" in text
        assert "as the blank profile" in str(screen.query_one(PhonePreview).border_subtitle)
        picker = screen.query_one("#content-profile", Select)
        labels = {value: str(label) for label, value in picker._options}
        assert labels["c-001"] == "c-001 · Aiko"
        assert labels["c-003"] == "c-003 · Yui · no LINE user id"
        assert labels["c-004"] == "c-004 · Ren · invalid LINE user id"
        assert labels["c-005"] == "c-005 · Aiko · duplicate LINE user id"
        picker.value = "c-001"
        await settle(pilot, rounds=1)
        assert "Hi Aiko!" in phone_text(screen)
        assert "c-001" in str(screen.query_one(PhonePreview).border_subtitle)


async def test_only_the_workspaces_accounts_are_offered(services: Services) -> None:
    campaign = create(services)
    async with console(services).run_test(size=(120, 40)) as pilot:
        screen = await on_content(pilot, campaign.id)
        select = screen.query_one("#content-account", Select)
        offered = [value for _label, value in select._options if isinstance(value, str)]
        assert offered == [ACME.id, NORTH.id]  # not Acme US of another workspace
        select.value = NORTH.id
        await settle(pilot, rounds=1)
        assert services.store.campaigns.get(campaign.id).sender_account == NORTH.id
        assert "Acme North" in str(screen.query_one("#campaign-meta", Static).render())


async def test_test_send_to_one_line_user(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    titles: list[str] = []
    notify = app.notify

    def keep(message: str, *, title: str = "", **options: Any) -> None:
        titles.append(f"{title}: {message}")
        notify(message, title=title, **options)

    app.notify = keep  # type: ignore[method-assign]
    async with app.run_test(size=(100, 32)) as pilot:
        await on_content(pilot, campaign.id)
        await pilot.press("T")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, AskText)
        for char in "U123":
            await pilot.press(char)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AskText)  # refused: not a LINE user id
        dialog.query_one(Input).value = user(7)
        await pilot.press("enter")
        await settle(pilot)
        assert any("accepted" in t for t in titles), titles
        rows = list(services.store.delivery_log(campaign.id).rows())
        assert rows and all(row["is_test"] for row in rows)
        assert services.counts(campaign.id).delivered == 0

        # the next test send offers the same recipient (this session only): Enter sends again
        await pilot.press("T")
        await pilot.pause()
        again = app.screen
        assert isinstance(again, AskText)
        assert again.query_one(Input).value == user(7)
        await pilot.press("enter")
        await settle(pilot)
        assert len(list(services.store.delivery_log(campaign.id).rows())) == 2 * len(rows)
    assert not any(
        user(7) in str(path.read_bytes())
        for path in services.store.data_dir.rglob("*")
        if path.is_file()
    )


async def test_editor_fits_80x24(services: Services) -> None:
    campaign = create(services)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await on_content(pilot, campaign.id)
        screen.query_one(MessageList).focus()
        await pilot.press("down", "e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, MessageEditor)
        save = editor.query_one("#editor-save")
        assert save.region.bottom <= 24 and save.region.height >= 1
        rows = list(editor.query(".area-target").results(Input))
        assert all(row.region.width >= 20 for row in rows)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
