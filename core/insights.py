"""LINE's aggregate statistics for a campaign, within LINE's hourly allowance, stored with time.

Facts this module is built on (reference section 4):

* Push and multicast statistics exist only per `customAggregationUnits` name:
  `GET /v2/bot/insight/message/event/aggregation?customAggregationUnit=&from=&to=`, days in
  UTC+9, `to` at most 30 days after `from`. The answer holds no sent or delivered count, so every
  rate uses our own delivered count as its denominator.
* A figure under 20 (or one whose unique users are under 20) is `null`. It stays `None` here and
  reads "fewer than 20", never 0.
* Statistics change for 14 days after sending; after that a fetch is final.
* Insight endpoints allow 60 requests per hour per channel. Separate `lcc` processes share one
  record of calls in the data dir (`insights.json`, table `calls`), so together they never go over.
* LINE assigns at most 1,000 unit names per calendar month; past that, messages go out without
  one (and without statistics). `unit_budget` counts them and warns before the cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from tinydb import Query
from tinydb.queries import QueryLike
from tinydb.table import Document, Table

from core.clock import JST
from core.errors import InputError, LccError
from core.models import Campaign, CampaignState, SenderAccount
from core.store import Store
from core.units import MONTHLY_UNIT_CAP

CALLS_PER_HOUR = 60
CALL_WINDOW_S = 3600.0
UPDATE_WINDOW = timedelta(days=14)
MAX_PERIOD_DAYS = 30
UNIT_WARN_AT = 900
OVERVIEW_FIELDS = (
    "uniqueImpression",
    "uniqueClick",
    "uniqueMediaPlayed",
    "uniqueMediaPlayed100Percent",
)
WITHHELD = "fewer than 20"
DB = "insights"
RETRIES_ON_TRANSIENT = 2
"""Extra requests the client makes before giving up on a 5xx or a timeout: LINE counts them."""


class InsightClient(Protocol):
    """What this module needs of `core.line_client.LineClient`."""

    channel: str

    async def unit_statistics(self, unit: str, start: date, end: date) -> dict[str, Any]: ...
    async def insight_deliveries(self, day: date) -> dict[str, Any]: ...
    async def delivery_count(self, kind: str, day: date) -> dict[str, Any]: ...
    async def aggregation_unit_count(self) -> int: ...


def line_day(moment: datetime) -> date:
    """The UTC+9 calendar day LINE files `moment` under."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JST).date()


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def channel_key(account: SenderAccount) -> str:
    """Limits and unit names are per LINE channel; an account without a channel id is its own."""
    return account.channel_id or account.id


def shown(value: int | None) -> str:
    """A LINE figure for people: withheld figures read "fewer than 20", never 0."""
    return WITHHELD if value is None else f"{value:,}"


def rate(numerator: int | None, delivered: int) -> float | None:
    """A share of our own delivered count; None when LINE withheld the numerator."""
    if numerator is None or delivered <= 0:
        return None
    return numerator / delivered


def insert_rows(table: Table, docs: Iterable[Mapping[str, Any]]) -> None:
    """Insert with document ids read from the file now; call it under the store's lock.

    TinyDB caches a table's next id per `Table` object, so after another process inserted into
    the same file its cached id is taken: `insert` raises and `insert_multiple` overwrites.
    """
    start = max((doc.doc_id for doc in table.all()), default=0) + 1
    table.insert_multiple(
        Document(dict(doc), doc_id=start + offset) for offset, doc in enumerate(docs)
    )


def upsert_row(table: Table, doc: Mapping[str, Any], condition: QueryLike) -> None:
    """Replace the document matching `condition`, or insert it; under the store's lock."""
    existing = table.get(condition)
    if isinstance(existing, Document):
        table.remove(doc_ids=[existing.doc_id])
        table.insert(Document(dict(doc), doc_id=existing.doc_id))
    else:
        insert_rows(table, [doc])


# --- the hourly allowance ---------------------------------------------------------------------


class BudgetExhausted(LccError):
    """LINE's 60 statistics requests per hour for a channel are used up; says when to retry."""

    def __init__(self, channel: str, used: int, limit: int, next_at: datetime) -> None:
        self.channel = channel
        self.used = used
        self.limit = limit
        self.next_at = next_at
        local = next_at.astimezone(JST)
        super().__init__(
            f"LINE allows {limit} statistics requests per hour for channel {channel}, and "
            f"{used} were made in the last hour (by this or another lcc on this data dir); "
            f"the next one is possible at {local:%Y-%m-%d %H:%M:%S} UTC+9 "
            f"({next_at.astimezone(UTC):%H:%M:%S} UTC)"
        )


@dataclass(frozen=True)
class CallBudget:
    channel: str
    used: int
    limit: int
    next_free_at: datetime | None
    """When a call becomes possible again; None while calls remain."""

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class CallLedger:
    """Insight requests per channel in the last hour, shared by every process on a data dir."""

    def __init__(
        self, store: Store, *, limit: int = CALLS_PER_HOUR, window_s: float = CALL_WINDOW_S
    ) -> None:
        self.store = store
        self.limit = limit
        self.window_s = window_s

    @property
    def _table(self) -> Table:
        return self.store.table(DB, "calls")

    def _recent(self, channel: str, now: datetime) -> list[float]:
        since = now.timestamp() - self.window_s
        docs = self._table.search((Query().channel == channel) & (Query().at > since))
        return sorted(float(doc["at"]) for doc in docs)

    def status(self, channel: str, now: datetime) -> CallBudget:
        times = self._recent(channel, now)
        return self._budget(channel, times, 0)

    def _budget(self, channel: str, times: list[float], wanted: int) -> CallBudget:
        used = len(times)
        free_at = None
        if used + max(wanted, 1) > self.limit:
            # the oldest call that must leave the window before `wanted` more fit
            index = used + max(wanted, 1) - self.limit - 1
            oldest = times[min(index, used - 1)] if used else 0.0
            free_at = datetime.fromtimestamp(oldest + self.window_s, UTC)
        return CallBudget(channel, used, self.limit, free_at)

    def reserve(self, channel: str, now: datetime, endpoint: str, count: int = 1) -> CallBudget:
        """Record `count` calls about to be made, or refuse with `BudgetExhausted`."""
        with self.store.transaction():
            times = self._recent(channel, now)
            if len(times) + count > self.limit:
                budget = self._budget(channel, times, count)
                assert budget.next_free_at is not None
                raise BudgetExhausted(channel, len(times), self.limit, budget.next_free_at)
            self._add(channel, now, endpoint, count)
            return CallBudget(channel, len(times) + count, self.limit, None)

    def record(self, channel: str, now: datetime, endpoint: str, count: int) -> None:
        """Calls made beyond a reservation (the client's retries): counted, never refused."""
        if count > 0:
            with self.store.transaction():
                self._add(channel, now, endpoint, count)

    def _add(self, channel: str, now: datetime, endpoint: str, count: int) -> None:
        table = self._table
        stale = now.timestamp() - self.window_s
        table.remove(Query().at <= stale)
        at = now.timestamp()
        insert_rows(table, [{"channel": channel, "endpoint": endpoint, "at": at}] * count)


# --- what LINE answers ------------------------------------------------------------------------


def _figure(value: Any, source: str, location: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(
            f"expected a count or null, got {value!r}", source=source, location=location
        )
    return value


def _figures(item: Any, source: str, location: str, keep: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InputError("expected an object", source=source, location=location)
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in keep:
            out[key] = value
        else:
            out[key] = _figure(value, source, f"{location}.{key}")
    return out


@dataclass(frozen=True)
class UnitStatistics:
    overview: dict[str, int | None]
    messages: list[dict[str, Any]]
    clicks: list[dict[str, Any]]


def parse_unit_statistics(body: Any, *, source: str) -> UnitStatistics:
    """Check LINE's answer; a missing overview figure counts as withheld (None), never 0."""
    if not isinstance(body, dict):
        raise InputError("expected a JSON object", source=source, location="(top level)")
    overview_raw = body.get("overview", {})
    overview = _figures(overview_raw, source, "overview")
    for name in OVERVIEW_FIELDS:
        overview.setdefault(name, None)
    lists: dict[str, list[dict[str, Any]]] = {}
    for name, keep in (("messages", ()), ("clicks", ("url",))):
        raw = body.get(name, [])
        if not isinstance(raw, list):
            raise InputError("expected an array", source=source, location=name)
        lists[name] = [
            _figures(item, source, f"{name}[{index}]", keep) for index, item in enumerate(raw)
        ]
    return UnitStatistics(overview, lists["messages"], lists["clicks"])


# --- stored records ---------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _parse_time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


@dataclass
class InsightRecord:
    """One fetch of a campaign's unit statistics, as stored."""

    campaign_id: str
    unit: str
    channel: str
    start: date
    end: date
    fetched_at: datetime
    final: bool
    final_at: datetime | None
    overview: dict[str, int | None]
    messages: list[dict[str, Any]] = field(default_factory=list)
    clicks: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    """The campaign sent over more than 30 days; only the first 30 are counted."""

    def to_doc(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "unit": self.unit,
            "channel": self.channel,
            "from": day_key(self.start),
            "to": day_key(self.end),
            "fetched_at": _iso(self.fetched_at),
            "final": self.final,
            "final_at": _iso(self.final_at),
            "overview": self.overview,
            "messages": self.messages,
            "clicks": self.clicks,
            "truncated": self.truncated,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> InsightRecord:
        fetched = _parse_time(doc["fetched_at"])
        assert fetched is not None
        return cls(
            campaign_id=doc["campaign_id"],
            unit=doc["unit"],
            channel=doc["channel"],
            start=date.fromisoformat(doc["from"]),
            end=date.fromisoformat(doc["to"]),
            fetched_at=fetched,
            final=bool(doc["final"]),
            final_at=_parse_time(doc.get("final_at")),
            overview=dict(doc["overview"]),
            messages=list(doc.get("messages", [])),
            clicks=list(doc.get("clicks", [])),
            truncated=bool(doc.get("truncated", False)),
        )

    def summary(self, delivered: int) -> dict[str, Any]:
        """The report's `insights` object: LINE's figures as they are, rates over our count."""
        out: dict[str, Any] = {"unit": self.unit}
        out.update({name: self.overview.get(name) for name in OVERVIEW_FIELDS})
        out.update(
            {
                "fetched_at": _iso(self.fetched_at),
                "from": self.start.isoformat(),
                "to": self.end.isoformat(),
                "final": self.final,
                "final_at": _iso(self.final_at),
                "truncated": self.truncated,
                "delivered": delivered,
                "open_rate": rate(self.overview.get("uniqueImpression"), delivered),
                "click_rate": rate(self.overview.get("uniqueClick"), delivered),
                "messages": self.messages,
                "clicks": self.clicks,
            }
        )
        return out


@dataclass(frozen=True)
class DeliveryCount:
    """LINE's own count of messages sent on a day, from one of its endpoints."""

    channel: str
    day: str
    source: str
    """`push`, `multicast` (`/v2/bot/message/delivery/*`) or `insight`
    (`/v2/bot/insight/message/delivery`, push plus multicast)."""
    status: str
    """`ready`, `unready`, `out_of_service`, `unavailable_for_privacy`, or `error`."""
    count: int | None
    fetched_at: datetime
    message: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "day": self.day,
            "source": self.source,
            "status": self.status,
            "count": self.count,
            "fetched_at": _iso(self.fetched_at),
            "message": self.message,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> DeliveryCount:
        fetched = _parse_time(doc["fetched_at"])
        assert fetched is not None
        return cls(
            channel=doc["channel"],
            day=doc["day"],
            source=doc["source"],
            status=doc["status"],
            count=doc.get("count"),
            fetched_at=fetched,
            message=doc.get("message"),
        )


def parse_delivery_count(body: Any, *, source: str) -> tuple[str, int | None]:
    """`{"status": "ready", "success": 10000}` -> ("ready", 10000)."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise InputError("expected an object with a 'status'", source=source, location="status")
    status = body["status"]
    count = _figure(body.get("success"), source, "success") if status == "ready" else None
    return status, count


def parse_insight_deliveries(body: Any, *, source: str) -> tuple[str, int | None]:
    """Push plus multicast API messages of the day from `/v2/bot/insight/message/delivery`."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise InputError("expected an object with a 'status'", source=source, location="status")
    status = body["status"]
    if status != "ready":
        return status, None
    parts = [_figure(body.get(key), source, key) for key in ("apiPush", "apiMulticast")]
    known = [part for part in parts if part is not None]
    return status, sum(known) if known else None


class InsightRepository:
    """`insights.json`: statistics per campaign, LINE's day counts, unit-name counts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _table(self, name: str) -> Table:
        return self.store.table(DB, name)

    def save_record(self, record: InsightRecord) -> None:
        with self.store.transaction():
            upsert_row(
                self._table("statistics"),
                record.to_doc(),
                Query().campaign_id == record.campaign_id,
            )

    def record(self, campaign_id: str) -> InsightRecord | None:
        doc = self._table("statistics").get(Query().campaign_id == campaign_id)
        return InsightRecord.from_doc(doc) if doc else None

    def save_counts(self, counts: Iterable[DeliveryCount]) -> None:
        counts = list(counts)
        if not counts:
            return
        with self.store.transaction():
            table = self._table("deliveries")
            for count in counts:
                query = (
                    (Query().channel == count.channel)
                    & (Query().day == count.day)
                    & (Query().source == count.source)
                )
                table.remove(query)
            insert_rows(table, [count.to_doc() for count in counts])

    def counts(self, channel: str, days: Iterable[str]) -> list[DeliveryCount]:
        wanted = set(days)
        docs = self._table("deliveries").search(
            (Query().channel == channel) & Query().day.test(lambda day: day in wanted)
        )
        return sorted(
            (DeliveryCount.from_doc(doc) for doc in docs), key=lambda c: (c.day, c.source)
        )

    def save_unit_count(self, channel: str, month: str, count: int, at: datetime) -> None:
        with self.store.transaction():
            upsert_row(
                self._table("unit_usage"),
                {"channel": channel, "month": month, "count": count, "at": _iso(at)},
                (Query().channel == channel) & (Query().month == month),
            )

    def unit_counts(self, month: str) -> dict[str, int]:
        docs = self._table("unit_usage").search(Query().month == month)
        return {doc["channel"]: int(doc["count"]) for doc in docs}


# --- unit names this month --------------------------------------------------------------------


@dataclass(frozen=True)
class UnitBudget:
    """Unit names used this calendar month (UTC+9) against LINE's 1,000 per channel."""

    month: str
    cap: int
    warn_at: int
    ours: dict[str, int]
    """Distinct unit names of campaigns launched this month, per channel."""
    line_reported: dict[str, int]
    """LINE's own count (`/v2/bot/message/aggregation/info`) when fetched this month."""

    def used(self, channel: str | None = None) -> int:
        """The larger of ours and LINE's: LINE also counts units other tools used."""
        if channel is not None:
            return max(self.ours.get(channel, 0), self.line_reported.get(channel, 0))
        channels = set(self.ours) | set(self.line_reported)
        return max((self.used(c) for c in channels), default=0)

    @property
    def busiest(self) -> str | None:
        channels = set(self.ours) | set(self.line_reported)
        return max(sorted(channels), key=self.used, default=None)

    def remaining(self, channel: str | None = None) -> int:
        return max(0, self.cap - self.used(channel))

    def warning(self, channel: str | None = None) -> str | None:
        used = self.used(channel)
        who = channel or self.busiest
        if used >= self.cap:
            return (
                f"channel {who} has used all {self.cap:,} aggregation unit names LINE allows in "
                f"{self.month}: further campaigns this month send without statistics"
            )
        if used >= self.warn_at:
            return (
                f"channel {who} has used {used:,} of LINE's {self.cap:,} aggregation unit names "
                f"in {self.month}; {self.cap - used:,} left before campaigns send without "
                "statistics"
            )
        return None

    def to_json(self, channel: str | None = None) -> dict[str, Any]:
        return {
            "month": self.month,
            "cap": self.cap,
            "warn_at": self.warn_at,
            "used": self.used(channel),
            "remaining": self.remaining(channel),
            "by_channel": {
                c: self.used(c) for c in sorted(set(self.ours) | set(self.line_reported))
            },
            "warning": self.warning(channel),
        }


def month_key(now: datetime) -> str:
    return line_day(now).strftime("%Y-%m")


def unit_budget(
    store: Store, now: datetime, *, warn_at: int = UNIT_WARN_AT, cap: int = MONTHLY_UNIT_CAP
) -> UnitBudget:
    """Count unit names of campaigns launched this month (UTC+9), per channel.

    The console and launch call this before sending; `lcc insights fetch` also stores LINE's own
    count, which wins when it is higher (other tools on the same channel use names too).
    """
    month = month_key(now)
    accounts = {account.id: account for account in store.directory.accounts()}
    units: dict[str, set[str]] = {}
    for campaign in store.campaigns.all():
        if not campaign.aggregation_unit or campaign.launched_at is None:
            continue
        if month_key(campaign.launched_at) != month:
            continue
        account = accounts.get(campaign.sender_account or "")
        channel = channel_key(account) if account else (campaign.sender_account or "unknown")
        units.setdefault(channel, set()).add(campaign.aggregation_unit)
    ours = {channel: len(names) for channel, names in units.items()}
    reported = InsightRepository(store).unit_counts(month)
    return UnitBudget(month=month, cap=cap, warn_at=warn_at, ours=ours, line_reported=reported)


# --- fetching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendFacts:
    """What our delivery log says about a campaign's sends (test sends left out)."""

    delivered: int = 0
    first_send: int | None = None
    last_send: int | None = None
    """Unix seconds of the first and last outcome."""
    delivered_by_day: dict[str, int] = field(default_factory=dict)
    """Delivered profiles per UTC+9 day (`yyyymmdd`)."""


class NothingToFetch(LccError):
    """The campaign has no statistics to ask LINE for (never launched, no unit)."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    truncated: bool


def campaign_period(campaign: Campaign, facts: SendFacts, now: datetime) -> Period:
    """From the launch day to the last send day (today while sending), at most 30 days later."""
    today = line_day(now)
    if campaign.launched_at is not None:
        start = line_day(campaign.launched_at)
    elif facts.first_send is not None:
        start = line_day(datetime.fromtimestamp(facts.first_send, UTC))
    else:
        raise NothingToFetch(f"campaign {campaign.id} has not sent anything yet")
    sending = campaign.state in (CampaignState.ACTIVE, CampaignState.PLANNED)
    if facts.last_send is not None and not sending:
        end = line_day(datetime.fromtimestamp(facts.last_send, UTC))
    else:
        end = today
    end = max(start, min(end, today))
    latest = start + timedelta(days=MAX_PERIOD_DAYS)
    return Period(start, min(end, latest), end > latest)


def final_at(campaign: Campaign, facts: SendFacts) -> datetime | None:
    """When LINE stops updating the campaign's statistics: 14 days after its last send."""
    if campaign.state in (CampaignState.ACTIVE, CampaignState.PLANNED):
        return None
    if facts.last_send is None:
        return None
    return datetime.fromtimestamp(facts.last_send, UTC) + UPDATE_WINDOW


@dataclass
class FetchOutcome:
    record: InsightRecord
    fetched: bool
    """False when the stored record was already final and nothing was asked of LINE."""
    counts: list[DeliveryCount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budget: CallBudget | None = None
    unit_count: int | None = None


def _is_transient(exc: Exception) -> bool:
    error_class = getattr(exc, "error_class", None)
    return str(error_class) == "transient" and getattr(exc, "status", 0) != 429


async def fetch_insights(
    store: Store,
    campaign: Campaign,
    account: SenderAccount,
    client: InsightClient,
    facts: SendFacts,
    *,
    now: datetime,
    force: bool = False,
    with_reconciliation: bool = True,
) -> FetchOutcome:
    """Ask LINE for the campaign's unit statistics and day counts, store them, return them.

    Raises `BudgetExhausted` before calling when the hour's allowance is used up, and lets the
    client's `LineApiError` through when LINE refuses (the stored record stays as it was).
    """
    from core.line_client import LineApiError

    repo = InsightRepository(store)
    if not campaign.aggregation_unit:
        raise NothingToFetch(
            f"campaign {campaign.id} has no aggregation unit (it was never launched), so LINE "
            "has no statistics for it"
        )
    channel = channel_key(account)
    ledger = CallLedger(store)
    stored = repo.record(campaign.id)
    if stored is not None and stored.final and not force:
        return FetchOutcome(
            record=stored,
            fetched=False,
            notes=[
                f"statistics were final when fetched at {stored.fetched_at:%Y-%m-%d %H:%M} UTC; "
                "LINE no longer updates them (use --force to fetch again)"
            ],
            budget=ledger.status(channel, now),
        )
    period = campaign_period(campaign, facts, now)
    finishes = final_at(campaign, facts)
    budget = ledger.reserve(channel, now, "insight_unit_statistics")
    try:
        body = await client.unit_statistics(campaign.aggregation_unit, period.start, period.end)
    except LineApiError as exc:
        if _is_transient(exc):
            ledger.record(channel, now, "insight_unit_statistics", RETRIES_ON_TRANSIENT)
        raise
    statistics = parse_unit_statistics(
        body, source=f"LINE statistics of unit {campaign.aggregation_unit}"
    )
    record = InsightRecord(
        campaign_id=campaign.id,
        unit=campaign.aggregation_unit,
        channel=channel,
        start=period.start,
        end=period.end,
        fetched_at=now,
        final=finishes is not None and now >= finishes,
        final_at=finishes,
        overview=statistics.overview,
        messages=statistics.messages,
        clicks=statistics.clicks,
        truncated=period.truncated,
    )
    repo.save_record(record)
    outcome = FetchOutcome(record=record, fetched=True, budget=budget)
    if period.truncated:
        outcome.notes.append(
            f"LINE reads at most {MAX_PERIOD_DAYS} days per request: sends after "
            f"{period.end.isoformat()} are not in these figures"
        )
    if with_reconciliation:
        outcome.counts = await _fetch_counts(repo, ledger, client, channel, facts, now, outcome)
    try:
        outcome.unit_count = await client.aggregation_unit_count()
    except LineApiError as exc:
        outcome.notes.append(f"LINE's count of unit names is unavailable: {exc}")
    else:
        repo.save_unit_count(channel, month_key(now), outcome.unit_count, now)
    outcome.budget = ledger.status(channel, now)
    return outcome


SETTLED = ("ready", "out_of_service", "unavailable_for_privacy")
"""Day-count answers that no longer change once the day is over."""


async def _fetch_counts(
    repo: InsightRepository,
    ledger: CallLedger,
    client: InsightClient,
    channel: str,
    facts: SendFacts,
    now: datetime,
    outcome: FetchOutcome,
) -> list[DeliveryCount]:
    """LINE's own day counts for the days we delivered on; a ready count is never asked again."""
    from core.line_client import LineApiError

    days = sorted(facts.delivered_by_day)
    known = {(c.day, c.source): c for c in repo.counts(channel, days)}
    today = day_key(line_day(now))
    fresh: list[DeliveryCount] = []
    budget_note = False
    for day_text in days:
        day = date.fromisoformat(day_text)
        for source in ("push", "multicast", "insight"):
            seen = known.get((day_text, source))
            if seen is not None and seen.status in SETTLED and seen.day < today:
                continue
            if source == "insight":
                if day_text >= today:
                    continue  # never ready on the day itself: not worth one of the hour's 60
                try:
                    ledger.reserve(channel, now, "insight_deliveries")
                except BudgetExhausted as exc:
                    if not budget_note:
                        outcome.notes.append(f"LINE's insight day counts skipped: {exc}")
                        budget_note = True
                    continue
            label = f"LINE {source} count of {day.isoformat()}"
            try:
                if source == "insight":
                    status, count = parse_insight_deliveries(
                        await client.insight_deliveries(day), source=label
                    )
                else:
                    status, count = parse_delivery_count(
                        await client.delivery_count(source, day), source=label
                    )
            except LineApiError as exc:
                if source == "insight" and _is_transient(exc):
                    ledger.record(channel, now, "insight_deliveries", RETRIES_ON_TRANSIENT)
                fresh.append(DeliveryCount(channel, day_text, source, "error", None, now, str(exc)))
                continue
            except InputError as exc:
                fresh.append(
                    DeliveryCount(channel, day_text, source, "error", None, now, exc.describe())
                )
                continue
            fresh.append(DeliveryCount(channel, day_text, source, status, count, now))
    repo.save_counts(fresh)
    return repo.counts(channel, days)


# --- reconciliation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconciliationDay:
    day: str
    ours: int
    line_api: int | None
    """`/v2/bot/message/delivery/push` plus `/multicast` for the day, when both are ready."""
    line_api_max: int | None
    """When LINE withheld one of those (under 20), the most the day's count can be."""
    line_insight: int | None
    """`/v2/bot/insight/message/delivery` apiPush plus apiMulticast, when ready."""
    status: str
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "ours": self.ours,
            "line_push_multicast": self.line_api,
            "line_push_multicast_at_most": self.line_api_max,
            "line_insight": self.line_insight,
            "status": self.status,
            "explanation": self.explanation,
        }


PRIVACY_MAX = 19
"""The most a count LINE withholds for privacy can be."""


@dataclass(frozen=True)
class _Side:
    status: str
    count: int | None = None
    at_most: int | None = None
    message: str | None = None


def _combine(counts: list[DeliveryCount], sources: tuple[str, ...]) -> _Side:
    chosen = {c.source: c for c in counts if c.source in sources}
    if len(chosen) < len(sources):
        return _Side("not fetched")
    parts = list(chosen.values())
    for status in ("error", "unready", "out_of_service"):
        found = [c for c in parts if c.status == status]
        if found:
            return _Side(status, message=found[0].message)
    ready = sum(c.count or 0 for c in parts if c.status == "ready")
    withheld = sum(1 for c in parts if c.status == "unavailable_for_privacy")
    unknown = [c for c in parts if c.status not in ("ready", "unavailable_for_privacy")]
    if unknown:
        return _Side(unknown[0].status, message=unknown[0].message)
    if withheld:
        return _Side("unavailable_for_privacy", at_most=ready + PRIVACY_MAX * withheld)
    return _Side("ready", count=ready)


def reconcile(
    ours_by_day: Mapping[str, int], counts: Iterable[DeliveryCount]
) -> list[ReconciliationDay]:
    """Our delivered count per day beside LINE's, with the difference in words.

    LINE's figures count every push and multicast message of the account that day, so the only
    sound comparison is "ours <= LINE's". `/message/delivery/*` is preferred (it costs none of
    the hour's 60 Insight requests); the Insight day count stands in when it is not ready.
    """
    by_day: dict[str, list[DeliveryCount]] = {}
    for count in counts:
        by_day.setdefault(count.day, []).append(count)
    days: list[ReconciliationDay] = []
    for day in sorted(ours_by_day):
        ours = ours_by_day[day]
        found = by_day.get(day, [])
        api = _combine(found, ("push", "multicast"))
        insight = _combine(found, ("insight",))
        side = api
        if api.status not in ("ready", "unavailable_for_privacy") and insight.status == "ready":
            side = insight
        days.append(
            ReconciliationDay(
                day=day,
                ours=ours,
                line_api=api.count,
                line_api_max=api.at_most,
                line_insight=insight.count,
                status=side.status,
                explanation=_explain(ours, side, insight if side is api else api),
            )
        )
    return days


def _explain(ours: int, side: _Side, other: _Side) -> str:
    if side.status == "ready" and side.count is not None:
        line = side.count
        if ours <= line:
            return (
                "ours ≤ LINE's, as expected: LINE counts every push and multicast message the "
                "account sent that day, other campaigns, tests and tools included "
                f"({line - ours:,} more)"
            )
        return (
            f"ours exceeds LINE's by {ours - line:,}: LINE accepts messages to users who "
            "blocked the account or are not friends, but does not deliver or count them"
        )
    if side.status == "unavailable_for_privacy" and side.at_most is not None:
        if ours <= side.at_most:
            return (
                f"LINE withholds counts under 20; its count for the day is at most "
                f"{side.at_most:,}, which ours fits within"
            )
        return (
            f"LINE withholds counts under 20, so its count is at most {side.at_most:,}, below "
            f"ours by at least {ours - side.at_most:,}: users who blocked the account or are "
            "not friends are accepted but not delivered"
        )
    if side.status == "unready":
        return "LINE counts a day's messages the next day; fetch again tomorrow (UTC+9)"
    if side.status == "out_of_service":
        return "LINE has no count for days this old"
    if side.status == "not fetched":
        if other.status == "error" and other.message:
            return f"LINE's count is unavailable: {other.message}"
        return "LINE's count was not fetched yet (lcc insights fetch)"
    if side.message:
        return f"LINE's count is unavailable: {side.message}"
    return f"LINE's count is unavailable ({side.status})"
