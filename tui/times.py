"""Times as the console shows them: `2026-12-24 20:00 JST`, the zone said by its name.

One form for every screen, so that a campaign's schedule, its finish, a report's sends and a
conversion job's runs read alike (ISO offsets such as `+09:00` are for files, not operators).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.clock import JST

REPORT_ZONE: tzinfo = JST
"""Where a time has no zone of its own (a campaign's finish, a report's sends): LINE's, whose
day its statistics count in, as `lcc report` prints them."""


def zone_label(moment: datetime) -> str:
    """JST, EST, UTC; a zone without a letter abbreviation as UTC+4 or UTC-3:30."""
    name = moment.strftime("%Z")
    if name and name[0].isalpha() and not (name.startswith("UTC") and len(name) > 3):
        return name
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def moment_text(moment: datetime | None, zone: tzinfo | None, *, short: bool = False) -> str:
    """`2026-12-02 03:15 JST` in `zone` (the moment's own when None); `12-02 03:15 JST` when
    short; `—` for no time."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone) if zone is not None else moment
    stamp = f"{local:%m-%d %H:%M}" if short else f"{local:%Y-%m-%d %H:%M}"
    return f"{stamp} {zone_label(local)}"


def in_zone(moment: datetime, zone_name: str | None) -> datetime:
    """`moment` in the IANA zone `zone_name` (a campaign's schedule zone); as it is when the
    zone is unset or unknown here (validation reports an unknown zone)."""
    if zone_name:
        try:
            return moment.astimezone(ZoneInfo(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return moment
