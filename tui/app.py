"""The Textual console: the campaign list, and each campaign on its five tabs."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from core.service import Services
from tui.screens.campaigns import CampaignListScreen


class ConsoleApp(App[None]):
    """Built only from injected services, so the CLI and the tests construct it the same way."""

    TITLE = "LINE Campaign Console"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, services: Services, *, demo: bool = False) -> None:
        super().__init__()
        self.services = services
        self.demo = demo
        self.animation_level = "none"

    @property
    def sandbox_in_use(self) -> bool:
        return self.services.settings.line_is_sandbox or self.services.settings.capi_is_sandbox

    def on_mount(self) -> None:
        if self.sandbox_in_use:
            self.sub_title = "SANDBOX: nothing reaches real LINE users"
        self.push_screen(CampaignListScreen())
