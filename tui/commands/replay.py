"""`lcc replay FILE... [--json]`: 0 all met, 1 an expectation or a campaign failed, 2 bad input."""

from __future__ import annotations

import argparse
import asyncio

from rich.table import Table
from rich.text import Text

from core.fixture import LoadedFixture, load_fixture
from core.replay import ReplayResult, replay
from core.settings import Settings
from tui.output import EXIT_FAILED, EXIT_OK, print_json, settings_from, stderr, stdout_console
from tui.progress import delivery_bars


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    loaded = [load_fixture(path) for path in args.files]
    results = asyncio.run(_replay_all(loaded, settings))
    ok = all(result.succeeded for result in results)
    if args.json:
        print_json({"campaigns": [result.to_json() for result in results]})
    else:
        _print_people(results)
    return EXIT_OK if ok else EXIT_FAILED


async def _replay_all(loaded: list[LoadedFixture], settings: Settings) -> list[ReplayResult]:
    results: list[ReplayResult] = []
    with delivery_bars(stderr) as bars:
        for fixture in loaded:
            stderr.print(f"replaying {fixture.path} ...", markup=False, highlight=False)
            result = await replay(fixture, settings, progress=bars.callback)
            for notice in result.notices:
                stderr.print(f"  note: {notice}", markup=False, highlight=False)
            results.append(result)
    return results


def _print_people(results: list[ReplayResult]) -> None:
    table = Table(title="replay")
    for column in (
        "campaign",
        "state",
        "audience",
        "excluded",
        "delivered",
        "failed",
        "requests",
        "met",
    ):
        table.add_column(column)
    for r in results:
        met = "yes" if r.succeeded else "NO"
        table.add_row(
            Text(f"{r.name}\n{r.campaign_id}"),  # a name such as "[sale] winter" is not markup
            r.state.value,
            f"{r.audience:,}",
            f"{r.excluded:,}",
            f"{r.delivered:,}",
            f"{r.failed:,}",
            f"{r.requests:,}",
            met,
        )
    console = stdout_console()
    console.print(table)
    for r in results:
        if r.suspend_reason and r.state.value == "Suspended":
            console.print(f"  {r.name}: suspended: {r.suspend_reason}", markup=False)
        for issue in r.issues:
            console.print(
                f"  {r.name}: [{issue.tab.value}] {issue.field}: {issue.message}", markup=False
            )
        for mismatch in r.mismatches:
            console.print(f"  {r.name}: expectation not met: {mismatch}", markup=False)
