"""SVG snapshots of the console shell: the campaign list, the new-campaign dialog, help.

The data is fixed (ids, names, times, a frozen clock) and the cursor does not blink, so a
difference is a change in what operators see: look at `snapshot_report.html` before accepting
one with `--snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.test_app import console, settle, world_services

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "_toggle_cursor", lambda _self: None)


def pressing(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", list(SIZES))
def test_campaign_list(snap_compare: Callable[..., bool], data_dir: Path, size: str) -> None:
    app = console(world_services(data_dir))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=pressing())


@pytest.mark.parametrize("size", list(SIZES))
def test_campaign_list_filtered_and_sorted(
    snap_compare: Callable[..., bool], data_dir: Path, size: str
) -> None:
    app = console(world_services(data_dir))
    keys = ("slash", "a", "enter", "s")  # names with an "a", by name
    assert snap_compare(app, terminal_size=SIZES[size], run_before=pressing(*keys))


@pytest.mark.parametrize("size", list(SIZES))
def test_new_campaign_dialog(snap_compare: Callable[..., bool], data_dir: Path, size: str) -> None:
    app = console(world_services(data_dir))
    keys = ("n", *"welcome_friends")  # a taken name, to show the inline problem
    assert snap_compare(app, terminal_size=SIZES[size], run_before=pressing(*keys))


@pytest.mark.parametrize("size", list(SIZES))
def test_help_screen(snap_compare: Callable[..., bool], data_dir: Path, size: str) -> None:
    app = console(world_services(data_dir))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=pressing("f1"))
