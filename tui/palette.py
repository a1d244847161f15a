"""The command palette (ctrl+p): every action of the screen in front, and every campaign.

Generic over the active bindings, so any screen's actions (the campaign tabs included) appear
with their current keys without being listed here. Names are user data: they are shown as
plain text, never parsed as markup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from tui.widgets import console_of, literal

if TYPE_CHECKING:
    from textual.binding import Binding
    from textual.dom import DOMNode

    from tui.app import ConsoleApp

SKIPPED_ACTIONS = frozenset({"command_palette", "app.command_palette", "help_quit"})


@dataclass(frozen=True)
class PaletteCommand:
    title: str
    help: str
    callback: Callable[[], Any]


@dataclass(frozen=True)
class BindingEntry:
    """One binding as the operator knows it: what it does and the keys that do it now."""

    node: DOMNode
    binding: Binding
    keys: tuple[str, ...]
    enabled: bool

    @property
    def title(self) -> str:
        return self.binding.description or self.binding.action.replace("_", " ").capitalize()


def binding_entries(app: Any, screen: Any, *, include_hidden: bool = True) -> list[BindingEntry]:
    """The bindings in force on `screen` (focused widget, screen, app), keys merged per action."""
    merged: dict[tuple[int, str, str], tuple[Any, Any, list[str], bool]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.system or binding.action in SKIPPED_ACTIONS:
            continue
        if not include_hidden and not binding.show:
            continue
        identity = (id(active.node), binding.action, binding.id or binding.description)
        display = app.get_key_display(binding.with_key(key))
        if identity in merged:
            merged[identity][2].append(display)
        else:
            merged[identity] = (active.node, binding, [display], active.enabled)
    return [
        BindingEntry(node, binding, tuple(keys), enabled)
        for node, binding, keys, enabled in merged.values()
    ]


def highlight(matcher: Matcher, text: str) -> Content:
    """Like `Matcher.highlight`, but `text` is plain text, not markup."""
    content = Content(text)
    score, offsets = matcher.fuzzy_search.match(matcher.query, text)
    if score:
        for offset in offsets:
            if not text[offset].isspace():
                content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class ConsoleCommands(Provider):
    """Bindings of the calling screen and the app, themes, system commands, campaigns."""

    @property
    def console(self) -> ConsoleApp:
        return console_of(self.app)

    def _actions(self) -> Iterator[PaletteCommand]:
        app = self.console
        for entry in binding_entries(app, self.screen):
            if not entry.enabled:
                continue
            where = f" · {entry.binding.id}" if entry.binding.id else ""
            yield PaletteCommand(
                entry.title,
                f"{' '.join(entry.keys)}{where}",
                partial(app.run_action, entry.binding.action, entry.node),
            )
        yield PaletteCommand(
            "Switch theme",
            f"now {app.theme}; ansi-dark and ansi-light follow the terminal",
            app.action_change_theme,
        )
        for command in app.get_system_commands(self.screen):
            yield PaletteCommand(command.title, command.help, command.callback)

    def _campaigns(self) -> Iterator[PaletteCommand]:
        app = self.console
        for campaign_id, name, state in app.known_campaigns:
            yield PaletteCommand(
                f"Open campaign: {literal(name)}",
                f"{state.value} · {campaign_id}",
                partial(app.open_campaign, campaign_id),
            )

    async def discover(self) -> Hits:
        for command in self._actions():
            yield DiscoveryHit(Content(command.title), command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._actions():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    highlight(matcher, command.title),
                    command.callback,
                    text=command.title,
                    help=command.help,
                )
        for index, command in enumerate(self._campaigns()):
            if index % 500 == 499:
                await asyncio.sleep(0)
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score * 0.9,
                    highlight(matcher, command.title),
                    command.callback,
                    text=command.title,
                    help=command.help,
                )
