"""LINE's statistics: nulls stay null, the hourly allowance holds across processes, unit budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from core.errors import InputError
from core.http import make_transport
from core.insights import (
    WITHHELD,
    BudgetExhausted,
    CallLedger,
    DeliveryCount,
    InsightRecord,
    InsightRepository,
    NothingToFetch,
    SendFacts,
    UnitBudget,
    campaign_period,
    fetch_insights,
    final_at,
    parse_unit_statistics,
    rate,
    reconcile,
    shown,
    unit_budget,
)
from core.line_client import LineApiError, LineClient
from core.models import Campaign, CampaignState, SenderAccount, Workspace
from core.store import Store

T0 = datetime.fromisoformat("2026-11-30T09:00:00+09:00")
LAST = int((T0 + timedelta(minutes=20)).timestamp())
API = "https://api.line.me"
TOKEN = "tok-3f9a0c-very-secret"
UNIT = "welcome_0123456789ab"
ACCOUNT = SenderAccount(
    id="acme_oa", name="Acme Official", channel_id="1656000001", token_env="ACME_LINE_TOKEN"
)
FACTS = SendFacts(
    delivered=40, first_send=int(T0.timestamp()), last_send=LAST, delivered_by_day={"20261130": 40}
)


@pytest.fixture
def store(data_dir: Path) -> Store:
    store = Store(data_dir)
    store.directory.save_workspace(Workspace(name="w"))
    store.directory.save_account(ACCOUNT)
    return store


def campaign(**changes: Any) -> Campaign:
    values: dict[str, Any] = {
        "id": "cmp-0123456789ab",
        "workspace": "w",
        "name": "welcome",
        "sender_account": "acme_oa",
        "state": CampaignState.FINISHED,
        "created_at": T0,
        "updated_at": T0,
        "launched_at": T0,
        "finished_at": T0 + timedelta(minutes=30),
        "aggregation_unit": UNIT,
    }
    values.update(changes)
    return Campaign(**values)


# --- nulls ------------------------------------------------------------------------------------


def test_withheld_figures_stay_none_and_read_fewer_than_20() -> None:
    stats = parse_unit_statistics(
        {
            "overview": {"uniqueImpression": None, "uniqueClick": 0},
            "messages": [{"seq": 1, "impression": None, "uniqueImpression": 21}],
            "clicks": [{"seq": 1, "url": "https://x.test/", "click": None, "uniqueClick": None}],
        },
        source="test",
    )
    assert stats.overview == {
        "uniqueImpression": None,
        "uniqueClick": 0,
        "uniqueMediaPlayed": None,  # absent from the answer: unknown, never 0
        "uniqueMediaPlayed100Percent": None,
    }
    assert stats.clicks[0]["url"] == "https://x.test/" and stats.clicks[0]["click"] is None
    assert shown(None) == WITHHELD == "fewer than 20"
    assert shown(0) == "0" and shown(1234) == "1,234"
    assert rate(None, 100) is None and rate(25, 100) == 0.25 and rate(25, 0) is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"overview": {"uniqueImpression": -1}}, "overview.uniqueImpression"),
        ({"overview": {"uniqueClick": "12"}}, "overview.uniqueClick"),
        ({"overview": {"uniqueClick": True}}, "overview.uniqueClick"),
        ({"overview": [], "messages": []}, "overview"),
        ({"overview": {}, "clicks": {}}, "clicks"),
        ([], "(top level)"),
    ],
)
def test_an_unreadable_answer_is_named(body: Any, where: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_unit_statistics(body, source="LINE")
    assert caught.value.location == where


def test_rates_are_null_when_line_withheld_the_numerator() -> None:
    record = InsightRecord(
        campaign_id="c",
        unit=UNIT,
        channel="ch",
        start=date(2026, 11, 30),
        end=date(2026, 11, 30),
        fetched_at=T0,
        final=True,
        final_at=T0,
        overview={"uniqueImpression": 30, "uniqueClick": None},
    )
    summary = record.summary(delivered=120)
    assert summary["open_rate"] == 0.25 and summary["click_rate"] is None
    assert summary["uniqueClick"] is None and summary["uniqueMediaPlayed"] is None


# --- the hourly allowance ---------------------------------------------------------------------


def test_sixty_calls_per_rolling_hour_across_two_stores(store: Store, data_dir: Path) -> None:
    mine, theirs = CallLedger(store), CallLedger(Store(data_dir))
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    for minute in range(30):
        mine.reserve("ch", start + timedelta(minutes=minute), "insight_unit_statistics")
    for second in range(30):
        theirs.reserve("ch", start + timedelta(minutes=30, seconds=second), "insight_deliveries")
    with pytest.raises(BudgetExhausted) as caught:
        mine.reserve("ch", start + timedelta(minutes=45), "insight_unit_statistics")
    assert caught.value.next_at == start + timedelta(hours=1), "when the oldest call leaves"
    assert "60" in str(caught.value) and "20:00:00 UTC+9" in str(caught.value)
    assert theirs.status("ch", start + timedelta(minutes=45)).remaining == 0
    CallLedger(store).reserve("other channel", start + timedelta(minutes=45), "insight")
    # an hour after the first call, one slot frees; two at once do not fit
    later = start + timedelta(hours=1, seconds=1)
    theirs.reserve("ch", later, "insight_unit_statistics")
    with pytest.raises(BudgetExhausted) as again:
        mine.reserve("ch", later, "insight_unit_statistics", count=2)
    assert again.value.next_at == start + timedelta(hours=1, minutes=2)


def test_processes_sharing_a_data_dir_never_exceed_sixty(data_dir: Path) -> None:
    Store(data_dir)  # create it
    go = time.time() + 2.0  # both start together, so their calls interleave
    script = textwrap.dedent(
        f"""
        import time
        from datetime import datetime, UTC
        from core.insights import BudgetExhausted, CallLedger
        from core.store import Store
        ledger = CallLedger(Store({str(data_dir)!r}))
        now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
        time.sleep(max(0.0, {go!r} - time.time()))
        made = 0
        for _ in range(45):
            try:
                ledger.reserve("ch", now, "insight_unit_statistics")
                made += 1
            except BudgetExhausted:
                pass
        print(made)
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    made = [int(p.communicate(timeout=120)[0]) for p in processes]
    assert sum(made) == 60 and all(p.returncode == 0 for p in processes)
    assert min(made) > 0, "both processes got calls in"
    status = CallLedger(Store(data_dir)).status("ch", datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert status.used == 60, "no process overwrote another's record"


# --- unit names this month --------------------------------------------------------------------


def test_unit_budget_counts_this_months_units_per_channel_in_utc_plus_9(store: Store) -> None:
    store.directory.save_account(SenderAccount(id="other_oa", name="Other", channel_id="99"))
    december = datetime.fromisoformat("2026-11-30T15:30:00+00:00")  # 00:30 on 1 Dec in UTC+9
    for number, (launched, account) in enumerate(
        [
            (december, "acme_oa"),
            (december + timedelta(days=3), "acme_oa"),
            (december + timedelta(days=4), "other_oa"),
            (december - timedelta(hours=1), "acme_oa"),  # 30 Nov in UTC+9
            (None, "acme_oa"),  # never launched
        ]
    ):
        store.campaigns.save(
            campaign(
                id=f"cmp-{number:012d}",
                sender_account=account,
                launched_at=launched,
                aggregation_unit=f"unit_{number}" if launched else None,
            )
        )
    now = datetime(2026, 12, 15, tzinfo=UTC)
    budget = unit_budget(store, now, warn_at=2, cap=3)
    assert budget.month == "2026-12"
    assert budget.ours == {"1656000001": 2, "99": 1}
    assert budget.used("1656000001") == 2 and budget.remaining("1656000001") == 1
    assert budget.warning("99") is None
    warning = budget.warning("1656000001")
    assert warning is not None and "2 of LINE's 3" in warning
    InsightRepository(store).save_unit_count("99", "2026-12", 3, now)
    budget = unit_budget(store, now, warn_at=2, cap=3)
    assert budget.used("99") == 3, "LINE's own count wins when it is higher"
    assert "without statistics" in (budget.warning("99") or "")
    assert budget.used() == 3 and budget.busiest == "99"
    assert unit_budget(store, datetime(2027, 1, 2, tzinfo=UTC)).ours == {}


def test_the_default_budget_warns_from_900() -> None:
    def at(used: int) -> UnitBudget:
        return UnitBudget("2026-12", 1000, 900, {"ch": used}, {})

    assert at(899).warning() is None
    assert "100 left" in (at(900).warning() or "")
    assert at(1000).remaining() == 0 and "all 1,000" in (at(1000).warning() or "")


# --- the period -------------------------------------------------------------------------------


def test_the_period_runs_from_launch_to_the_last_send_at_most_30_days() -> None:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    period = campaign_period(campaign(), FACTS, now)
    assert (period.start, period.end, period.truncated) == (date(2026, 11, 30),) * 2 + (False,)
    long = SendFacts(delivered=1, first_send=LAST, last_send=LAST + 40 * 86400)
    period = campaign_period(campaign(), long, now)
    assert period.end == date(2026, 12, 30) and period.truncated
    sending = campaign_period(campaign(state=CampaignState.ACTIVE), FACTS, T0 + timedelta(days=2))
    assert sending.end == date(2026, 12, 2), "today while the campaign still sends"
    with pytest.raises(NothingToFetch):
        campaign_period(campaign(launched_at=None), SendFacts(), now)


def test_statistics_are_final_14_days_after_the_last_send() -> None:
    assert final_at(campaign(), FACTS) == datetime.fromtimestamp(LAST, UTC) + timedelta(days=14)
    assert final_at(campaign(state=CampaignState.ACTIVE), FACTS) is None
    assert final_at(campaign(), SendFacts()) is None


# --- reconciliation ---------------------------------------------------------------------------


def count(source: str, status: str, value: int | None = None, day: str = "20261130") -> Any:
    return DeliveryCount("ch", day, source, status, value, T0)


def test_reconciliation_explains_the_difference() -> None:
    ready = reconcile(
        {"20261130": 40}, [count("push", "ready", 30), count("multicast", "ready", 500)]
    )
    assert ready[0].line_api == 530 and ready[0].status == "ready"
    assert ready[0].explanation.startswith("ours ≤ LINE's")
    fewer = reconcile(
        {"20261130": 45}, [count("push", "ready", 40), count("multicast", "ready", 0)]
    )
    assert "blocked" in fewer[0].explanation and "by 5" in fewer[0].explanation
    withheld = reconcile(
        {"20261130": 12},
        [count("push", "unavailable_for_privacy"), count("multicast", "ready", 0)],
    )
    assert withheld[0].line_api is None and withheld[0].line_api_max == 19
    assert "fits within" in withheld[0].explanation
    unready = reconcile({"20261130": 3}, [count("push", "unready"), count("multicast", "unready")])
    assert "next day" in unready[0].explanation
    insight = reconcile(
        {"20261130": 3},
        [count("push", "unready"), count("multicast", "unready"), count("insight", "ready", 7)],
    )
    assert insight[0].status == "ready" and insight[0].line_insight == 7
    assert reconcile({"20261130": 3}, [])[0].status == "not fetched"


# --- fetching from LINE (pytest-httpx, through the real client) -------------------------------


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LineClient]:
    monkeypatch.setenv("ACME_LINE_TOKEN", TOKEN)
    line = LineClient(
        API, token_env="ACME_LINE_TOKEN", channel="1656000001", transport=make_transport("httpx")
    )
    yield line
    await line.aclose()


AUTH = {"Authorization": f"Bearer {TOKEN}"}
AGGREGATION = (
    f"{API}/v2/bot/insight/message/event/aggregation"
    f"?customAggregationUnit={UNIT}&from=20261130&to=20261130"
)


def line_answers(httpx_mock: HTTPXMock, *, push_status: str = "ready") -> None:
    httpx_mock.add_response(
        url=AGGREGATION,
        match_headers=AUTH,
        json={
            "overview": {
                "uniqueImpression": 25,
                "uniqueClick": None,
                "uniqueMediaPlayed": None,
                "uniqueMediaPlayed100Percent": None,
            },
            "messages": [{"seq": 1, "impression": 31, "uniqueImpression": 25}],
            "clicks": [],
        },
    )
    push = (
        {"status": push_status, "success": 100}
        if push_status == "ready"
        else {"status": push_status}
    )
    httpx_mock.add_response(url=f"{API}/v2/bot/message/delivery/push?date=20261130", json=push)
    httpx_mock.add_response(
        url=f"{API}/v2/bot/message/delivery/multicast?date=20261130",
        json={"status": "unavailable_for_privacy"},
    )
    httpx_mock.add_response(
        url=f"{API}/v2/bot/insight/message/delivery?date=20261130",
        json={"status": "ready", "apiPush": 100, "apiMulticast": 3, "broadcast": 5000},
    )
    httpx_mock.add_response(
        url=f"{API}/v2/bot/message/aggregation/info", json={"numOfCustomAggregationUnits": 950}
    )


async def test_fetch_stores_statistics_day_counts_and_lines_unit_count(
    store: Store, client: LineClient, httpx_mock: HTTPXMock
) -> None:
    line_answers(httpx_mock)
    now = datetime(2026, 12, 20, tzinfo=UTC)
    outcome = await fetch_insights(store, campaign(), ACCOUNT, client, FACTS, now=now)
    record = outcome.record
    assert outcome.fetched and record.final, "more than 14 days after the last send"
    assert record.overview["uniqueImpression"] == 25 and record.overview["uniqueClick"] is None
    stored = InsightRepository(store).record("cmp-0123456789ab")
    assert stored is not None and stored.overview == record.overview
    assert stored.fetched_at == now
    summary = stored.summary(FACTS.delivered)
    assert summary["open_rate"] == 25 / 40 and summary["click_rate"] is None
    [day] = reconcile(FACTS.delivered_by_day, outcome.counts)
    assert day.line_api is None and day.line_api_max == 119 and day.line_insight == 103
    assert outcome.unit_count == 950
    assert unit_budget(store, now).warning("1656000001") is not None
    assert outcome.budget is not None and outcome.budget.used == 2, "unit + the Insight day count"

    # final: nothing more is asked of LINE, unless forced; settled day counts are never re-asked
    again = await fetch_insights(store, campaign(), ACCOUNT, client, FACTS, now=now)
    assert not again.fetched and len(httpx_mock.get_requests()) == 5
    httpx_mock.add_response(url=AGGREGATION, json={"overview": {}, "messages": [], "clicks": []})
    httpx_mock.add_response(
        url=f"{API}/v2/bot/message/aggregation/info", json={"numOfCustomAggregationUnits": 951}
    )
    forced = await fetch_insights(store, campaign(), ACCOUNT, client, FACTS, now=now, force=True)
    assert forced.fetched and forced.record.overview["uniqueImpression"] is None
    assert len(httpx_mock.get_requests()) == 7


async def test_a_fresh_fetch_is_not_final_and_todays_counts_cost_no_insight_call(
    store: Store, client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=AGGREGATION, json={"overview": {}, "messages": [], "clicks": []})
    for kind in ("push", "multicast"):
        httpx_mock.add_response(
            url=f"{API}/v2/bot/message/delivery/{kind}?date=20261130", json={"status": "unready"}
        )
    httpx_mock.add_response(
        url=f"{API}/v2/bot/message/aggregation/info", json={"numOfCustomAggregationUnits": 1}
    )
    now = T0 + timedelta(hours=2)
    outcome = await fetch_insights(store, campaign(), ACCOUNT, client, FACTS, now=now)
    assert not outcome.record.final and outcome.record.final_at is not None
    assert outcome.budget is not None and outcome.budget.used == 1
    assert all(r.url.path != "/v2/bot/insight/message/delivery" for r in httpx_mock.get_requests())


async def test_line_refusing_is_an_error_without_the_token(
    store: Store, client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=AGGREGATION,
        status_code=403,
        json={"message": "Access to this API is not available for your account"},
    )
    with pytest.raises(LineApiError) as caught:
        await fetch_insights(
            store, campaign(), ACCOUNT, client, FACTS, now=datetime(2026, 12, 20, tzinfo=UTC)
        )
    assert caught.value.status == 403 and TOKEN not in str(caught.value)
    assert "not available" in str(caught.value)
    assert InsightRepository(store).record("cmp-0123456789ab") is None
    assert CallLedger(store).status("1656000001", datetime(2026, 12, 20, tzinfo=UTC)).used == 1


async def test_an_exhausted_hour_refuses_before_calling(
    store: Store, client: LineClient, httpx_mock: HTTPXMock
) -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    CallLedger(store).reserve("1656000001", now - timedelta(minutes=10), "other", count=60)
    with pytest.raises(BudgetExhausted) as caught:
        await fetch_insights(store, campaign(), ACCOUNT, client, FACTS, now=now)
    assert caught.value.next_at == now + timedelta(minutes=50)
    assert httpx_mock.get_requests() == []


async def test_a_campaign_never_launched_has_nothing_to_fetch(
    store: Store, client: LineClient
) -> None:
    with pytest.raises(NothingToFetch):
        await fetch_insights(store, campaign(aggregation_unit=None), ACCOUNT, client, FACTS, now=T0)
