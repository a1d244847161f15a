"""`lcc import FILE... [--no-campaign] [--json]`: fixtures into the data dir, for the console.

A data dir of one's own starts empty: no workspace, sender account or segment to build a
campaign from. A fixture file holds them (the format `lcc replay` reads), so importing one stores
its workspace, sender accounts and segments, and its campaign as a new Draft to open in the
console. Every file is read and checked before anything is stored; a campaign name its
workspace already uses is refused, with nothing stored. The fixtures' clock, sandbox faults and
expectations are for replays and are not imported. 0 imported, 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from core.fixture import load_fixture
from core.service import Services
from tui.output import EXIT_OK, print_json, settings_from, stdout_console


def run(args: argparse.Namespace) -> int:
    loaded = [load_fixture(path) for path in args.files]  # a bad file: nothing is stored
    services = Services.open(settings_from(args))
    created = services.import_fixtures(
        [item.fixture for item in loaded],
        campaigns=not args.no_campaign,
        unique_names=True,
        sources=[str(item.path) for item in loaded],
    )
    summaries: list[dict[str, Any]] = []
    for item, campaign in zip(loaded, created, strict=True):
        fixture = item.fixture
        summaries.append(
            {
                "file": str(item.path),
                "workspace": fixture.workspace,
                "sender_accounts": [account.id for account in fixture.sender_accounts],
                "segments": [
                    {"parent_segment": s.parent_segment, "segment": s.segment}
                    for s in fixture.segments
                ],
                "campaign_id": campaign.id if campaign is not None else None,
                "name": campaign.name if campaign is not None else None,
            }
        )
    if args.json:
        print_json({"data_dir": str(services.store.data_dir.resolve()), "imported": summaries})
        return EXIT_OK
    console = stdout_console()
    for summary in summaries:
        accounts, segments = len(summary["sender_accounts"]), len(summary["segments"])
        line = Text.assemble(
            ("✓ ", "green"),
            f"{summary['file']}: workspace {summary['workspace']} · {accounts} sender "
            f"account{'s' if accounts != 1 else ''} · {segments} segment"
            f"{'s' if segments != 1 else ''}",
        )
        if summary["campaign_id"] is not None:
            line.append(f" · {summary['name']} as Draft {summary['campaign_id']}")
        console.print(line)
    where = services.store.data_dir.resolve()
    console.print(Text(f"Stored in {where}; `lcc --data-dir {where}` opens the console on it."))
    return EXIT_OK
