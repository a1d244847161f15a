"""`lcc validate FILE [--json]`: 0 valid, 1 invalid, 2 unreadable input."""

from __future__ import annotations

import argparse

from rich.text import Text

from core.fixture import load_fixture
from core.validation import issues_by_tab, validate_fixture
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
        console.print(Text.assemble(("✓ ", "green"), f"{name}: ready to launch"))
        return EXIT_OK
    count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
    console.print(Text.assemble(("✗ ", "bold red"), f"{name}: {count} to fix before launch"))
    for tab, on_tab in issues_by_tab(issues):
        console.print()
        console.print(Text(f"{tab.label} ({len(on_tab)})", style="bold underline"))
        for issue in on_tab:
            # literal Text throughout: a message quotes the operator's own words, never markup
            console.print(Text.assemble("  ", (issue.field, "cyan"), "  ", (issue.code, "dim")))
            console.print(Text(f"    {issue.message}"))
    return EXIT_FAILED
