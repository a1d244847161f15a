"""`lcc validate FILE [--json]`: 0 valid, 1 invalid, 2 unreadable input."""

from __future__ import annotations

import argparse

from rich.table import Table

from core.fixture import load_fixture
from core.validation import validate_fixture
from tui.output import EXIT_FAILED, EXIT_OK, print_json, stdout_console


def run(args: argparse.Namespace) -> int:
    loaded = load_fixture(args.file)
    issues = validate_fixture(loaded.fixture)
    if args.json:
        print_json({"valid": not issues, "issues": [i.model_dump(mode="json") for i in issues]})
        return EXIT_FAILED if issues else EXIT_OK
    console = stdout_console()
    name = loaded.fixture.campaign.name
    if not issues:
        console.print(f"[green]✓[/] {name}: ready to launch", markup=True)
        return EXIT_OK
    table = Table(title=f"{name}: {len(issues)} problem(s) to fix before launch")
    table.add_column("tab")
    table.add_column("field")
    table.add_column("rule")
    table.add_column("problem", overflow="fold")
    for issue in issues:
        table.add_row(issue.tab.value, issue.field, issue.code, issue.message)
    console.print(table)
    return EXIT_FAILED
