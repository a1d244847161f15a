"""SVG snapshots of the Conversions screen at 80x24 and 120x40.

The jobs, their runs and the clock are fixed (`tests.tui.test_conversions.fixed_jobs`), so a
difference is a change in what operators see: look at `snapshot_report.html` before accepting
one with `--snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.test_app import console, settle, wait_until
from tests.tui.test_conversions import open_services, world
from tui.screens.conversions import ConversionsScreen, JobTable

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def conversions_then(*keys: str) -> Callable[[Pilot[Any]], Any]:
    """Open the Conversions screen over the campaign list, then press `keys`."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.push_screen(ConversionsScreen())
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        # DataTable measures its columns when it is idle, which a busy machine delays past the
        # frame the snapshot takes, and the screen's 5 s poll may read the jobs again: wait
        # for the table's own pending-work flags, then for two identical frames in a row
        table = pilot.app.screen.query_one(JobTable)
        await wait_until(
            pilot,
            lambda: not table._require_update_dimensions and not table._updated_cells,
            "the jobs table's column widths",
        )
        await wait_for_a_still_frame(pilot)

    return run_before


async def wait_for_a_still_frame(pilot: Pilot[Any], seconds: float = 10.0) -> None:
    previous = pilot.app.export_screenshot()
    for _ in range(int(seconds / 0.1)):
        await pilot.pause(0.1)
        await settle(pilot)
        frame = pilot.app.export_screenshot()
        if frame == previous:
            return
        previous = frame
    raise AssertionError("the Conversions screen kept changing")


@pytest.mark.parametrize("size", list(SIZES))
def test_jobs_with_a_failed_last_run(
    snap_compare: Callable[..., bool], data_dir: Path, size: str
) -> None:
    """hourly-web, whose last run failed, is selected (backfill, first by name, is above)."""
    app = console(world(data_dir))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=conversions_then("down"))


@pytest.mark.parametrize("size", list(SIZES))
def test_a_daily_job_with_a_delay(
    snap_compare: Callable[..., bool], data_dir: Path, size: str
) -> None:
    app = console(world(data_dir))
    keys = ("down", "down")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=conversions_then(*keys))


@pytest.mark.parametrize("size", list(SIZES))
def test_a_job_disabled_after_failures(
    snap_compare: Callable[..., bool], data_dir: Path, size: str
) -> None:
    app = console(world(data_dir))
    keys = ("down", "down", "down")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=conversions_then(*keys))


@pytest.mark.parametrize("size", list(SIZES))
def test_no_jobs_yet(snap_compare: Callable[..., bool], data_dir: Path, size: str) -> None:
    app = console(open_services(data_dir))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=conversions_then())
