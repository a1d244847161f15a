"""`lcc log CAMPAIGN_ID [--format jsonl|csv]`: the delivery log, contract columns first."""

from __future__ import annotations

import argparse
import csv
import sys

import orjson

from core.delivery_log import COLUMNS
from core.store import Store
from tui.output import EXIT_OK, settings_from


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Store(settings.data_dir, system_identifier=settings.system_identifier)
    store.campaigns.get(args.campaign_id)
    rows = store.delivery_log(args.campaign_id).rows()
    out = sys.stdout
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        header: list[str] | None = None
        for row in rows:
            if header is None:
                header = [*COLUMNS, *(k for k in row if k not in COLUMNS)]
                writer.writerow(header)
            writer.writerow(_csv_value(row.get(column)) for column in header)
        if header is None:
            writer.writerow(COLUMNS)
    else:
        for row in rows:
            ordered = {column: row.get(column) for column in COLUMNS}
            ordered.update((k, v) for k, v in row.items() if k not in ordered)
            out.buffer.write(orjson.dumps(ordered) + b"\n")
    out.flush()
    return EXIT_OK


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
