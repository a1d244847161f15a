"""What the sandbox remembers, and how it survives a restart of the process.

LINE remembers an accepted retry key for 24 hours and counts every message against the month;
a resumed campaign must meet the same memory, so the state can be saved to and loaded from one
JSON file in the data dir (`save`/`load`).
"""

from __future__ import annotations

import collections
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from core.errors import StoreCorrupt, StoreError
from core.ratelimit import RateLimiter
from core.sandbox.capi import CapiState
from core.sandbox.faults import FaultEngine, SandboxSpec
from core.sandbox.insight import UnitDelivery

RETRY_KEY_TTL_S = 24 * 3600
MONTHLY_UNIT_CAP = 1000
MAX_REQUEST_LOG = 100_000
"""The request log keeps the most recent requests only (a long `lcc sandbox` run stays small)."""
STATE_VERSION = 1

LINE_TZ = timezone(timedelta(hours=9))


@functools.lru_cache(maxsize=64)
def _calendar(minute: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(minute * 60, LINE_TZ)
    return moment.strftime("%Y%m%d"), moment.strftime("%Y%m")


def line_day(at: float) -> str:
    """`yyyyMMdd` in UTC+9, LINE's calendar for statistics and quotas."""
    return _calendar(int(at // 60))[0]


def line_month(at: float) -> str:
    """`yyyyMM` in UTC+9 (UTC+9 days start on a whole minute, so minutes are exact)."""
    return _calendar(int(at // 60))[1]


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=LINE_TZ).timestamp()


@dataclass
class AcceptedKey:
    at: float
    request_id: str
    sent_messages: list[dict[str, str]] | None
    """Push only: repeated in the 409 body."""


@dataclass
class SandboxState:
    """Per-recipient deliveries, requests received, accepted retry keys, quota usage, units.

    `clock` gives Unix seconds (retry-key expiry, months and days); tests inject their own.
    """

    spec: SandboxSpec = field(default_factory=SandboxSpec)
    clock: Callable[[], float] = time.time
    limiter: RateLimiter = field(default_factory=RateLimiter)
    enforce_rate_limits: bool = True
    accepted: dict[str, AcceptedKey] = field(default_factory=dict)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_REQUEST_LOG)
    )
    usage: dict[str, int] = field(default_factory=dict)
    """Messages counted per month (`yyyyMM`, UTC+9)."""
    daily: dict[str, dict[str, int]] = field(default_factory=dict)
    """Messages per day (`yyyyMMdd`, UTC+9) and kind (push, multicast)."""
    units: dict[str, list[str]] = field(default_factory=dict)
    """Aggregation unit names used per month, in first-use order."""
    capi: CapiState = field(default_factory=CapiState)
    request_count: int = 0
    faults: FaultEngine = field(init=False)
    _acceptances: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.faults = FaultEngine(self.spec)
        self.capi.faults = list(self.spec.faults)

    # --- configuration --------------------------------------------------------------------

    def set_spec(self, spec: SandboxSpec) -> None:
        """Replace the faults and quota at run time (counters such as fail_first restart)."""
        self.spec = spec
        self.faults = FaultEngine(spec)
        self.capi.faults = list(spec.faults)

    def reset(self) -> None:
        """Forget everything received and delivered; keep the faults and quota."""
        self.accepted.clear()
        self.deliveries.clear()
        self.requests.clear()
        self.usage.clear()
        self.daily.clear()
        self.units.clear()
        # In place: the Conversion API routes hold on to this very object.
        vars(self.capi).update(vars(CapiState(faults=list(self.spec.faults))))
        self.request_count = 0
        self.limiter.reset()
        self.faults = FaultEngine(self.spec)

    # --- retry keys -----------------------------------------------------------------------

    def accepted_key(self, key: str) -> AcceptedKey | None:
        """The earlier acceptance of `key`, if LINE would still remember it (24 hours)."""
        seen = self.accepted.get(key)
        if seen is None:
            return None
        if self.clock() - seen.at >= RETRY_KEY_TTL_S:
            del self.accepted[key]
            return None
        return seen

    def forget_expired_keys(self) -> None:
        horizon = self.clock() - RETRY_KEY_TTL_S
        for key in [key for key, seen in self.accepted.items() if seen.at <= horizon]:
            del self.accepted[key]

    # --- quota and units ------------------------------------------------------------------

    def month_usage(self) -> int:
        return self.usage.get(line_month(self.clock()), 0)

    def monthly_limit(self, endpoint: str) -> int | None:
        """Messages allowed this month before the monthly-limit 429, None when unlimited."""
        limits = [self.spec.monthly_quota, self.faults.monthly_cap(endpoint)]
        known = [limit for limit in limits if limit is not None]
        return min(known) if known else None

    def assign_unit(self, unit: str | None, now: float) -> str | None:
        """The unit a send gets: LINE assigns at most 1,000 distinct names per month."""
        if unit is None:
            return None
        names = self.units.setdefault(line_month(now), [])
        if unit in names:
            return unit
        if len(names) >= MONTHLY_UNIT_CAP:
            return None
        names.append(unit)
        return unit

    def units_this_month(self) -> int:
        return len(self.units.get(line_month(self.clock()), []))

    # --- deliveries -----------------------------------------------------------------------

    def record_acceptance(
        self,
        *,
        endpoint: str,
        recipients: list[str],
        messages: list[dict[str, Any]],
        unit: str | None,
        retry_key: str | None,
        request_id: str,
        sent_messages: list[dict[str, str]] | None,
    ) -> None:
        """LINE took the request: remember its key, deliver, count the messages."""
        now = self.clock()
        if retry_key:
            self.accepted[retry_key] = AcceptedKey(now, request_id, sent_messages)
        assigned = self.assign_unit(unit, now)
        # one record shared by the request's recipients (nothing edits a record): a multicast
        # of 500 built 500 equal dicts, most of the sandbox's CPU in a bulk campaign
        record = {
            "at": now,
            "endpoint": endpoint,
            "request_id": request_id,
            "retry_key": retry_key,
            "unit": assigned,
            "messages": messages,
        }
        deliveries = self.deliveries
        for user in recipients:
            received = deliveries.get(user)
            if received is None:
                deliveries[user] = [record]
            else:
                received.append(record)
        month = line_month(now)
        self.usage[month] = self.usage.get(month, 0) + len(recipients)
        per_day = self.daily.setdefault(line_day(now), {})
        per_day[endpoint] = per_day.get(endpoint, 0) + len(recipients)
        self._acceptances += 1
        if self._acceptances % 10_000 == 0:
            self.forget_expired_keys()

    def delivery_counts(self) -> dict[str, int]:
        return {user: len(records) for user, records in self.deliveries.items()}

    def unit_deliveries(self, unit: str, start: date, end: date) -> list[UnitDelivery]:
        """Deliveries with `unit` on the UTC+9 days `start`..`end`, in the order they happened."""
        low, high = day_start(start), day_start(end + timedelta(days=1))
        found: list[tuple[float, UnitDelivery]] = []
        for user, records in self.deliveries.items():
            for record in records:
                if record["unit"] == unit and low <= record["at"] < high:
                    found.append((record["at"], UnitDelivery(user, record["messages"])))
        found.sort(key=lambda item: item[0])
        return [delivery for _, delivery in found]

    def log_request(self, entry: dict[str, Any]) -> None:
        self.request_count += 1
        entry["seq"] = self.request_count
        self.requests.append(entry)

    def summary(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "spec": self.spec.model_dump(mode="json"),
            "requests": self.request_count,
            "recipients": len(self.deliveries),
            "deliveries": sum(len(records) for records in self.deliveries.values()),
            "accepted_retry_keys": len(self.accepted),
            "month": line_month(now),
            "usage_this_month": self.month_usage(),
            "monthly_limit": self.monthly_limit("push"),
            "units_this_month": self.units_this_month(),
            "rate_limits": self.enforce_rate_limits,
            "capi_batches": len(self.capi.batches),
            "now": datetime.fromtimestamp(now, UTC).isoformat(),
        }

    # --- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        self.forget_expired_keys()
        return {
            "version": STATE_VERSION,
            "accepted": {
                key: [seen.at, seen.request_id, seen.sent_messages]
                for key, seen in self.accepted.items()
            },
            "deliveries": self.deliveries,
            "usage": self.usage,
            "daily": self.daily,
            "units": self.units,
            "requests": list(self.requests),
            "request_count": self.request_count,
        }

    def save(self, path: Path) -> None:
        """Write the whole state atomically (a crash leaves the old file or the new one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(orjson.dumps(self.to_json()))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StoreError(f"{path}: cannot save the sandbox state: {exc.strerror}") from None

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        spec: SandboxSpec | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SandboxState:
        """The state saved at `path`, or a fresh one when there is no file yet."""
        state = cls(spec=spec or SandboxSpec(), clock=clock)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return state
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the sandbox state: {exc.strerror}") from None
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"expected version {STATE_VERSION}")
            state.accepted = {
                str(key): AcceptedKey(float(at), str(request_id), sent)
                for key, (at, request_id, sent) in data["accepted"].items()
            }
            state.deliveries = {
                str(user): list(records) for user, records in data["deliveries"].items()
            }
            state.usage = {str(k): int(v) for k, v in data["usage"].items()}
            state.daily = {
                str(day): {str(k): int(v) for k, v in kinds.items()}
                for day, kinds in data["daily"].items()
            }
            state.units = {str(k): [str(u) for u in v] for k, v in data["units"].items()}
            state.requests.extend(data.get("requests", []))
            state.request_count = int(data.get("request_count", len(state.requests)))
        except (
            orjson.JSONDecodeError,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            ValidationError,
        ) as exc:
            raise StoreCorrupt(
                f"{path}: not a sandbox state file this version wrote ({exc}); "
                "it was left untouched"
            ) from None
        state.forget_expired_keys()
        return state
