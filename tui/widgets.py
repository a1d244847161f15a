"""Small widgets and text helpers shared by several screens.

User data (campaign names, message text, profile attributes) is always shown through
`literal_text`, never as markup: a name like ``[red]x[/]`` or one holding an escape sequence is
drawn exactly as typed and can neither restyle the screen nor reach the terminal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from core.models import CampaignState
    from core.settings import Settings
    from tui.app import ConsoleApp


def console_of(app: object) -> ConsoleApp:
    """The console a screen or palette provider runs in (imported late: tui.app imports this)."""
    from tui.app import ConsoleApp

    assert isinstance(app, ConsoleApp)
    return app


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\t]")
_PICTURE_OF = {"\n": "⏎", "\r\n": "⏎", "\r": "⏎", "\t": "→"}


def _picture(match: re.Match[str]) -> str:
    """A visible stand-in for one control character (U+2400 block, or \\x.. for C1)."""
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "␡"
    return f"\\x{code:02x}"


def literal(value: str, *, multiline: bool = False) -> str:
    """`value` with every control character replaced by a visible picture of it.

    With `multiline`, newlines and tabs are kept (text bubbles); otherwise they become
    visible marks so a table cell stays one line.
    """
    if not multiline:
        value = _LINE_BREAKS.sub(lambda m: _PICTURE_OF[m.group()], value)
    return _CONTROL.sub(_picture, value)


def literal_text(value: str, *, multiline: bool = False, style: str = "") -> Text:
    """A `Text` showing `value` literally: no markup, no escape sequences, no control codes."""
    return Text(literal(value, multiline=multiline), style=style, end="")


# --- campaign states --------------------------------------------------------------------------

# Keyed by the states' values: `CampaignState` is a StrEnum, so its members find these keys, and
# this module (drawn before anything else) does not have to import the domain models.

STATE_ORDER: dict[str, int] = {
    state: index
    for index, state in enumerate(("Draft", "Planned", "Active", "Finished", "Suspended"))
}
"""Draft, Planned, Active, Finished, Suspended: the lifecycle order, used for sorting."""

STATE_SYMBOL: dict[str, str] = {
    "Draft": "○",
    "Planned": "◷",
    "Active": "▶",
    "Finished": "✓",
    "Suspended": "‖",
}
"""A shape per state, so the badge reads without colour (NO_COLOR, monochrome terminals)."""


def state_label(state: CampaignState) -> str:
    return f"{STATE_SYMBOL[state]} {state.value}"


def state_text(state: CampaignState, style: Style | str = "") -> Text:
    """The state badge as text (for table cells); the caller picks the style from the theme."""
    return Text(state_label(state), style=style, end="")


class StateBadge(Static):
    """A campaign's state: symbol and word, coloured per state by the theme."""

    DEFAULT_CSS = """
    StateBadge { width: auto; height: 1; padding: 0 1; text-style: bold; }
    StateBadge.-draft { color: $foreground-muted; }
    StateBadge.-planned { color: $accent; }
    StateBadge.-active { color: $warning; }
    StateBadge.-finished { color: $success; }
    StateBadge.-suspended { color: $error; }
    """

    def __init__(self, state: CampaignState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state

    def on_mount(self) -> None:
        self.set_state(self.state)

    def set_state(self, state: CampaignState) -> None:
        for other in STATE_SYMBOL:
            self.remove_class(f"-{other.lower()}")
        self.state = state
        self.add_class(f"-{state.value.lower()}")
        self.update(Text(state_label(state), end=""))


SANDBOX_NOTICE = "SANDBOX · messages go to the embedded LINE simulator, not to phones"


def sandbox_notice(settings: Settings) -> tuple[str, bool] | None:
    """(the badge's words, whether messages reach phones) when a sandbox is in use, else None.

    Half-sandboxed settings are said as they are: with the Conversion API on the sandbox and
    the Messaging API live, 'not to phones' would be a dangerous lie."""
    if settings.line_is_sandbox:
        if settings.capi_is_sandbox:
            return SANDBOX_NOTICE, False
        host = urlsplit(settings.capi_base).netloc or settings.capi_base
        return f"SANDBOX LINE · messages stay in the simulator · conversions go to {host}", False
    if settings.capi_is_sandbox:
        host = urlsplit(settings.line_api_base).netloc or settings.line_api_base
        return f"LIVE LINE ({host}) · messages reach phones · conversions: sandbox", True
    return None


class SandboxBadge(Static):
    """A bar that cannot be missed while a sandbox is in use (red when messages are live)."""

    DEFAULT_CSS = """
    SandboxBadge {
        width: 100%;
        height: 1;
        background: $warning;
        color: $background;
        text-style: bold;
        content-align: center middle;
    }
    SandboxBadge.-live { background: $error; }
    """

    def __init__(self, notice: tuple[str, bool] = (SANDBOX_NOTICE, False)) -> None:
        text, live = notice
        super().__init__(text, id="sandbox-badge", classes="-live" if live else "")
