"""`lcc insights fetch CAMPAIGN_ID [--json] [--force]`: LINE's statistics for a campaign's unit.

Exit codes: 0 fetched (or already final), 1 LINE refused or the hour's 60 requests are used up,
2 unknown campaign.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Group
from rich.text import Text

from core.errors import InputError
from core.insights import FetchOutcome
from core.report import CampaignReport
from core.service import Services
from tui.commands.report import insights_part, reconciliation_table, titled
from tui.output import EXIT_FAILED, EXIT_OK, fail, print_json, settings_from, stdout_console


def run(args: argparse.Namespace) -> int:
    services = Services.open(settings_from(args))
    services.store.campaigns.get(args.campaign_id)  # unknown campaign: exit 2 before anything
    try:
        outcome, report = asyncio.run(services.fetch_insights(args.campaign_id, force=args.force))
    except InputError as exc:  # LINE's answer was not what its reference says
        fail(exc.describe())
        return EXIT_FAILED
    if args.json:
        print_json(_document(outcome, report))
    else:
        _print(outcome, report)
    return EXIT_OK


def _document(outcome: FetchOutcome, report: CampaignReport) -> dict[str, Any]:
    budget = outcome.budget
    return {
        "campaign_id": report.campaign_id,
        "fetched": outcome.fetched,
        "insights": report.insights,
        "reconciliation": [day.to_json() for day in report.reconciliation],
        "unit_budget": report.units.to_json(report.channel),
        "line_unit_count": outcome.unit_count,
        "insight_calls": (
            {
                "channel": budget.channel,
                "used_last_hour": budget.used,
                "limit": budget.limit,
                "next_free_at": budget.next_free_at.isoformat() if budget.next_free_at else None,
            }
            if budget
            else None
        ),
        "notes": outcome.notes + [n for n in report.notes if n not in outcome.notes],
    }


def _print(outcome: FetchOutcome, report: CampaignReport) -> None:
    parts: list[Any] = [titled(insights_part(report))]
    reconciliation = reconciliation_table(report)
    if reconciliation is not None:
        parts.append(titled(reconciliation))
    if outcome.budget:
        parts.append(
            Text(
                f"LINE statistics requests for channel {outcome.budget.channel} in the last hour: "
                f"{outcome.budget.used} of {outcome.budget.limit}"
            )
        )
    warning = report.units.warning(report.channel)
    for note in [*outcome.notes, *([warning] if warning else [])]:
        parts.append(Text(f"note: {note}", style="yellow"))
    stdout_console().print(Group(*parts))
