"""LINE's `customAggregationUnits` name for a campaign.

Push and multicast statistics exist only per unit name, so every campaign sends with one. The
name is derived from the campaign (readable prefix, unique suffix), fixed at launch and stored with
the campaign: LINE cannot attach a unit to a message after it was sent.
"""

from __future__ import annotations

import re

UNIT_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,30}$")
UNIT_MAX = 30
MONTHLY_UNIT_CAP = 1000
"""Distinct unit names LINE assigns per calendar month; past it messages go out without one."""

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_]+")


def aggregation_unit(campaign_id: str, name: str) -> str:
    """`spring_sale_2026` + `cmp-0a1b2c3d4e5f` -> `spring_sale_2_0a1b2c3d4e5f` (at most 30)."""
    suffix = _NOT_ALLOWED.sub("", campaign_id.removeprefix("cmp-"))[-12:] or "campaign"
    room = UNIT_MAX - len(suffix) - 1
    slug = _NOT_ALLOWED.sub("_", name).strip("_")[:room].rstrip("_")
    unit = f"{slug}_{suffix}" if slug else suffix
    assert UNIT_PATTERN.match(unit), unit
    return unit
