"""The campaign report: figures from the delivery log, LINE's statistics and webhook events."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.delivery_log import count_rows, hash_user_id, make_row
from core.errors import NotFound
from core.fixture import load_fixture
from core.insights import InsightRecord, InsightRepository
from core.models import (
    AudienceRef,
    Campaign,
    CampaignState,
    Profile,
    Segment,
    SenderAccount,
    TextV2Message,
    Workspace,
)
from core.replay import replay
from core.report import build_report, csv_rows, write_csv
from core.settings import Settings
from core.store import Store
from core.webhook import WebhookEventStore, import_file, prepare_event
from tests.conftest import FIXTURES

T0 = datetime.fromisoformat("2026-11-30T09:00:00+09:00")
BASE = int(T0.timestamp())
CID = "cmp-0123456789ab"
UNIT = "welcome_0123456789ab"


def user(n: int) -> str:
    return f"U{n:032x}"


@pytest.fixture
def store(data_dir: Path) -> Store:
    store = Store(data_dir)
    store.directory.save_workspace(Workspace(name="w"))
    store.directory.save_account(
        SenderAccount(id="acme_oa", name="Acme Official", channel_id="1656000001", workspaces=["w"])
    )
    return store


def save_campaign(store: Store, **changes: Any) -> Campaign:
    values: dict[str, Any] = {
        "id": CID,
        "workspace": "w",
        "name": "welcome",
        "sender_account": "acme_oa",
        "audience": AudienceRef(parent_segment="All", segment="New"),
        "messages": [
            TextV2Message(text="Hi! https://example.com/a"),
            TextV2Message(text="More at https://example.com/b?ref=x"),
        ],
        "state": CampaignState.FINISHED,
        "created_at": T0,
        "updated_at": T0,
        "launched_at": T0,
        "finished_at": T0 + timedelta(hours=1),
        "aggregation_unit": UNIT,
    }
    values.update(changes)
    campaign = Campaign(**values)
    store.campaigns.save(campaign)
    return campaign


def rows_for(
    n: int, *, at: int, success: bool = True, code: str = "", messages: int = 2, **extra: Any
) -> list[dict[str, Any]]:
    uid = None if code == "missing_recipient_id" else user(n)
    return [
        make_row(
            time=at,
            campaign_id=CID,
            channel_name="Acme Official",
            line_user_id=uid,
            message_type="textV2",
            success=success,
            error_code=code,
            profile_id=f"p-{n}",
            message_index=index,
            **extra,
        )
        for index in range(messages)
    ]


def test_the_welcome_fixture_replayed_then_reported(settings: Settings) -> None:
    loaded = load_fixture(FIXTURES / "welcome_text.json")
    result = asyncio.run(replay(loaded, settings))
    store = Store(settings.data_dir)
    report = build_report(store, result.campaign_id)
    document = report.to_json()
    assert {k: document[k] for k in ("name", "state", "audience", "excluded", "delivered")} == {
        "name": "welcome_friends",
        "state": "Finished",
        "audience": 3,
        "excluded": 1,
        "delivered": 2,
    }
    assert document["failed"] == 1 and document["errors"] == {"missing_recipient_id": 1}
    assert document["insights"] is None
    assert document["webhook"]["follow"] == 0 and document["webhook"]["unfollow"] == 0
    [link] = document["links"]
    assert link["message"] == 0 and link["where"] == "text"
    assert link["url"].startswith("https://example.com/spring?utm_source=line&utm_medium=social")
    assert "utm_campaign=welcome_friends" in link["url"]
    assert document["funnel"] == {
        "segment": 3,
        "with_line_user_id": 2,
        "valid": 2,
        "unique": 2,
        "delivered": 2,
        "source": "log",
    }
    assert sum(b["delivered"] for b in document["timeline"]["buckets"]) == 2
    assert document["delivered_by_day"] == {"20261130": 2}

    # the day's webhook events, matched to the recipients through the hashed user id
    import_file(store, FIXTURES / "webhooks" / "welcome_friends_day.jsonl")
    webhook = build_report(store, result.campaign_id).to_json()["webhook"]
    assert webhook == {
        "follow": 1,
        "unfollow": 1,
        "postback": 1,
        "unfollowers": 1,
        "block_rate": 0.5,
        "window_hours": 24,
    }, "the stranger, the message event and the unfollow a day later are not counted"


def test_figures_count_profiles_and_never_test_sends(store: Store) -> None:
    save_campaign(store)
    log = store.delivery_log(CID)
    rows = rows_for(1, at=BASE) + rows_for(2, at=BASE + 5)
    rows += rows_for(3, at=BASE + 70, success=False, code="400")
    rows += rows_for(4, at=BASE + 70, success=False, code="missing_recipient_id")
    rows += rows_for(5, at=BASE + 80, success=False, code="duplicate_recipient_id")
    rows += rows_for(9, at=BASE + 3, is_test=True)
    log.append(rows)
    report = build_report(store, CID)
    assert (report.audience, report.delivered, report.failed, report.excluded) == (5, 2, 3, 2)
    assert report.errors == {"400": 1, "missing_recipient_id": 1, "duplicate_recipient_id": 1}
    assert report.test_sends == 1
    counts = count_rows(log.rows())
    assert (counts.delivered, counts.failed) == (report.delivered, report.failed)
    funnel = report.funnel.to_json()
    assert (funnel["with_line_user_id"], funnel["valid"], funnel["unique"]) == (4, 4, 3)
    [first, second] = report.timeline.buckets
    assert report.timeline.bucket_s == 60
    assert (first.delivered, first.failed, first.excluded) == (2, 0, 0)
    assert (second.delivered, second.failed, second.excluded) == (0, 1, 2)
    assert first.start == T0


def test_an_unknown_campaign_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        build_report(store, "cmp-nope")


def test_the_timeline_picks_a_readable_bucket_and_days_in_utc_plus_9(store: Store) -> None:
    save_campaign(store)
    # 23:30 and 00:30 the next day in UTC+9, and three days later
    late = int(datetime.fromisoformat("2026-11-30T23:30:00+09:00").timestamp())
    rows = rows_for(1, at=late) + rows_for(2, at=late + 3600) + rows_for(3, at=late + 3 * 86400)
    store.delivery_log(CID).append(rows)
    report = build_report(store, CID)
    assert report.timeline.bucket_s == 6 * 3600
    assert report.timeline.buckets[0].start.isoformat() == "2026-11-30T18:00:00+09:00"
    assert len(report.timeline.buckets) <= 48
    assert sum(b.delivered for b in report.timeline.buckets) == 3
    assert report.delivered_by_day == {"20261130": 1, "20261201": 1, "20261203": 1}


def test_a_campaign_still_sending_shows_its_segment_and_what_is_pending(store: Store) -> None:
    profiles = [Profile(profile_id=f"p-{n}", line_user_id=user(n)) for n in range(1, 5)]
    profiles.append(Profile(profile_id="p-none", line_user_id=None))
    store.directory.save_segment(Segment(parent_segment="All", segment="New", profiles=profiles))
    save_campaign(store, state=CampaignState.ACTIVE, finished_at=None)
    store.delivery_log(CID).append(rows_for(1, at=BASE))
    report = build_report(store, CID)
    assert report.funnel.source == "segment"
    assert (report.audience, report.funnel.with_id, report.delivered, report.pending) == (
        5,
        4,
        1,
        4,
    )


def test_webhook_events_count_only_within_24_hours_of_each_recipients_send(store: Store) -> None:
    save_campaign(store)
    store.delivery_log(CID).append(
        rows_for(1, at=BASE) + rows_for(2, at=BASE + 3600) + rows_for(3, at=BASE, is_test=True)
    )
    ms = BASE * 1000

    def doc(number: int, kind: str, who: str, at_ms: int, account: str | None = None) -> Any:
        event = {
            "type": kind,
            "timestamp": at_ms,
            "source": {"type": "user", "userId": who},
            "webhookEventId": f"01EV{number:022d}",
        }
        return prepare_event(event, destination=None, account=account)

    WebhookEventStore(store).add(
        [
            doc(1, "unfollow", user(1), ms + 86_400_000),  # exactly 24 h: counted
            doc(2, "follow", user(2), ms + 1000),  # before user 2's own send: not counted
            doc(3, "postback", user(2), ms + 3_600_000 + 5),
            doc(4, "unfollow", user(2), ms + 3_600_000 + 86_401_000 + 1000),  # too late
            doc(5, "unfollow", user(3), ms + 10),  # a test-send recipient: not counted
            doc(6, "postback", user(1), ms + 20, account="another_oa"),  # another account's
            doc(7, "follow", user(1), ms + 30, account="acme_oa"),
            doc(8, "message", user(1), ms + 40),
        ]
    )
    webhook = build_report(store, CID).webhook
    assert (webhook.follow, webhook.unfollow, webhook.postback) == (1, 1, 1)
    assert webhook.unfollowers == 1 and webhook.block_rate == 0.5


def test_withheld_line_figures_stay_null_and_read_fewer_than_20(store: Store) -> None:
    save_campaign(store)
    store.delivery_log(CID).append([r for n in range(40) for r in rows_for(n, at=BASE + n)])
    InsightRepository(store).save_record(
        InsightRecord(
            campaign_id=CID,
            unit=UNIT,
            channel="1656000001",
            start=T0.date(),
            end=T0.date(),
            fetched_at=datetime(2026, 12, 1, tzinfo=UTC),
            final=False,
            final_at=T0 + timedelta(days=14),
            overview={
                "uniqueImpression": 25,
                "uniqueClick": None,
                "uniqueMediaPlayed": None,
                "uniqueMediaPlayed100Percent": None,
            },
            clicks=[{"seq": 2, "url": "https://example.com/b?ref=x&utm_source=line&utm_medium"
                     "=social&utm_campaign=welcome", "click": 31, "uniqueClick": 22,
                     "uniqueClickOfRequest": 22}],
        )
    )  # fmt: skip
    report = build_report(store, CID)
    insights = report.to_json()["insights"]
    assert insights["uniqueImpression"] == 25 and insights["open_rate"] == 25 / 40
    assert insights["uniqueClick"] is None and insights["click_rate"] is None
    assert insights["final"] is False
    assert orjson.loads(orjson.dumps(report.to_json()))["insights"]["uniqueClick"] is None
    [first, second] = report.links
    assert first["in_line_statistics"] is False and first["uniqueClick"] is None
    assert second["uniqueClick"] == 22
    table = list(csv.reader(io.StringIO("".join(",".join(r) + "\n" for r in csv_rows(report)))))
    click = next(r for r in table if r[0] == "insights" and r[1] == "uniqueClick")
    assert click[2] == "" and click[3] == "fewer than 20"
    assert any("not final" in note for note in report.notes)


def test_csv_export_has_a_header_and_every_section(store: Store) -> None:
    save_campaign(store)
    store.delivery_log(CID).append(
        rows_for(1, at=BASE) + rows_for(2, at=BASE, success=False, code="500")
    )
    handle = io.StringIO()
    write_csv(build_report(store, CID), handle)
    table = list(csv.reader(io.StringIO(handle.getvalue())))
    assert table[0] == ["section", "key", "value", "detail"]
    sections = {row[0] for row in table[1:]}
    assert {"summary", "funnel", "errors", "timeline", "links", "webhook"} <= sections
    assert ["summary", "delivered", "1", ""] in table
    assert ["errors", "500", "1", "LINE's server failed on every attempt"] in table
    assert all(len(row) == 4 for row in table)


def test_raw_user_ids_never_reach_the_report(store: Store) -> None:
    save_campaign(store)
    store.delivery_log(CID).append(rows_for(1, at=BASE))
    text = orjson.dumps(build_report(store, CID).to_json()).decode()
    assert user(1) not in text and hash_user_id(user(1)) not in text
