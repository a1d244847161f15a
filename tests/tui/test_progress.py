"""Delivery progress on stderr for the headless commands."""

from __future__ import annotations

import io
import re

from rich.console import Console

from core.delivery import DeliveryProgress
from tui.progress import delivery_bars


def progress(sent: int, failed: int, total: int, *, final: bool = False) -> DeliveryProgress:
    return DeliveryProgress(
        sent=sent,
        failed=failed,
        remaining=total - sent - failed,
        rate=1234.0,
        eta_s=1.0,
        total=total,
        final=final,
    )


def test_without_a_terminal_each_campaign_gets_one_plain_line_when_it_ends() -> None:
    out = io.StringIO()
    with delivery_bars(Console(file=out, force_terminal=False, width=80)) as bars:
        update = bars.callback("cmp-0a1b2c3d4e5f", "[sale] winter")
        update(progress(10, 0, 3000))
        update(progress(2948, 52, 3000, final=True))
    assert out.getvalue() == (
        "[sale] winter (cmp-0a1b2c3d4e5f): 3,000/3,000 profiles, sent 2,948, failed 52\n"
    )


def test_on_a_narrow_terminal_the_name_gives_way_to_the_figures() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    with delivery_bars(console) as bars:
        update = bars.callback("cmp-0a1b2c3d4e5f", "[sale] winter_catalogue_2026_for_members")
        update(progress(2948, 52, 3000, final=True))
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n")
    last = [line for line in screen.splitlines() if line.strip()][-1]
    assert last.startswith("[sale] winter")  # a name, not markup
    assert "…" in last and "cmp-" not in last
    assert "3,000/3,000 sent 2,948 · failed 52 · 1,234/s" in last
    assert len(last.rstrip()) <= 80
