"""One campaign on the seeds' five tabs (read-only until the console issue makes them forms)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from core.models import (
    Campaign,
    ImagemapMessage,
    ScheduledSchedule,
    TextV2Message,
)
from tui.widgets import SandboxBadge

if TYPE_CHECKING:
    from tui.app import ConsoleApp

TABS = (
    ("audience", "Target Audience"),
    ("content", "Campaign Content"),
    ("schedule", "Delivery Schedule"),
    ("activation", "Activation"),
    ("utm", "UTM Tracking"),
)


class CampaignScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="campaign.back"),
    ]

    def __init__(self, campaign_id: str) -> None:
        super().__init__()
        self.campaign_id = campaign_id

    @property
    def console(self) -> ConsoleApp:
        from tui.app import ConsoleApp

        assert isinstance(self.app, ConsoleApp)
        return self.app

    def compose(self) -> ComposeResult:
        campaign = self.console.services.store.campaigns.get(self.campaign_id)
        yield Header()
        if self.console.sandbox_in_use:
            yield SandboxBadge()
        yield Static(
            Text(f"{campaign.name} · {campaign.state.value} · {campaign.id}"), id="campaign-title"
        )
        with TabbedContent(id="tabs"):
            for pane_id, title in TABS:
                with TabPane(title, id=pane_id):
                    yield Static(self._summary(pane_id, campaign), classes="tab-body")
        yield Footer()

    def _summary(self, pane_id: str, campaign: Campaign) -> Text:
        lines: list[str] = []
        if pane_id == "audience":
            audience = campaign.audience
            lines.append(f"Target parent segment: {audience.parent_segment if audience else '—'}")
            lines.append(f"Target segment: {audience.segment if audience else '—'}")
        elif pane_id == "content":
            lines.append(f"LINE sender account: {campaign.sender_account or '—'}")
            for index, message in enumerate(campaign.messages):
                if isinstance(message, TextV2Message):
                    lines.append(f"{index + 1}. Text: {message.text}")
                elif isinstance(message, ImagemapMessage):
                    lines.append(f"{index + 1}. Imagemap: {message.altText} ({message.baseUrl})")
                else:
                    lines.append(f"{index + 1}. {message.type} (not supported)")
        elif pane_id == "schedule":
            schedule = campaign.schedule
            if isinstance(schedule, ScheduledSchedule):
                lines.append(f"Schedule for Later: {schedule.at.isoformat()}")
            else:
                lines.append("Send Immediately")
        elif pane_id == "activation":
            policy = campaign.activation
            lines.append(f"Attempts: {policy.max_attempts}")
            lines.append(
                f"Backoff: {policy.initial_backoff_s:g}s doubling up to {policy.max_backoff_s:g}s"
            )
        elif pane_id == "utm":
            utm = campaign.utm
            lines.append(f"utm_source={utm.utm_source}")
            lines.append(f"utm_medium={utm.utm_medium}")
            lines.append(f"utm_campaign={utm.utm_campaign or campaign.name}")
        return Text("\n".join(lines))
