"""Confirmation by typing: the guard in front of anything that reaches real people.

A single key can be pressed by accident or by a stray paste; typing the sender account's name
cannot. The confirm button stays disabled until the text matches exactly.
"""

from __future__ import annotations

from typing import TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui.widgets import literal_text

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    """A centred box over the current screen, which stays visible (with its SANDBOX badge)."""

    DEFAULT_CSS = """
    Dialog { align: center middle; background: $background 60%; }
    Dialog .dialog {
        width: 70; max-width: 96%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    Dialog .dialog-title { text-style: bold; color: $text-primary; padding-bottom: 1; }
    Dialog .dialog-body { padding-bottom: 1; }
    Dialog .dialog-label { color: $text-muted; }
    Dialog .dialog-error { color: $text-error; height: auto; }
    Dialog .dialog-buttons { height: auto; align-horizontal: right; padding-top: 1; }
    Dialog .dialog-buttons Button { margin-left: 2; }
    """


class ConfirmByTyping(Dialog[bool]):
    """Dismisses with True only once `expected` has been typed; False on cancel."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
    ]

    def __init__(
        self,
        title: str | Text,
        prompt: str | Text,
        expected: str,
        *,
        confirm_label: str = "Confirm",
    ) -> None:
        super().__init__()
        self.title_text = title if isinstance(title, Text) else literal_text(title)
        self.prompt_text = (
            prompt if isinstance(prompt, Text) else literal_text(prompt, multiline=True)
        )
        self.expected = expected
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        instruction = Text("Type ", end="")
        instruction.append_text(literal_text(self.expected, style="bold"))
        instruction.append(" to confirm:")
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.prompt_text, classes="dialog-body")
            yield Static(instruction, classes="dialog-label")
            yield Input(placeholder=self.expected, id="confirm-input", select_on_focus=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, variant="error", id="confirm", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm-input", Input).focus()

    @property
    def matches(self) -> bool:
        return self.query_one("#confirm-input", Input).value.strip() == self.expected.strip()

    @on(Input.Changed, "#confirm-input")
    def _typed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self.matches

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self) -> None:
        if self.matches:
            self.dismiss(True)
        else:
            self.notify("The text does not match yet.", severity="warning", timeout=3)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.matches:
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
