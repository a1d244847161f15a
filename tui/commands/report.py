"""`lcc report CAMPAIGN_ID [--json] [--csv FILE]`: the campaign report (0, 2 unknown campaign).

`report_renderables` is also what the console's Report tab shows, so both read the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from core.clock import JST
from core.errors import InputError
from core.insights import OVERVIEW_FIELDS, shown
from core.report import CampaignReport, build_report, error_meaning, write_csv
from core.store import Store
from tui.output import EXIT_OK, print_json, settings_from, stdout_console

EIGHTHS = " ▏▎▍▌▋▊▉"
BAR_WIDTH = 32


def bar(value: float, maximum: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of block characters, eighth-of-a-cell precise; never empty for > 0."""
    if maximum <= 0 or value <= 0:
        return ""
    cells = max(1, round(value / maximum * width * 8))
    full, part = divmod(min(cells, width * 8), 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M UTC+9") if moment else "—"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        justify = "right" if column in ("profiles", "count", "delivered", "failed") else "left"
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table


def _header(report: CampaignReport) -> Text:
    text = Text()
    text.append(report.name, style="bold")
    text.append(f"  {report.campaign_id}  ")
    text.append(report.state.value, style="bold cyan")
    text.append(f"\naccount {report.account or '—'}  unit {report.unit or '—'}")
    text.append(f"\nlaunched {_when(report.launched_at)}  finished {_when(report.finished_at)}")
    if report.first_send:
        text.append(f"\nsends {_when(report.first_send)} … {_when(report.last_send)}")
    return text


def _funnel(report: CampaignReport) -> Table:
    source = "from the delivery log" if report.funnel.source == "log" else "from the segment now"
    table = _table(f"Audience funnel ({source})", "step", "profiles", "")
    steps = [
        ("in the segment", report.funnel.segment),
        ("with a LINE user id", report.funnel.with_id),
        ("valid id", report.funnel.valid),
        ("unique id", report.funnel.unique),
        ("delivered", report.funnel.delivered),
    ]
    top = max(number for _, number in steps) or 1
    for label, number in steps:
        table.add_row(label, f"{number:,}", Text(bar(number, top), style="green"))
    return table


def _outcome(report: CampaignReport) -> Table:
    table = _table("Outcome", "", "profiles", "")
    rows = [
        ("delivered", report.delivered, "green"),
        ("failed (exclusions included)", report.failed, "red"),
        ("  of which excluded", report.excluded, "yellow"),
        ("not sent yet", report.pending, "cyan"),
    ]
    top = max(report.audience, 1)
    for label, number, style in rows:
        if label == "not sent yet" and not number:
            continue
        table.add_row(label, f"{number:,}", Text(bar(number, top), style=style))
    if report.test_sends:
        table.add_row("test sends (never counted)", f"{report.test_sends:,}", "")
    return table


def _errors(report: CampaignReport) -> Table | None:
    if not report.errors:
        return None
    table = _table("Failures by error code", "code", "profiles", "", "meaning")
    top = max(report.errors.values())
    for code, number in report.errors.items():
        table.add_row(
            code, f"{number:,}", Text(bar(number, top, 20), style="red"), error_meaning(code)
        )
    return table


def timeline_table(report: CampaignReport) -> Table | None:
    buckets = report.timeline.buckets
    if not buckets:
        return None
    table = _table(
        f"Sends over time (per {report.timeline.unit}, UTC+9)", "from", "delivered", "failed", ""
    )
    top = max(b.delivered + b.failed + b.excluded for b in buckets) or 1
    day_only = report.timeline.bucket_s >= 86400
    for b in buckets:
        label = b.start.strftime("%Y-%m-%d" if day_only else "%m-%d %H:%M")
        chart = Text(bar(b.delivered, top), style="green")
        chart.append(bar(b.failed + b.excluded, top), style="red")
        table.add_row(label, f"{b.delivered:,}", f"{b.failed + b.excluded:,}", chart)
    return table


def _links(report: CampaignReport) -> Text | None:
    """One link per line and never folded, so a URL can be copied whole from the terminal."""
    if not report.links:
        return None
    text = Text("Links, in their final form", style="italic")
    fetched = report.insights is not None
    for link in report.links:
        # numbered from 1 as the Campaign Content tab numbers messages; `where` is the JSON path
        text.append(f"\n message {link['message'] + 1} {link['where']}", style="bold")
        if fetched:
            clicks = (
                f"{shown(link['uniqueClick'])} users clicked (LINE)"
                if link["in_line_statistics"]
                else "not in LINE's click list"
            )
            text.append(f"  {clicks}", style="dim")
        text.append(f"\n   {link['url']}")
    return text


def insights_part(report: CampaignReport) -> RenderableType:
    if report.insights is None and report.unit is None:
        return Text(
            "LINE statistics: none until the campaign is launched (it then sends with an "
            "aggregation unit name)",
            style="dim",
        )
    if report.insights is None:
        return Text(
            "LINE statistics: not fetched yet (lcc insights fetch " + report.campaign_id + ")",
            style="dim",
        )
    data: dict[str, Any] = report.insights
    status = "final" if data["final"] else "may still change"
    if not data["final"] and data.get("final_at"):
        status += f" until {_when(datetime.fromisoformat(data['final_at']))}"
    title = (
        f"LINE statistics for unit {data['unit']}, {data['from']} … {data['to']} "
        f"(fetched {_when(datetime.fromisoformat(data['fetched_at']))}; {status})"
    )
    table = _table(title, "figure", "LINE", f"of our {report.delivered:,} delivered")
    names = {
        "uniqueImpression": "opened (users)",
        "uniqueClick": "clicked (users)",
        "uniqueMediaPlayed": "played media (users)",
        "uniqueMediaPlayed100Percent": "played to the end (users)",
    }
    rates = {"uniqueImpression": data["open_rate"], "uniqueClick": data["click_rate"]}
    for name in OVERVIEW_FIELDS:
        value = data.get(name)
        share = rates.get(name)
        if share is None and value is not None and report.delivered:
            share = value / report.delivered
        table.add_row(names[name], shown(value), _percent(share) if value is not None else "—")
    return table


def reconciliation_table(report: CampaignReport) -> Table | None:
    if not report.reconciliation:
        return None
    table = _table(
        "Our log beside LINE's day counts", "day (UTC+9)", "ours", "LINE", "why they differ"
    )
    for day in report.reconciliation:
        if day.line_api is not None:
            line = f"{day.line_api:,}"
        elif day.line_api_max is not None:
            line = f"≤ {day.line_api_max:,}"
        elif day.line_insight is not None:
            line = f"{day.line_insight:,}"
        else:
            line = day.status
        table.add_row(
            f"{day.day[:4]}-{day.day[4:6]}-{day.day[6:]}", f"{day.ours:,}", line, day.explanation
        )
    return table


def webhook_table(report: CampaignReport) -> Table:
    w = report.webhook
    table = _table("Webhook events from recipients, 24 h after their send", "event", "count", "")
    top = max(w.follow, w.unfollow, w.postback, 1)
    for label, number in (
        ("follow", w.follow),
        ("unfollow (block)", w.unfollow),
        ("postback", w.postback),
    ):
        table.add_row(label, f"{number:,}", Text(bar(number, top, 20), style="magenta"))
    table.add_row(
        "block rate", _percent(w.block_rate), f"{w.unfollowers:,} of {report.delivered:,}"
    )
    return table


def _units(report: CampaignReport) -> Text:
    used = report.units.used(report.channel)
    text = Text(
        f"Aggregation unit names in {report.units.month}: {used:,} of {report.units.cap:,}"
        + (f" (channel {report.channel})" if report.channel else "")
    )
    if report.insight_calls:
        calls = report.insight_calls
        text.append(
            f"\nLINE statistics requests in the last hour: {calls['used_last_hour']} of "
            f"{calls['limit']}"
        )
    return text


def titled(part: RenderableType) -> RenderableType:
    """A table's title as a line of its own: Rich would wrap it to the table's width."""
    if isinstance(part, Table) and part.title:
        heading = Text(str(part.title), style="bold")
        part.title = None
        return Group(heading, part)
    return part


def report_renderables(report: CampaignReport) -> list[RenderableType]:
    """Everything the report shows, in order, as Rich renderables."""
    parts: list[RenderableType | None] = [
        _header(report),
        _funnel(report),
        _outcome(report),
        _errors(report),
        timeline_table(report),
        _links(report),
        insights_part(report),
        reconciliation_table(report),
        webhook_table(report),
        _units(report),
    ]
    out: list[RenderableType] = [titled(part) for part in parts if part is not None]
    for note in report.notes:
        out.append(Text(f"note: {note}", style="yellow"))
    return out


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Store(settings.data_dir, system_identifier=settings.system_identifier)
    report = build_report(store, args.campaign_id)
    csv_target: str | None = getattr(args, "csv", None)
    if csv_target:
        _write_csv(report, csv_target)
    if args.json:
        print_json(report.to_json())
    elif csv_target != "-":
        console = stdout_console()
        console.print(Group(*_spaced(report_renderables(report))))
    return EXIT_OK


def _spaced(parts: Sequence[RenderableType]) -> list[RenderableType]:
    out: list[RenderableType] = []
    for part in parts:
        out.extend((part, Text("")))
    return out[:-1]


def _write_csv(report: CampaignReport, target: str) -> None:
    if target == "-":
        write_csv(report, sys.stdout)
        sys.stdout.flush()
        return
    path = Path(target)
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            write_csv(report, handle)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", source=str(path)) from None
