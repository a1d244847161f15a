"""The one form the console shows times in."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tui.times import REPORT_ZONE, in_zone, moment_text, zone_label

FINISHED = datetime(2026, 12, 3, 19, 5, 29, tzinfo=UTC)


def test_zone_labels() -> None:
    at = datetime(2026, 12, 1, 3, 0)
    assert zone_label(at.replace(tzinfo=ZoneInfo("Asia/Tokyo"))) == "JST"
    assert zone_label(at.replace(tzinfo=ZoneInfo("Asia/Dubai"))) == "UTC+4"
    assert zone_label(at.replace(tzinfo=ZoneInfo("Asia/Kolkata"))) == "IST"
    assert zone_label(at.replace(tzinfo=ZoneInfo("America/St_Johns"))) == "NST"
    assert zone_label(at.replace(tzinfo=UTC)) == "UTC"
    assert zone_label(FINISHED.astimezone(REPORT_ZONE)) == "UTC+9"


def test_moments_read_in_the_zone_asked_for() -> None:
    assert moment_text(FINISHED, None) == "2026-12-03 19:05 UTC"
    assert moment_text(FINISHED, REPORT_ZONE) == "2026-12-04 04:05 UTC+9"
    assert moment_text(FINISHED, ZoneInfo("Europe/London"), short=True) == "12-03 19:05 GMT"
    assert moment_text(None, REPORT_ZONE) == "—"


def test_a_schedule_reads_in_its_own_zone_or_as_stored() -> None:
    assert moment_text(in_zone(FINISHED, "Asia/Tokyo"), None) == "2026-12-04 04:05 JST"
    assert in_zone(FINISHED, "Mars/Olympus") == FINISHED
    assert in_zone(FINISHED, None) is FINISHED
