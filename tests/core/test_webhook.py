"""Webhook intake: signatures over raw bytes, privacy, once-only storage, batching, imports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from core.delivery_log import hash_user_id
from core.errors import InputError
from core.store import Store
from core.webhook import (
    WebhookEventStore,
    WebhookIngestor,
    create_webhook_app,
    import_file,
    line_signature,
    parse_body,
    partition_of,
    prepare_body,
    read_bodies,
    signature_matches,
)
from tests.conftest import FIXTURES

SECRET = b"8c570fa6dd201bb328f1c1eac23a96d8"
WEBHOOKS = FIXTURES / "webhooks"
USER_1 = "U4af4980629aaaaaaaaaaaaaaaaaaaaa1"
USER_2 = "U4af4980629aaaaaaaaaaaaaaaaaaaaa2"


@pytest.fixture
def store(data_dir: Path) -> Store:
    return Store(data_dir)


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def event(
    number: int, kind: str = "follow", user: str = USER_1, ts: int = 1795997400000
) -> dict[str, Any]:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": ts + number,
        "source": {"type": "user", "userId": user},
        "webhookEventId": f"01KB1W{number:020d}",
        "deliveryContext": {"isRedelivery": False},
    }


def body(*events: dict[str, Any]) -> bytes:
    return orjson.dumps({"destination": "U0123456789abcdef0123456789abcdef", "events": events})


# --- signatures -------------------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_of_the_raw_bytes() -> None:
    raw = (WEBHOOKS / "follow.json").read_bytes()
    assert line_signature(SECRET, raw) == sign(raw)
    assert signature_matches(SECRET, raw, sign(raw))
    assert not signature_matches(SECRET, raw, None)
    assert not signature_matches(SECRET, raw, "")
    assert not signature_matches(SECRET, raw, sign(raw, b"another secret"))
    tampered = raw.replace(b"isUnblocked", b"isUnblockeD")
    assert not signature_matches(SECRET, tampered, sign(raw))
    # re-serialising the JSON changes the bytes, so the check must use the bytes as received
    reserialised = json.dumps(json.loads(raw)).encode()
    assert not signature_matches(SECRET, reserialised, sign(raw))
    assert not signature_matches(SECRET, raw, "not base64 at all ✓")


# --- privacy and event documents --------------------------------------------------------------


def test_prepared_events_keep_everything_but_raw_user_ids() -> None:
    line = (WEBHOOKS / "welcome_friends_day.jsonl").read_bytes().splitlines()[4]
    docs = prepare_body(parse_body(line), account="acme_oa", received_at=1.0)
    [doc] = docs
    assert doc["webhook_event_id"] == "01KB1W0000MESSAGE00000000F"
    assert doc["type"] == "message" and doc["account"] == "acme_oa"
    assert doc["user_hash"] == hash_user_id(USER_1)
    stored = orjson.dumps(doc).decode()
    assert "U4af4980629" not in stored, "no raw user id anywhere, mentions included"
    assert doc["event"]["source"] == {"type": "user", "userIdHash": hash_user_id(USER_1)}
    mentionee = doc["event"]["message"]["mention"]["mentionees"][0]
    assert mentionee["userIdHash"] == hash_user_id(USER_2) and mentionee["index"] == 0
    assert doc["event"]["message"]["text"] == "@Kenji thanks!"


def test_an_event_without_an_id_gets_a_stable_one_that_ignores_redelivery() -> None:
    first = event(1)
    del first["webhookEventId"]
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    [a] = prepare_body(parse_body(body(first)))
    [b] = prepare_body(parse_body(body(again)))
    assert a["webhook_event_id"] == b["webhook_event_id"]
    assert a["webhook_event_id"].startswith("derived-")
    assert b["redelivery"] is True


def test_partitions_follow_the_event_time_in_utc_plus_9() -> None:
    assert partition_of(1795996800000) == "20261130"  # 09:00 JST
    assert partition_of(1795964399000) == "20261129"  # 23:59:59 JST the day before
    assert partition_of(None) == "undated"


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"{not json", None),
        (b"[]", "(top level)"),
        (b'{"destination": "x"}', "events"),
        (b'{"events": {"type": "follow"}}', "events"),
        (b'{"events": [1]}', "events[0]"),
        (b'{"events": [], "destination": 5}', "destination"),
    ],
)
def test_malformed_bodies_are_named(raw: bytes, where: str | None) -> None:
    with pytest.raises(InputError) as caught:
        parse_body(raw)
    assert caught.value.location == where


# --- storage ----------------------------------------------------------------------------------


def test_each_event_is_stored_once_across_writers(store: Store, data_dir: Path) -> None:
    docs = prepare_body(parse_body(body(event(1), event(2), event(1))))
    first = WebhookEventStore(store).add(docs)
    assert (first.stored, first.duplicates, first.writes) == (2, 1, 1)
    # another process on the same data dir knows nothing in memory: it reads what is on disk
    other = WebhookEventStore(Store(data_dir))
    again = other.add(prepare_body(parse_body(body(event(2), event(3)))))
    assert (again.stored, again.duplicates) == (1, 1)
    assert sorted(d["webhook_event_id"] for d in WebhookEventStore(store).iter_events()) == [
        f"01KB1W{n:020d}" for n in (1, 2, 3)
    ]


def test_many_small_parts_are_compacted_and_nothing_is_lost(store: Store) -> None:
    events = WebhookEventStore(store, compact_after=5)
    for n in range(23):
        events.add(prepare_body(parse_body(body(event(n)))))
    parts = list((store.data_dir / "webhook" / "20261130").glob("part-*.json"))
    assert len(parts) <= 5
    assert events.count() == 23
    assert events.add(prepare_body(parse_body(body(event(4))))).duplicates == 1


def test_compaction_leaves_large_parts_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.webhook.SMALL_PART_BYTES", 5000)
    events = WebhookEventStore(store, compact_after=3)
    events.add(prepare_body(parse_body(body(*(event(n) for n in range(100))))))
    folder = store.data_dir / "webhook" / "20261130"
    [large] = folder.glob("part-*.json")
    for n in range(100, 110):
        events.add(prepare_body(parse_body(body(event(n)))))
    parts = sorted(folder.glob("part-*.json"))
    assert large in parts and len(parts) <= 3
    assert events.count() == 110


def test_the_ingestor_batches_writes_and_flushes_on_close(store: Store) -> None:
    events = WebhookEventStore(store)
    ingestor = WebhookIngestor(events, flush_interval=30.0, max_batch=10_000)
    ingestor.start()
    for n in range(3000):
        ingestor.submit(prepare_body(parse_body(body(event(n)))))
    ingestor.close()
    assert ingestor.stats.received == 3000 and ingestor.stats.stored == 3000
    assert ingestor.stats.writes == 1, "one file write for the whole burst"
    assert ingestor.pending == 0
    assert events.count() == 3000


# --- the HTTP app -----------------------------------------------------------------------------


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (the background writer) running, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook.test") as client:
            yield client


async def post(
    client: httpx.AsyncClient, raw: bytes, signature: str | None, header: str = "x-line-signature"
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[header] = signature
    return await client.post("/webhook", content=raw, headers=headers)


async def test_the_app_checks_signatures_and_stores_each_event_once(store: Store) -> None:
    app = create_webhook_app(store, SECRET, flush_interval=0.05)
    follow = (WEBHOOKS / "follow.json").read_bytes()
    async with running(app) as client:
        assert (await post(client, follow, None)).status_code == 401
        assert (await post(client, follow, sign(follow, b"wrong"))).status_code == 401
        tampered = follow.replace(b"true", b"false")
        assert (await post(client, tampered, sign(follow))).status_code == 401
        assert (
            await post(client, follow, sign(follow), header="X-Line-Signature")
        ).status_code == 200
        assert (
            await post(client, follow, sign(follow), header="X-LINE-SIGNATURE")
        ).status_code == 200
        empty = (WEBHOOKS / "connectivity_check.json").read_bytes()
        assert (await post(client, empty, sign(empty))).status_code == 200
        unknown = (WEBHOOKS / "unknown_type.json").read_bytes()
        assert (await post(client, unknown, sign(unknown))).status_code == 200
        for bad in (b"{oops", b'{"events": 3}', b"", b"\xff\xfe"):
            answer = await post(client, bad, sign(bad))
            assert answer.status_code == 400, bad
            assert "message" in answer.json()
        assert (await client.get("/healthz")).status_code == 200
    docs = list(WebhookEventStore(store).iter_events())
    assert sorted(d["type"] for d in docs) == ["follow", "membershipRenewedSomeday"]
    unknown_doc = next(d for d in docs if d["type"] != "follow")
    assert unknown_doc["event"]["membershipRenewedSomeday"] == {"plan": "gold"}
    assert app.state.ingestor.stats.duplicates == 1


async def test_an_oversized_body_is_refused_before_it_is_read_whole(store: Store) -> None:
    app = create_webhook_app(store, SECRET)
    huge = b'{"events": [], "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    async with running(app) as client:
        assert (await post(client, huge, sign(huge))).status_code == 413


async def test_a_redelivered_event_is_not_stored_twice(store: Store) -> None:
    app = create_webhook_app(store, SECRET, flush_interval=0.01)
    original = body(event(7, "unfollow"))
    redelivered = body({**event(7, "unfollow"), "deliveryContext": {"isRedelivery": True}})
    async with running(app) as client:
        assert (await post(client, original, sign(original))).status_code == 200
        assert (await post(client, redelivered, sign(redelivered))).status_code == 200
    [doc] = WebhookEventStore(store).iter_events()
    assert doc["redelivery"] is False, "the first copy is the one kept"


async def test_many_posts_become_few_writes(store: Store) -> None:
    app = create_webhook_app(store, SECRET, flush_interval=5.0)
    async with running(app) as client:
        for n in range(0, 500, 5):
            raw = body(*(event(n + k) for k in range(5)))
            assert (await post(client, raw, sign(raw))).status_code == 200
        pending = (await client.get("/healthz")).json()["pending"]
        assert pending == 500, "answered before storing"
    stats = app.state.ingestor.stats
    assert stats.stored == 500 and stats.writes <= 2
    assert WebhookEventStore(store).count() == 500


# --- import -----------------------------------------------------------------------------------


def test_import_jsonl_stores_each_event_once(store: Store) -> None:
    result = import_file(store, WEBHOOKS / "welcome_friends_day.jsonl")
    assert (result.bodies, result.events, result.stored, result.duplicates) == (6, 7, 6, 1)
    again = import_file(store, WEBHOOKS / "welcome_friends_day.jsonl")
    assert (again.stored, again.duplicates) == (0, 7)
    follow = import_file(store, WEBHOOKS / "follow.json")
    assert (follow.stored, follow.duplicates) == (0, 1)


def test_import_a_json_list_of_bodies(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "bodies.json"
    path.write_bytes(orjson.dumps([json.loads(body(event(1))), json.loads(body(event(2)))]))
    result = import_file(store, path)
    assert (result.bodies, result.stored) == (2, 2)


def test_jsonl_without_the_suffix_is_recognised(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "events.txt"
    path.write_bytes(body(event(1)) + b"\n\n" + body(event(2)) + b"\n")
    assert import_file(store, path).stored == 2


def test_bad_input_names_the_line_and_stores_nothing(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(body(event(1)) + b"\n" + body(event(2)) + b'\n{"events": [1]}\n')
    with pytest.raises(InputError) as caught:
        import_file(store, path)
    assert caught.value.location == "line 3: events[0]"
    assert WebhookEventStore(store).count() == 0
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "events": [\n    {"type": "follow",}\n  ]\n}\n')
    with pytest.raises(InputError) as caught:
        list(read_bodies(broken))
    assert caught.value.location is not None and caught.value.location.startswith("line 3")
    for name, text in (("empty.json", ""), ("jsonl_bad.jsonl", "{}\n{oops\n")):
        target = tmp_path / name
        target.write_text(text)
        with pytest.raises(InputError):
            import_file(store, target)
    with pytest.raises(InputError, match="file not found"):
        import_file(store, tmp_path / "missing.json")
