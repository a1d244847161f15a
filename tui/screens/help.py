"""The help screen (F1, ?): the keys in force on the screen behind it, as they are now.

Built from the screen's active bindings, not a hand-kept list: a key remapped in the config file
shows its new value, and bindings added by any screen or widget appear by themselves.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.config import CONFIG_ENV
from tui.palette import BindingEntry, binding_entries
from tui.widgets import SandboxBadge

KEY_WIDTH = 16


GENERIC_SCREEN_ACTIONS = frozenset(binding.action for binding in Screen.BINDINGS)  # type: ignore[union-attr]
"""Textual's own screen keys (focus next, copy): the same on every screen."""
EVERYWHERE = "Everywhere"


def section_title(entry: BindingEntry, screen: Screen[Any]) -> str:
    node = entry.node
    if node is screen.app or (node is screen and entry.binding.action in GENERIC_SCREEN_ACTIONS):
        return EVERYWHERE
    if node is screen:
        return getattr(node, "HELP_TITLE", None) or "This screen"
    return getattr(node, "HELP_TITLE", None) or type(node).__name__


def help_text(sections: list[tuple[str, list[BindingEntry]]], width: int = 72) -> Text:
    """The bindings as plain lines: keys, what they do, the id to remap them by."""
    text = Text(end="")
    for number, (title, entries) in enumerate(sections):
        if number:
            text.append("\n")
        text.append(f"{title}\n", style="bold underline")
        for entry in entries:
            keys = " ".join(entry.keys)
            text.append(f"  {keys:<{KEY_WIDTH}}", style="bold")
            described = entry.title
            binding_id = entry.binding.id or ""
            room = width - KEY_WIDTH - 4 - len(described)
            text.append(described, style="" if entry.enabled else "dim")
            if binding_id:
                text.append(f"{' ' * max(room - len(binding_id), 2)}{binding_id}", style="dim")
            text.append("\n")
    return text


class HelpScreen(ModalScreen[None]):
    """Keys of the screen below, grouped: that screen's widgets, the screen, everywhere."""

    DEFAULT_CSS = """
    HelpScreen { align: center top; background: $background 60%; }
    HelpScreen #help-box {
        width: 80; max-width: 100%; height: 1fr;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-center { height: 1fr; }
    HelpScreen #help-title { text-style: bold; color: $text-primary; }
    HelpScreen #help-scroll { height: 1fr; }
    HelpScreen #help-note { color: $text-muted; padding-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "close", "Close help", id="help.close"),
    ]

    def __init__(self, sections: list[tuple[str, list[BindingEntry]]]) -> None:
        super().__init__()
        self.sections = sections

    @classmethod
    def for_screen(cls, screen: Screen[Any]) -> HelpScreen:
        order: dict[str, list[BindingEntry]] = {}
        entries = binding_entries(screen.app, screen)
        screen_title = getattr(screen, "HELP_TITLE", None) or "This screen"
        for entry in entries:
            order.setdefault(section_title(entry, screen), []).append(entry)
        # the screen's own keys first, then the focused widget's, then those that work anywhere
        titles = sorted(order, key=lambda t: (t == EVERYWHERE, t != screen_title))
        return cls([(title, order[title]) for title in titles])

    def compose(self) -> ComposeResult:
        path = getattr(getattr(self.app, "config", None), "path", None)
        where = str(path) if path else f"${CONFIG_ENV}, or config.toml in the user config dir"
        note = Text(
            f'Remap keys in {where}:  [keymap] "campaigns.new" = "ctrl+n"',
            end="",
        )
        if notice := getattr(self.app, "sandbox_notice", None):
            yield SandboxBadge(notice)
        with Center(id="help-center"), Vertical(id="help-box"):
            yield Static("Keys in force here · Esc closes", id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_text(self.sections), id="help-keys")
            yield Static(note, id="help-note")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
