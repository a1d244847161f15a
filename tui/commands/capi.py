"""`lcc capi export`: arrives with issue 8; until then it says so and exits 2."""

from __future__ import annotations

import argparse

from tui.output import not_yet


def run(args: argparse.Namespace) -> int:
    return not_yet("lcc capi export", 8)
