"""`lcc sandbox`: the HTTP sandbox server arrives with issue 4; until then it exits 2."""

from __future__ import annotations

import argparse

from tui.output import not_yet


def run(args: argparse.Namespace) -> int:
    return not_yet("lcc sandbox (the HTTP sandbox server)", 4)
