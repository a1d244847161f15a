"""New campaign: a name and the channel type, then the campaign opens as a Draft.

The name is checked as the operator types (with the names the list already knows), and again
by `Services.create_draft` under the store's lock, which is the rule that counts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from core.errors import InputError
from core.service import Services
from tui.screens.confirm import Dialog
from tui.widgets import console_of, literal_text

if TYPE_CHECKING:
    from tui.app import ConsoleApp

CAMPAIGN_TYPE = "LINE Official Account"
"""The only campaign type this console builds (Engage Studio's one-off LINE campaigns)."""


class NewCampaignDialog(Dialog[str | None]):
    """Dismisses with the new campaign's id, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="new_campaign.cancel"),
    ]

    def __init__(self, workspace: str, taken: Collection[str] = ()) -> None:
        super().__init__()
        self.workspace = workspace
        self.taken = set(taken)
        self._creating = False

    @property
    def console(self) -> ConsoleApp:
        return console_of(self.app)

    def compose(self) -> ComposeResult:
        title = Text("New campaign in ", end="")
        title.append_text(literal_text(self.workspace))
        with Vertical(classes="dialog", id="new-campaign"):
            yield Static(title, classes="dialog-title")
            yield Label("Campaign name", classes="dialog-label")
            yield Input(
                placeholder="e.g. spring_sale_2026",
                id="campaign-name",
                max_length=Services.NAME_MAX,
            )
            yield Static("", id="name-error", classes="dialog-error")
            yield Label("Type", classes="dialog-label")
            yield Static(Text(f"● {CAMPAIGN_TYPE}", end=""), id="campaign-type")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._show_error("")
        self.query_one("#campaign-name", Input).focus()

    def _show_error(self, message: str) -> None:
        error = self.query_one("#name-error", Static)
        error.update(literal_text(message))
        error.display = bool(message)

    @on(Input.Changed, "#campaign-name")
    def _typed(self, event: Input.Changed) -> None:
        problem = Services.name_problem(event.value, self.taken) if event.value else None
        self._show_error(problem or "")

    @on(Input.Submitted, "#campaign-name")
    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        name = self.query_one("#campaign-name", Input).value
        problem = Services.name_problem(name, self.taken)
        if problem:
            self._show_error(problem)
            self.query_one("#campaign-name", Input).focus()
            return
        if not self._creating:
            self._creating = True
            self.query_one("#create", Button).disabled = True
            self._create_draft(name)

    @work(thread=True, group="campaign-write", exit_on_error=False, description="Creating")
    def _create_draft(self, name: str) -> None:
        try:
            campaign = self.console.services.create_draft(name, workspace=self.workspace)
        except InputError as error:
            self.app.call_from_thread(self._refused, error.message)
            return
        except BaseException:
            self.app.call_from_thread(self._refused, "")
            raise
        self.app.call_from_thread(self.dismiss, campaign.id)

    def _refused(self, message: str) -> None:
        self._creating = False
        self.query_one("#create", Button).disabled = False
        if message:
            self._show_error(message)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
