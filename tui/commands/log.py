"""`lcc log CAMPAIGN_ID [--format jsonl|csv]`: the delivery log, contract columns first.

Rows are streamed part by part (a million-row log never sits in memory as one list). CSV has the
contract's columns, then the extra ones every row of this log carries.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import orjson

from core.delivery_log import COLUMNS, EXTRA_COLUMNS, ordered_row
from core.store import Store
from tui.output import EXIT_OK, settings_from


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Store(settings.data_dir, system_identifier=settings.system_identifier)
    store.campaigns.get(args.campaign_id)
    rows = store.delivery_log(args.campaign_id).rows()
    out = sys.stdout
    try:
        if args.format == "csv":
            writer = csv.writer(out, lineterminator="\n")
            header = [*COLUMNS, *EXTRA_COLUMNS]
            writer.writerow(header)
            for row in rows:
                writer.writerow([_csv_value(row.get(column)) for column in header])
        else:
            write = out.buffer.write
            for row in rows:
                write(orjson.dumps(ordered_row(row)) + b"\n")
        out.flush()
    except BrokenPipeError:  # `lcc log ... | head`: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
