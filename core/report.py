"""The campaign report: our delivery log, LINE's aggregate statistics and webhook events, joined.

LINE gives no per-user opens or clicks (seed 000), so the report keeps its three sources apart and
says where each figure comes from:

* the delivery log (ours): the audience funnel, delivered, failed, excluded, failures by error
  code, sends over time. Test sends never count. The log is streamed part by part, never loaded
  whole, so a million rows cost one pass and little memory.
* LINE's unit statistics (`core.insights`), when fetched: withheld figures stay null and read
  "fewer than 20"; rates use our delivered count as the denominator.
* webhook events (`core.webhook`): follow, unfollow and postback events from the campaign's own
  recipients in the 24 hours after their send, matched through the hashed user id.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from core.audience import Exclusion, funnel
from core.clock import JST
from core.compose import campaign_links, is_personalised
from core.delivery_log import count_rows
from core.insights import (
    OVERVIEW_FIELDS,
    WITHHELD,
    CallLedger,
    FetchOutcome,
    InsightClient,
    InsightRepository,
    ReconciliationDay,
    SendFacts,
    UnitBudget,
    channel_key,
    day_key,
    fetch_insights,
    rate,
    reconcile,
    unit_budget,
)
from core.models import Campaign, CampaignState, SenderAccount
from core.personalize import TemplateError
from core.store import Store
from core.webhook import WebhookEventStore

WEBHOOK_WINDOW_S = 24 * 3600
COUNTED_EVENTS = ("follow", "unfollow", "postback")
EXCLUSION_CODES = frozenset(e.value for e in Exclusion)
BUCKETS_S = (60, 300, 900, 3600, 6 * 3600, 86400)
"""Sends-over-time bucket widths; the report picks the narrowest that needs at most 48 rows."""
MAX_BUCKETS = 48

ERROR_MEANINGS = {
    "missing_recipient_id": "the profile has no LINE user id (excluded, not sent)",
    "invalid_recipient_id": "the LINE user id is not U + 32 hex digits (excluded, not sent)",
    "duplicate_recipient_id": "another profile has the same LINE user id (excluded, sent once)",
    "400": "LINE refused the request as invalid",
    "401": "LINE refused the channel access token",
    "403": "the channel may not use this endpoint (plan or permission)",
    "409": "the retry key was already used for a different request",
    "429": "LINE's rate or monthly limit, still refused after retries",
    "500": "LINE's server failed on every attempt",
    "timeout": "no answer from LINE on any attempt",
    "outcome_unknown": "LINE's outcome could not be learnt; an operator marked it failed",
}


def error_meaning(code: str) -> str:
    if code in ERROR_MEANINGS:
        return ERROR_MEANINGS[code]
    if code.isdigit() and code.startswith("5"):
        return "LINE's server failed on every attempt"
    if code.isdigit() and code.startswith("4"):
        return "LINE refused the request"
    return ""


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelFigures:
    """segment -> with a LINE user id -> a valid id -> unique -> delivered."""

    segment: int
    with_id: int
    valid: int
    unique: int
    delivered: int
    source: str
    """`log` once the campaign finished (what happened), else `segment` (what will)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "with_line_user_id": self.with_id,
            "valid": self.valid,
            "unique": self.unique,
            "delivered": self.delivered,
            "source": self.source,
        }


@dataclass(frozen=True)
class TimeBucket:
    start: datetime
    delivered: int
    failed: int
    excluded: int

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "delivered": self.delivered,
            "failed": self.failed,
            "excluded": self.excluded,
        }


@dataclass(frozen=True)
class Timeline:
    bucket_s: int
    buckets: list[TimeBucket]

    @property
    def unit(self) -> str:
        return {60: "minute", 300: "5 minutes", 900: "15 minutes", 3600: "hour"}.get(
            self.bucket_s, f"{self.bucket_s // 3600} hours" if self.bucket_s < 86400 else "day"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket_seconds": self.bucket_s,
            "timezone": "UTC+9",
            "buckets": [b.to_json() for b in self.buckets],
        }


@dataclass(frozen=True)
class WebhookFigures:
    follow: int
    unfollow: int
    postback: int
    unfollowers: int
    block_rate: float | None
    """Recipients who blocked the account within 24 hours of their send, over our delivered."""
    events_considered: int

    def to_json(self) -> dict[str, Any]:
        return {
            "follow": self.follow,
            "unfollow": self.unfollow,
            "postback": self.postback,
            "unfollowers": self.unfollowers,
            "block_rate": self.block_rate,
            "window_hours": WEBHOOK_WINDOW_S // 3600,
        }


@dataclass
class CampaignReport:
    campaign_id: str
    name: str
    state: CampaignState
    account: str | None
    channel: str | None
    unit: str | None
    launched_at: datetime | None
    finished_at: datetime | None
    generated_at: datetime
    audience: int
    excluded: int
    delivered: int
    failed: int
    errors: dict[str, int]
    test_sends: int
    funnel: FunnelFigures
    first_send: datetime | None
    last_send: datetime | None
    timeline: Timeline
    delivered_by_day: dict[str, int]
    links: list[dict[str, Any]]
    insights: dict[str, Any] | None
    reconciliation: list[ReconciliationDay]
    webhook: WebhookFigures
    units: UnitBudget
    insight_calls: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Profiles of the audience without an outcome yet (a campaign still sending)."""
        return max(0, self.audience - self.delivered - self.failed)

    def facts(self) -> SendFacts:
        return SendFacts(
            delivered=self.delivered,
            first_send=int(self.first_send.timestamp()) if self.first_send else None,
            last_send=int(self.last_send.timestamp()) if self.last_send else None,
            delivered_by_day=dict(self.delivered_by_day),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "state": self.state.value,
            "audience": self.audience,
            "excluded": self.excluded,
            "delivered": self.delivered,
            "failed": self.failed,
            "pending": self.pending,
            "errors": dict(self.errors),
            "test_sends": self.test_sends,
            "links": self.links,
            "insights": self.insights,
            "webhook": self.webhook.to_json(),
            "account": self.account,
            "unit": self.unit,
            "launched_at": _iso(self.launched_at),
            "finished_at": _iso(self.finished_at),
            "generated_at": _iso(self.generated_at),
            "first_send": _iso(self.first_send),
            "last_send": _iso(self.last_send),
            "funnel": self.funnel.to_json(),
            "timeline": self.timeline.to_json(),
            "delivered_by_day": self.delivered_by_day,
            "reconciliation": [day.to_json() for day in self.reconciliation],
            "unit_budget": self.units.to_json(self.channel),
            "insight_calls": self.insight_calls,
            "notes": self.notes,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- building it ------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What one pass over the log collects besides `count_rows`' figures."""

    minutes: Counter[tuple[int, str]] = field(default_factory=Counter)
    delivered_by_day: Counter[str] = field(default_factory=Counter)
    first: int | None = None
    last: int | None = None
    test_sends: int = 0
    matched: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Webhook event id -> (type, user hash) for events matched to a recipient's send."""


def _scan(
    rows: Iterable[dict[str, Any]],
    scan: _Scan,
    events_by_user: Mapping[str, list[tuple[int, str, str]]],
) -> Iterator[dict[str, Any]]:
    """Pass every row through to `count_rows`, collecting the report's other figures."""
    window_ms = (WEBHOOK_WINDOW_S + 1) * 1000
    minutes = scan.minutes
    first = last = None
    for row in rows:
        yield row
        index = row.get("message_index")
        if index is not None and index != 0:
            continue  # one row per profile: a bundle of two messages is one send
        if row.get("is_test"):
            scan.test_sends += 1
            continue
        stamp = row.get("time")
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            continue
        moment = int(stamp)
        if first is None or moment < first:
            first = moment
        if last is None or moment > last:
            last = moment
        if row.get("status") != "success":
            failure = "excluded" if row.get("error_code") in EXCLUSION_CODES else "failed"
            minutes[(moment - moment % 60, failure)] += 1
            continue
        minutes[(moment - moment % 60, "delivered")] += 1
        user = row.get("line_user_id")
        if user and user in events_by_user:
            sent_ms = moment * 1000
            for event_ms, kind, event_id in events_by_user[user]:
                if 0 <= event_ms - sent_ms <= window_ms:
                    scan.matched[event_id] = (kind, user)
    scan.first, scan.last = first, last
    for (minute, outcome), number in minutes.items():
        if outcome == "delivered":  # UTC+9 days are whole minutes, so minutes tell the day
            scan.delivered_by_day[day_key(datetime.fromtimestamp(minute, JST).date())] += number


def _events_by_user(
    store: Store, campaign: Campaign, now: datetime
) -> tuple[dict[str, list[tuple[int, str, str]]], int]:
    """Follow, unfollow and postback events that could fall within 24 h of one of its sends."""
    start = campaign.launched_at or campaign.created_at
    end = (campaign.finished_at or now) + timedelta(seconds=WEBHOOK_WINDOW_S + 1)
    by_user: dict[str, list[tuple[int, str, str]]] = {}
    considered = 0
    for doc in WebhookEventStore(store).events_between(start - timedelta(minutes=1), end):
        if doc.get("type") not in COUNTED_EVENTS or not doc.get("user_hash"):
            continue
        if doc.get("account") not in (None, campaign.sender_account):
            continue
        considered += 1
        by_user.setdefault(doc["user_hash"], []).append(
            (int(doc["timestamp"]), str(doc["type"]), str(doc["webhook_event_id"]))
        )
    return by_user, considered


def _timeline(minutes: Counter[tuple[int, str]]) -> Timeline:
    if not minutes:
        return Timeline(60, [])
    times = [minute for minute, _ in minutes]
    first, last = min(times), max(times)
    width = next(
        (
            w
            for w in BUCKETS_S
            if _bucket_start(last, w) - _bucket_start(first, w) < MAX_BUCKETS * w
        ),
        BUCKETS_S[-1],
    )
    counts: dict[int, Counter[str]] = {}
    for (minute, outcome), number in minutes.items():
        counts.setdefault(_bucket_start(minute, width), Counter())[outcome] += number
    buckets = []
    start = _bucket_start(first, width)
    while start <= last:
        got = counts.get(start, Counter())
        buckets.append(
            TimeBucket(
                datetime.fromtimestamp(start, JST),
                got["delivered"],
                got["failed"],
                got["excluded"],
            )
        )
        start += width
    return Timeline(width, buckets)


def _bucket_start(moment: int, width: int) -> int:
    """Bucket boundaries fall on UTC+9 clock times (a day bucket starts at 00:00 UTC+9)."""
    offset = 9 * 3600
    return (moment + offset) - (moment + offset) % width - offset


def _funnel(
    store: Store, campaign: Campaign, delivered: int, failed: int, errors: Counter[str]
) -> FunnelFigures:
    if campaign.state is CampaignState.FINISHED or campaign.audience is None:
        audience = delivered + failed
        with_id = audience - errors[Exclusion.MISSING.value]
        valid = with_id - errors[Exclusion.INVALID.value]
        unique = valid - errors[Exclusion.DUPLICATE.value]
        return FunnelFigures(audience, with_id, valid, unique, delivered, "log")
    segment = store.directory.segment(campaign.audience.parent_segment, campaign.audience.segment)
    if segment is None:
        audience = delivered + failed
        return FunnelFigures(audience, audience, audience, audience, delivered, "log")
    reach = funnel(segment)
    return FunnelFigures(
        reach.segment, reach.with_id, reach.valid, reach.unique, delivered, "segment"
    )


def _links(
    campaign: Campaign, clicks: list[dict[str, Any]], notes: list[str]
) -> list[dict[str, Any]]:
    try:
        refs = campaign_links(campaign)
    except TemplateError as exc:
        notes.append(f"links could not be listed: a template does not render ({exc})")
        return []
    by_url: dict[str, dict[str, Any]] = {}
    by_place: dict[tuple[Any, str], dict[str, Any]] = {}
    for item in clicks:
        url = item.get("url")
        if isinstance(url, str):
            by_url.setdefault(url, item)
            by_place.setdefault((item.get("seq"), url), item)
    links = []
    for ref in refs:
        # LINE numbers bubbles from 1; the same URL in two bubbles has two entries
        line = by_place.get((ref.message + 1, ref.url)) or by_url.get(ref.url)
        links.append(
            {
                "url": ref.url,
                "message": ref.message,
                "where": ref.where,
                "original": ref.original,
                "click": line.get("click") if line else None,
                "uniqueClick": line.get("uniqueClick") if line else None,
                "in_line_statistics": line is not None,
            }
        )
    if refs and is_personalised(campaign):
        notes.append(
            "links are shown as the blank profile receives them; personalised parts may differ "
            "per recipient"
        )
    return links


def build_report(store: Store, campaign_id: str, *, now: datetime | None = None) -> CampaignReport:
    """The whole report from what is stored; raises `NotFound` for an unknown campaign."""
    now = now or datetime.now(UTC)
    campaign = store.campaigns.get(campaign_id)
    account = store.directory.account(campaign.sender_account) if campaign.sender_account else None
    channel = channel_key(account) if account else None
    events_by_user, considered = _events_by_user(store, campaign, now)
    scan = _Scan()
    counts = count_rows(_scan(store.delivery_log(campaign_id).rows(), scan, events_by_user))
    errors = Counter({code: n for code, n in counts.errors.items() if n})
    excluded = sum(n for code, n in errors.items() if code in EXCLUSION_CODES)
    figures = _funnel(store, campaign, counts.delivered, counts.failed, errors)
    kinds = Counter(kind for kind, _ in scan.matched.values())
    unfollowers = {user for kind, user in scan.matched.values() if kind == "unfollow"}
    units = unit_budget(store, now)
    report = CampaignReport(
        campaign_id=campaign.id,
        name=campaign.name,
        state=campaign.state,
        account=campaign.sender_account,
        channel=channel,
        unit=campaign.aggregation_unit,
        launched_at=campaign.launched_at,
        finished_at=campaign.finished_at,
        generated_at=now,
        audience=figures.segment,
        excluded=excluded,
        delivered=counts.delivered,
        failed=counts.failed,
        errors=dict(errors.most_common()),
        test_sends=scan.test_sends,
        funnel=figures,
        first_send=datetime.fromtimestamp(scan.first, JST) if scan.first is not None else None,
        last_send=datetime.fromtimestamp(scan.last, JST) if scan.last is not None else None,
        timeline=_timeline(scan.minutes),
        delivered_by_day=dict(sorted(scan.delivered_by_day.items())),
        links=[],
        insights=None,
        reconciliation=[],
        webhook=WebhookFigures(
            follow=kinds["follow"],
            unfollow=kinds["unfollow"],
            postback=kinds["postback"],
            unfollowers=len(unfollowers),
            block_rate=rate(len(unfollowers), counts.delivered),
            events_considered=considered,
        ),
        units=units,
        insight_calls=None,
    )
    return _with_line_side(store, campaign, report, now, units)


def _with_line_side(
    store: Store,
    campaign: Campaign,
    report: CampaignReport,
    now: datetime,
    units: UnitBudget | None = None,
) -> CampaignReport:
    """The parts that come from LINE (statistics, day counts, budgets); no pass over the log."""
    repo = InsightRepository(store)
    record = repo.record(campaign.id)
    notes: list[str] = []
    channel = report.channel
    stored_counts = repo.counts(channel, report.delivered_by_day) if channel else []
    calls = CallLedger(store).status(channel, now) if channel else None
    units = units or unit_budget(store, now)
    report.links = _links(campaign, record.clicks if record else [], notes)
    report.insights = record.summary(report.delivered) if record else None
    report.reconciliation = (
        reconcile(report.delivered_by_day, stored_counts) if record or stored_counts else []
    )
    report.units = units
    report.insight_calls = (
        {"channel": calls.channel, "used_last_hour": calls.used, "limit": calls.limit}
        if calls
        else None
    )
    warning = units.warning(channel)
    if warning:
        notes.append(warning)
    if record is None and campaign.aggregation_unit:
        notes.append(not_fetched_note(campaign.id))
    if record is not None and not record.final:
        until = f" (until {record.final_at:%Y-%m-%d %H:%M} UTC)" if record.final_at else ""
        notes.append(
            f"LINE's statistics are not final: LINE updates them for 14 days after sending{until}"
        )
    report.notes = notes
    return report


def not_fetched_note(campaign_id: str) -> str:
    """The report's note while LINE's statistics of a launched campaign were never fetched."""
    return f"LINE's statistics were not fetched yet: lcc insights fetch {campaign_id}"


async def refresh_insights(
    store: Store,
    campaign_id: str,
    client: InsightClient,
    account: SenderAccount,
    *,
    now: datetime | None = None,
    force: bool = False,
) -> tuple[FetchOutcome, CampaignReport]:
    """`lcc insights fetch` and the console's action: fetch, store, and report afresh.

    The log is read once: LINE's side of the report is recomputed after the fetch.
    """
    now = now or datetime.now(UTC)
    report = build_report(store, campaign_id, now=now)
    campaign = store.campaigns.get(campaign_id)
    outcome = await fetch_insights(
        store, campaign, account, client, report.facts(), now=now, force=force
    )
    return outcome, _with_line_side(store, campaign, report, now)


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "key", "value", "detail")


def csv_rows(report: CampaignReport) -> Iterator[tuple[str, str, str, str]]:
    """The report as long-format rows: `section, key, value, detail`.

    One file a spreadsheet can filter by section. A LINE figure it withheld has an empty value
    and "fewer than 20" as its detail, never 0.
    """

    def value(number: float | int | None) -> str:
        if number is None:
            return ""
        if isinstance(number, float):
            return f"{number:.6f}"
        return str(number)

    for key in ("campaign_id", "name"):
        yield "summary", key, str(getattr(report, key)), ""
    yield "summary", "state", report.state.value, ""
    yield "summary", "unit", report.unit or "", ""
    for key in ("audience", "excluded", "delivered", "failed", "pending", "test_sends"):
        detail = "never counted in the figures" if key == "test_sends" else ""
        yield "summary", key, str(getattr(report, key)), detail
    for key, number in report.funnel.to_json().items():
        if key != "source":
            yield "funnel", key, str(number), report.funnel.source
    for code, number in report.errors.items():
        yield "errors", code, str(number), error_meaning(code)
    for bucket in report.timeline.buckets:
        stamp = bucket.start.isoformat()
        yield "timeline", stamp, str(bucket.delivered), "delivered"
        if bucket.failed:
            yield "timeline", stamp, str(bucket.failed), "failed"
        if bucket.excluded:
            yield "timeline", stamp, str(bucket.excluded), "excluded"
    for link in report.links:
        yield "links", f"message {link['message']} {link['where']}", link["url"], link["original"]
    if report.insights is not None:
        for key in (*OVERVIEW_FIELDS, "open_rate", "click_rate"):
            number = report.insights.get(key)
            yield "insights", key, value(number), WITHHELD if number is None else ""
        yield "insights", "fetched_at", str(report.insights["fetched_at"]), ""
        yield "insights", "final", "true" if report.insights["final"] else "false", ""
    for day in report.reconciliation:
        yield "reconciliation", f"{day.day} ours", str(day.ours), ""
        line = day.line_api if day.line_api is not None else day.line_insight
        yield "reconciliation", f"{day.day} line", value(line), day.explanation
        if day.line_api_max is not None:
            yield "reconciliation", f"{day.day} line_at_most", str(day.line_api_max), WITHHELD
    for key, number in report.webhook.to_json().items():
        yield "webhook", key, value(number), ""


def write_csv(report: CampaignReport, handle: IO[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))
