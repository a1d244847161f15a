"""`lcc cron next EXPR [--from ISO] [--count N] [--tz ZONE]`: 0, or 2 on a bad expression.

Prints one ISO-8601 time with its offset per line, strictly after `--from` (default now).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from rich.text import Text

from core import cron
from core.errors import InputError
from tui.output import EXIT_OK, stderr

MAX_COUNT = 10_000


def run(args: argparse.Namespace) -> int:
    zone = cron.zone(args.tz)
    if not 1 <= args.count <= MAX_COUNT:
        raise InputError(f"must be between 1 and {MAX_COUNT} (got {args.count})", source="--count")
    start = datetime.now(UTC)
    if args.start is not None:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise InputError(
                f"{args.start!r} is not an ISO-8601 time such as 2024-06-01T09:00:00+09:00",
                source="--from",
            ) from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
    schedule = cron.parse(args.expr)
    if schedule is None:
        stderr.print(Text('"" is no schedule: a job with it runs only when run by hand'))
        return EXIT_OK
    note = schedule.explain()
    if note:
        stderr.print(Text(f"note: {note}", style="dim"))
    lines = []
    for moment in cron.iter_runs(schedule, start, zone):
        lines.append(moment.isoformat())
        if len(lines) >= args.count:
            break
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
