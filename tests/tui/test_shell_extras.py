"""Console shell details: plain-text notifications, the way to the Conversions screen."""

from __future__ import annotations

from textual.widgets._toast import Toast

from core.service import Services
from core.settings import Settings
from tests.tui.test_app import console, settle


async def test_markup_in_a_notification_is_shown_as_written(settings: Settings) -> None:
    app = console(Services.open(settings))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.screen.notify("[red]spring[/red] sale launched")
        await pilot.pause()
        [notification] = list(app._notifications)
        assert notification.markup is False
        toast = app.screen.query_one(Toast)
        assert "[red]spring[/red] sale launched" in str(toast.render())


async def test_c_on_the_campaign_list_opens_the_conversions_screen(settings: Settings) -> None:
    from tui.screens.conversions import ConversionsScreen

    app = console(Services.open(settings))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ConversionsScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ConversionsScreen)
