"""The campaign list: the console's home screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core.models import Campaign, ScheduledSchedule
from tui.widgets import SandboxBadge

if TYPE_CHECKING:
    from tui.app import ConsoleApp


def schedule_text(campaign: Campaign) -> str:
    if isinstance(campaign.schedule, ScheduledSchedule):
        return campaign.schedule.at.isoformat(timespec="minutes")
    return campaign.schedule.type


class CampaignListScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open", id="campaigns.open"),
        Binding("r", "refresh", "Refresh", id="campaigns.refresh"),
    ]

    @property
    def console(self) -> ConsoleApp:
        from tui.app import ConsoleApp

        assert isinstance(self.app, ConsoleApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        if self.console.sandbox_in_use:
            yield SandboxBadge()
        yield DataTable(id="campaigns", cursor_type="row", zebra_stripes=True)
        yield Static("No campaigns yet.", id="no-campaigns", classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Campaign", "State", "Sender account", "Schedule", "ID")
        self.action_refresh()
        table.focus()

    def action_refresh(self) -> None:
        services = self.console.services
        accounts = {a.id: a.name for a in services.store.directory.accounts()}
        campaigns = sorted(services.store.campaigns.all(), key=lambda c: c.updated_at, reverse=True)
        table = self.query_one(DataTable)
        table.clear()
        for campaign in campaigns:
            table.add_row(
                campaign.name,
                campaign.state.value,
                accounts.get(campaign.sender_account or "", campaign.sender_account or "—"),
                schedule_text(campaign),
                campaign.id,
                key=campaign.id,
            )
        self.query_one("#no-campaigns").display = not campaigns

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        if row_key.value is not None:
            self._open(row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._open(event.row_key.value)

    def _open(self, campaign_id: str) -> None:
        from tui.screens.campaign import CampaignScreen

        self.app.push_screen(CampaignScreen(campaign_id))
