"""The kill switch: stop everything one sender account is sending, now.

For the moment a campaign must not go on (a wrong price in the copy, a leaked token): every
Active campaign of the account is suspended (its deliveries stop within a second, what LINE
already accepted stays sent) and its Planned ones are held. The operator picks the account,
says why (each campaign's history keeps it) and types the account's name, as for a launch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from core.models import SenderAccount
from tui.screens.confirm import Dialog
from tui.widgets import literal_text


@dataclass(frozen=True)
class AccountReach:
    """A sender account and what its kill switch would stop now."""

    account: SenderAccount
    active: int
    planned: int

    def label(self) -> Text:
        text = literal_text(f"{self.account.name} ({self.account.id})")
        text.append(f" · {self.active} Active, {self.planned} Planned", style="dim")
        return text


@dataclass(frozen=True)
class KillSwitchOrder:
    account_id: str
    reason: str


class KillSwitchDialog(Dialog[KillSwitchOrder | None]):
    """Dismisses with the account and the reason once both are given and the account's name is
    typed; None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="kill_switch.cancel"),
    ]

    def __init__(self, reach: list[AccountReach], *, chosen: str | None = None) -> None:
        super().__init__()
        self.reach = {item.account.id: item for item in reach}
        self.chosen = chosen if chosen in self.reach else None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="kill-switch"):
            yield Static(Text("Kill switch", end=""), classes="dialog-title")
            yield Static(
                Text(
                    "Suspends the account's Active campaigns now (sending stops within a "
                    "second; what LINE accepted stays sent) and holds its Planned ones until "
                    "an operator starts or cancels each. Suspended campaigns can be resumed.",
                    end="",
                ),
                classes="dialog-body",
            )
            yield Label("Sender account", classes="dialog-label")
            yield Select(
                [(item.label(), account_id) for account_id, item in self.reach.items()],
                prompt="Choose the sender account",
                id="kill-account",
                value=self.chosen if self.chosen is not None else Select.BLANK,
                compact=True,
            )
            yield Label("Why (kept in each campaign's history)", classes="dialog-label")
            yield Input(placeholder="e.g. wrong price in the copy", id="kill-reason", compact=True)
            yield Label("", id="kill-confirm-label", classes="dialog-label")
            yield Input(id="kill-confirm", select_on_focus=False, compact=True)
            yield Static("", id="kill-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Suspend all", variant="error", id="kill", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._say(None)
        self._account_changed()
        target = "#kill-reason" if self.chosen is not None else "#kill-account"
        self.query_one(target).focus()

    def _account(self) -> AccountReach | None:
        value = self.query_one("#kill-account", Select).value
        return self.reach.get(value) if isinstance(value, str) else None

    def _problem(self) -> str | None:
        """Why the switch cannot be pulled yet, or None."""
        item = self._account()
        if item is None:
            return "choose the sender account"
        if not self.query_one("#kill-reason", Input).value.strip():
            return "say why: each campaign's history keeps the reason"
        if self.query_one("#kill-confirm", Input).value.strip() != item.account.name.strip():
            return "type the account's name to confirm"
        return None

    @on(Select.Changed, "#kill-account")
    def _account_changed(self) -> None:
        item = self._account()
        label = self.query_one("#kill-confirm-label", Label)
        confirm = self.query_one("#kill-confirm", Input)
        if item is None:
            label.update("Then type the account's name to confirm")
            confirm.placeholder = ""
        else:
            instruction = Text("Type ", end="")
            instruction.append_text(literal_text(item.account.name, style="bold"))
            instruction.append(" to confirm:")
            label.update(instruction)
            confirm.placeholder = item.account.name
        self._refresh_button()

    @on(Input.Changed)
    def _refresh_button(self) -> None:
        self.query_one("#kill", Button).disabled = self._problem() is not None
        self._say(None)

    def _say(self, problem: str | None) -> None:
        error = self.query_one("#kill-error", Static)
        error.update(Text(f"● {problem}", end="") if problem else "")
        error.display = problem is not None

    @on(Input.Submitted, "#kill-reason")
    def _reason_given(self) -> None:
        self.query_one("#kill-confirm", Input).focus()

    @on(Input.Submitted, "#kill-confirm")
    @on(Button.Pressed, "#kill")
    def _pull(self) -> None:
        problem = self._problem()
        item = self._account()
        if problem is not None or item is None:
            self._say(problem)
            return
        reason = self.query_one("#kill-reason", Input).value.strip()
        self.dismiss(KillSwitchOrder(item.account.id, reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
