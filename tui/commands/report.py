"""`lcc report`: arrives with issue 7; until then it says so and exits 2."""

from __future__ import annotations

import argparse

from tui.output import not_yet


def run(args: argparse.Namespace) -> int:
    return not_yet("lcc report", 7)
