"""Delivery-log rows (contract section 6) and the counts derived from them."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

COLUMNS = (
    "event",
    "time",
    "channel_type",
    "campaign_id",
    "line_channel_name",
    "line_user_id",
    "message_type",
    "status",
    "error_code",
    "is_test",
)
"""The contract's columns, in order; rows may carry more after them."""


def hash_user_id(line_user_id: str | None) -> str:
    """Lowercase hex SHA-256 of a LINE user id; empty when there was none."""
    if not line_user_id:
        return ""
    return hashlib.sha256(line_user_id.encode("utf-8")).hexdigest()


def make_row(
    *,
    time: int,
    campaign_id: str,
    channel_name: str,
    line_user_id: str | None,
    message_type: str,
    success: bool,
    error_code: str = "",
    is_test: bool = False,
    profile_id: str | None = None,
    message_index: int | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event": "delivery" if success else "error",
        "time": time,
        "channel_type": "LINE",
        "campaign_id": campaign_id,
        "line_channel_name": channel_name,
        "line_user_id": hash_user_id(line_user_id),
        "message_type": message_type,
        "status": "success" if success else "failed",
        "error_code": "" if success else error_code,
        "is_test": is_test,
        "profile_id": profile_id,
        "message_index": message_index,
        "request_id": request_id,
    }


@dataclass
class LogCounts:
    """Campaign figures from the log; test sends never count."""

    delivered: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rows: int = 0


def count_rows(rows: Iterable[Mapping[str, Any]]) -> LogCounts:
    """Profiles, not rows: a bundle of two messages to one profile counts once."""
    delivered: set[str] = set()
    failed: dict[str, str] = {}
    total = 0
    for row in rows:
        if row.get("is_test"):
            continue
        total += 1
        key = str(row.get("profile_id") or row.get("line_user_id"))
        if row.get("status") == "success":
            delivered.add(key)
        else:
            failed.setdefault(key, str(row.get("error_code") or "unknown"))
    return LogCounts(
        delivered=len(delivered),
        failed=len(failed),
        errors=Counter(failed.values()),
        rows=total,
    )
