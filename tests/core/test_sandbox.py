"""The sandbox's contract: it answers like LINE, remembers like LINE, and fails as configured."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.errors import StoreCorrupt
from core.line_client import SANDBOX_BASE_URL, LineClient
from core.models import ActivationPolicy
from core.ratelimit import RateLimiter
from core.retry import (
    MONTHLY_LIMIT_MESSAGE,
    RATE_LIMIT_MESSAGE,
    ErrorClass,
    SendResult,
    send_with_retries,
)
from core.sandbox.app import AnswerLost, SandboxState, create_app, sandbox_transport
from core.sandbox.faults import Fault, SandboxSpec, spec_from_flags
from core.sandbox.state import RETRY_KEY_TTL_S

JST = timezone(timedelta(hours=9))
START = datetime(2026, 11, 30, 9, 0, tzinfo=JST).timestamp()
TOKEN = "sandbox-test-token-do-not-leak"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXT = [{"type": "textV2", "text": "Hello https://example.com/sale?utm_source=line"}]


def user(n: int) -> str:
    return f"U{n:032x}"


def key() -> str:
    return str(uuid.uuid4())


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    return SandboxState(clock=clock)


@pytest.fixture
async def http(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(state)),
        base_url="http://sandbox",
        headers=AUTH,
    ) as client:
        yield client


async def push(
    http: httpx.AsyncClient,
    to: str,
    messages: list[dict[str, Any]] | None = None,
    *,
    retry_key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    headers = {"X-Line-Retry-Key": retry_key} if retry_key else {}
    body = {"to": to, "messages": messages if messages is not None else TEXT, **extra}
    return await http.post("/v2/bot/message/push", json=body, headers=headers)


async def multicast(
    http: httpx.AsyncClient, to: list[str], *, retry_key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"X-Line-Retry-Key": retry_key} if retry_key else {}
    body = {"to": to, "messages": TEXT, **extra}
    return await http.post("/v2/bot/message/multicast", json=body, headers=headers)


# --- sends and retry keys -----------------------------------------------------------------


async def test_push_is_delivered_and_answered_like_line(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    bundle = [TEXT[0], {"type": "textV2", "text": "second"}]
    response = await push(http, user(1), bundle, retry_key=key())
    assert response.status_code == 200
    sent = response.json()["sentMessages"]
    assert len(sent) == 2 and all(isinstance(m["id"], str) and m["quoteToken"] for m in sent)
    assert response.headers["x-line-request-id"]
    assert state.delivery_counts() == {user(1): 1}
    assert state.deliveries[user(1)][0]["messages"] == bundle


async def test_a_repeated_retry_key_answers_409_with_the_accepted_id(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    retry_key = key()
    first = await push(http, user(1), retry_key=retry_key)
    again = await push(http, user(1), retry_key=retry_key)
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert again.headers["x-line-request-id"] != first.headers["x-line-request-id"]
    assert again.json() == {
        "message": "The retry key is already accepted",
        "sentMessages": first.json()["sentMessages"],
    }
    assert state.delivery_counts() == {user(1): 1}

    batch = key()
    await multicast(http, [user(2), user(3)], retry_key=batch)
    repeat = await multicast(http, [user(2), user(3)], retry_key=batch)
    assert repeat.status_code == 409 and "sentMessages" not in repeat.json()
    assert state.delivery_counts() == {user(1): 1, user(2): 1, user(3): 1}


async def test_retry_keys_are_forgotten_after_24_hours(
    http: httpx.AsyncClient, state: SandboxState, clock: FakeClock
) -> None:
    retry_key = key()
    assert (await push(http, user(1), retry_key=retry_key)).status_code == 200
    clock.now += RETRY_KEY_TTL_S - 1
    assert (await push(http, user(1), retry_key=retry_key)).status_code == 409
    clock.now += 1
    # LINE treats it as a new request: the duplicate a sender must avoid by never retrying so late.
    assert (await push(http, user(1), retry_key=retry_key)).status_code == 200
    assert state.delivery_counts() == {user(1): 2}


async def test_a_refused_request_does_not_use_its_key(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    retry_key = key()
    assert (await push(http, user(1), [], retry_key=retry_key)).status_code == 400
    assert (await push(http, user(1), retry_key=retry_key)).status_code == 200


@pytest.mark.parametrize("bad", ["not-a-uuid", "123e4567e89b12d3a456426614174000", "{" + "0" * 36])
async def test_a_malformed_retry_key_is_400(http: httpx.AsyncClient, bad: str) -> None:
    response = await push(http, user(1), retry_key=bad)
    assert response.status_code == 400 and "X-Line-Retry-Key" in response.json()["message"]


async def test_no_retry_key_is_accepted_but_unprotected(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    await push(http, user(1))
    await push(http, user(1))
    assert state.delivery_counts() == {user(1): 2}


# --- LINE's request rules -----------------------------------------------------------------


def error_shape(response: httpx.Response) -> tuple[str, list[tuple[str, str]]]:
    body = response.json()
    return body["message"], [(d["property"], d["message"]) for d in body.get("details", [])]


async def test_invalid_messages_are_refused_like_line(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await push(http, user(1), [{"type": "textV2", "text": ""}])
    assert response.status_code == 400
    message, details = error_shape(response)
    assert message == "The request body has 1 error(s)"
    assert [prop for prop, _ in details] == ["messages[0].text"]

    too_many = await push(http, user(1), TEXT * 6)
    assert too_many.status_code == 400
    assert error_shape(too_many)[0].startswith("The request body has")
    assert (await push(http, user(1), [])).status_code == 400
    missing = await http.post("/v2/bot/message/push", json={"to": user(1)})
    assert missing.status_code == 400 and error_shape(missing)[1][0][0] == "messages"
    assert state.deliveries == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"to": "Ushort"},
            "The property, 'to', in the request body is invalid (line: -, column: -)",
        ),
        ({"to": ""}, "The request body has 1 error(s)"),
        ({"customAggregationUnits": ["has-hyphen"]}, "The request body has 1 error(s)"),
        ({"customAggregationUnits": ["a", "b"]}, "The request body has 1 error(s)"),
        ({"customAggregationUnits": "a"}, "The request body has 1 error(s)"),
        ({"notificationDisabled": "yes"}, "The request body has 1 error(s)"),
    ],
)
async def test_push_options_are_checked(
    http: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await http.post(
        "/v2/bot/message/push", json={"to": user(1), "messages": TEXT, **body}
    )
    assert response.status_code == 400 and response.json()["message"] == message


async def test_push_to_groups_and_rooms(http: httpx.AsyncClient) -> None:
    for prefix in ("C", "R"):
        assert (await push(http, prefix + "a" * 32)).status_code == 200


async def test_multicast_rules(http: httpx.AsyncClient, state: SandboxState) -> None:
    assert (await multicast(http, [])).status_code == 400
    oversized = await multicast(http, [user(n) for n in range(501)])
    assert error_shape(oversized) == (
        "The request body has 1 error(s)",
        [("to", "Size must be between 1 and 500")],
    )
    bad_id = await multicast(http, [user(1), "C" + "a" * 32])
    assert bad_id.status_code == 400 and "'to[1]'" in bad_id.json()["message"]
    assert (await multicast(http, [user(n) for n in range(500)])).status_code == 200
    assert len(state.deliveries) == 500


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "The request body could not be parsed as JSON"),
        (b"[1, 2]", "application/json", 400, "The request body has 1 error(s)"),
        (b"{}", "text/plain", 415, "The content type, text/plain, is not supported"),
        (b"{" + b" " * (2 * 1024 * 1024) + b"}", "application/json", 413, "Request Entity"),
    ],
)
async def test_bodies_line_cannot_read(
    http: httpx.AsyncClient, content: bytes, content_type: str, status: int, message: str
) -> None:
    response = await http.post(
        "/v2/bot/message/push", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


@pytest.mark.parametrize("kind", ["push", "multicast", "broadcast", "narrowcast", "reply"])
async def test_validate_endpoints(http: httpx.AsyncClient, kind: str) -> None:
    path = f"/v2/bot/message/validate/{kind}"
    ok = await http.post(path, json={"messages": TEXT})
    assert ok.status_code == 200 and ok.json() == {}
    refused = await http.post(path, json={"messages": [{"type": "textV2", "text": "x" * 5001}]})
    assert refused.status_code == 400
    assert error_shape(refused)[1][0][0] == "messages[0].text"
    with_key = await http.post(path, json={"messages": TEXT}, headers={"X-Line-Retry-Key": key()})
    assert with_key.status_code == 400


async def test_unknown_paths_answer_lines_not_found(http: httpx.AsyncClient) -> None:
    response = await http.post("/v2/bot/message/validate/sideways", json={"messages": TEXT})
    assert response.status_code == 404 and response.json() == {"message": "Not found"}
    assert (await http.get("/v2/bot/message/push")).status_code == 405


# --- quota, info ------------------------------------------------------------------------------


async def test_quota_counts_recipients_not_bubbles(
    clock: FakeClock,
) -> None:
    state = SandboxState(spec=SandboxSpec(monthly_quota=5), clock=clock)
    async with httpx.AsyncClient(
        transport=sandbox_transport(state), base_url="http://sandbox"
    ) as http:
        assert (await http.get("/v2/bot/message/quota")).json() == {"type": "limited", "value": 5}
        await push(http, user(1), TEXT * 3)
        await multicast(http, [user(2), user(3), user(4)])
        usage = await http.get("/v2/bot/message/quota/consumption")
        assert usage.json() == {"totalUsage": 4}
        refused = await multicast(http, [user(5), user(6)])  # 4 + 2 > 5: all or nothing
        assert refused.status_code == 429 and refused.json()["message"] == MONTHLY_LIMIT_MESSAGE
        assert (await push(http, user(5))).status_code == 200
        assert (await push(http, user(6))).status_code == 429
        assert (await http.get("/v2/bot/message/quota/consumption")).json()["totalUsage"] == 5
        clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=JST).timestamp()
        assert (await push(http, user(6))).status_code == 200, "a new month, a new allowance"


async def test_unlimited_quota(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v2/bot/message/quota")).json() == {"type": "none"}


async def test_bot_info_and_unit_usage(http: httpx.AsyncClient, state: SandboxState) -> None:
    info = (await http.get("/v2/bot/info")).json()
    assert info["displayName"] and info["userId"].startswith("U") and info["chatMode"] == "bot"
    await push(http, user(1), customAggregationUnits=["spring"])
    await push(http, user(2), customAggregationUnits=["spring"])
    await multicast(http, [user(3)], customAggregationUnits=["autumn"])
    count = await http.get("/v2/bot/message/aggregation/info")
    assert count.json() == {"numOfCustomAggregationUnits": 2}


async def test_a_month_assigns_at_most_1000_unit_names(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    state.units["202611"] = [f"unit_{n}" for n in range(1000)]
    assert (await push(http, user(1), customAggregationUnits=["unit_1001"])).status_code == 200
    assert state.deliveries[user(1)][0]["unit"] is None, "sent, but without the unit"
    await push(http, user(2), customAggregationUnits=["unit_7"])
    assert state.deliveries[user(2)][0]["unit"] == "unit_7"


# --- rate limits ------------------------------------------------------------------------------


async def test_rate_limits_per_token_and_endpoint(clock: FakeClock) -> None:
    fake_monotonic = FakeClock(0.0)
    state = SandboxState(clock=clock, limiter=RateLimiter(clock=fake_monotonic))
    app = create_app(state)
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://s", headers=AUTH
        ) as first,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://s",
            headers={"Authorization": "Bearer other"},
        ) as second,
    ):
        statuses = [(await multicast(first, [user(1)])).status_code for _ in range(201)]
        assert statuses.count(200) == 200 and statuses[-1] == 429
        last = await multicast(first, [user(1)])
        assert last.json() == {"message": RATE_LIMIT_MESSAGE}
        assert (await multicast(second, [user(1)])).status_code == 200, "another channel"
        assert (await push(first, user(1))).status_code == 200, "another endpoint"
        fake_monotonic.now += 1.0
        assert (await multicast(first, [user(1)])).status_code == 200, "refilled after a second"

        path = "/v2/bot/insight/message/delivery?date=20261129"
        hourly = [(await first.get(path)).status_code for _ in range(61)]
        assert hourly.count(200) == 60 and hourly[-1] == 429
        fake_monotonic.now += 3600
        assert (await first.get(path)).status_code == 200


async def test_push_allows_2000_per_second(clock: FakeClock) -> None:
    fake_monotonic = FakeClock(0.0)
    state = SandboxState(clock=clock, limiter=RateLimiter(clock=fake_monotonic))
    async with httpx.AsyncClient(
        transport=sandbox_transport(state), base_url="http://s", headers=AUTH
    ) as http:
        statuses = await asyncio.gather(*(push(http, user(n)) for n in range(2001)))
    codes = [response.status_code for response in statuses]
    assert codes.count(200) == 2000 and codes.count(429) == 1


async def test_rate_limits_can_be_switched_off(clock: FakeClock) -> None:
    state = SandboxState(clock=clock, limiter=RateLimiter(clock=FakeClock(0.0)))
    state.enforce_rate_limits = False
    async with httpx.AsyncClient(transport=sandbox_transport(state), base_url="http://s") as http:
        codes = [(await multicast(http, [user(1)])).status_code for _ in range(250)]
    assert set(codes) == {200}


# --- statistics ---------------------------------------------------------------------------


async def deliver_with_unit(
    http: httpx.AsyncClient, unit: str, users: range, messages: list[dict[str, Any]]
) -> None:
    for n in users:
        response = await push(http, user(n), messages, customAggregationUnits=[unit])
        assert response.status_code == 200


STATS = "/v2/bot/insight/message/event/aggregation"
IMAGEMAP = {
    "type": "imagemap",
    "baseUrl": "https://example.com/img",
    "altText": "sale",
    "baseSize": {"width": 1040, "height": 1040},
    "actions": [
        {
            "type": "uri",
            "linkUri": "https://example.com/banner",
            "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
        }
    ],
}


async def test_unit_statistics_follow_the_deliveries(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    await deliver_with_unit(http, "spring", range(300), [TEXT[0], IMAGEMAP])
    await deliver_with_unit(http, "tiny", range(300, 305), TEXT)
    params = {"customAggregationUnit": "spring", "from": "20261130", "to": "20261130"}
    stats = (await http.get(STATS, params=params)).json()
    overview = stats["overview"]
    per_bubble = [m["uniqueImpression"] for m in stats["messages"]]
    assert all(150 < seen < 230 for seen in per_bubble), "about 62% of 300 see each bubble"
    assert max(per_bubble) < overview["uniqueImpression"] <= 300
    assert 20 <= overview["uniqueClick"] < overview["uniqueImpression"]
    assert overview["uniqueMediaPlayed"] is None, "no video, no plays"
    assert [m["seq"] for m in stats["messages"]] == [1, 2]
    first = stats["messages"][0]
    assert first["impression"] >= first["uniqueImpression"] >= 20
    urls = {(c["seq"], c["url"]) for c in stats["clicks"]}
    assert urls == {
        (1, "https://example.com/sale?utm_source=line"),
        (2, "https://example.com/banner"),
    }
    for click in stats["clicks"]:
        assert click["click"] >= click["uniqueClick"] >= 20
    again = (await http.get(STATS, params=params)).json()
    assert again == stats, "deterministic"

    tiny = (await http.get(STATS, params={**params, "customAggregationUnit": "tiny"})).json()
    assert set(tiny["overview"].values()) == {None}, "under 20 is null"
    assert all(m["impression"] is None for m in tiny["messages"])

    earlier = (
        await http.get(STATS, params={**params, "from": "20261101", "to": "20261129"})
    ).json()
    assert earlier["messages"] == [] and earlier["overview"]["uniqueImpression"] is None


async def test_statistics_do_not_depend_on_delivery_order(clock: FakeClock) -> None:
    results = []
    for order in (range(60), range(59, -1, -1)):
        state = SandboxState(clock=clock)
        async with httpx.AsyncClient(
            transport=sandbox_transport(state), base_url="http://s"
        ) as http:
            await deliver_with_unit(http, "u", order, TEXT)
            params = {"customAggregationUnit": "u", "from": "20261130", "to": "20261130"}
            results.append((await http.get(STATS, params=params)).json())
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "20261101", "to": "20261130"},
        {"customAggregationUnit": "bad-name", "from": "20261101", "to": "20261130"},
        {"customAggregationUnit": "u", "from": "20261101"},
        {"customAggregationUnit": "u", "from": "2026-11-01", "to": "20261130"},
        {"customAggregationUnit": "u", "from": "20261131", "to": "20261201"},
        {"customAggregationUnit": "u", "from": "20261130", "to": "20261101"},
        {"customAggregationUnit": "u", "from": "20261101", "to": "20261202"},
    ],
)
async def test_statistics_requests_line_refuses(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await http.get(STATS, params=params)
    assert response.status_code == 400
    assert response.json() == {"message": None, "key": None, "stacktrace": None, "code": None}


async def test_thirty_days_is_allowed(http: httpx.AsyncClient) -> None:
    params = {"customAggregationUnit": "u", "from": "20210301", "to": "20210331"}
    assert (await http.get(STATS, params=params)).status_code == 200


async def test_delivery_figures_once_the_day_is_over(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    for n in range(25):
        await push(http, user(n))
    await multicast(http, [user(n) for n in range(5)])
    today = {"date": "20261130"}
    assert (await http.get("/v2/bot/insight/message/delivery", params=today)).json() == {
        "status": "unready"
    }
    assert (await http.get("/v2/bot/message/delivery/push", params=today)).json() == {
        "status": "unready"
    }
    clock.now += 86_400
    insight = (await http.get("/v2/bot/insight/message/delivery", params=today)).json()
    assert insight["status"] == "ready"
    assert insight["apiPush"] == 25 and insight["apiMulticast"] == 5
    push_count = await http.get("/v2/bot/message/delivery/push", params=today)
    assert push_count.json() == {"status": "ready", "success": 25}
    multicast_count = await http.get("/v2/bot/message/delivery/multicast", params=today)
    assert multicast_count.json() == {"status": "unavailable_for_privacy"}
    old = await http.get("/v2/bot/insight/message/delivery", params={"date": "20170228"})
    assert old.json() == {"status": "out_of_service"}
    missing = await http.get("/v2/bot/message/delivery/push")
    assert missing.status_code == 400 and error_shape(missing)[1][0][0] == "date"


# --- faults -------------------------------------------------------------------------------


def faulty(*faults: Fault, clock: FakeClock, **spec: Any) -> SandboxState:
    return SandboxState(spec=SandboxSpec(faults=list(faults), **spec), clock=clock)


def client_for(state: SandboxState) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sandbox_transport(state), base_url="http://s")


async def test_fail_first(clock: FakeClock) -> None:
    state = faulty(Fault(kind="fail_first", count=2), clock=clock)
    async with client_for(state) as http:
        codes = [(await push(http, user(1), retry_key=key())).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert state.delivery_counts() == {user(1): 1}
    assert [entry["fault"] for entry in state.requests] == ["fail_first", "fail_first", None]


async def test_random_5xx_with_a_status_and_nothing_delivered(clock: FakeClock) -> None:
    state = faulty(Fault(kind="random_5xx", rate=1.0, status=503), clock=clock)
    async with client_for(state) as http:
        response = await push(http, user(1))
    assert response.status_code == 503 and response.json()["message"]
    assert state.deliveries == {}


async def test_random_faults_are_seeded(clock: FakeClock) -> None:
    async def statuses(seed: int) -> list[int]:
        state = faulty(Fault(kind="random_5xx", rate=0.5), clock=clock, seed=seed)
        async with client_for(state) as http:
            return [(await push(http, user(n))).status_code for n in range(40)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again and first != other
    assert 5 < first.count(500) < 35


async def test_lost_answer_drops_the_connection_after_accepting(clock: FakeClock) -> None:
    state = faulty(Fault(kind="lost_answer", rate=1.0), clock=clock)
    retry_key = key()
    async with client_for(state) as http:
        with pytest.raises(httpx.TimeoutException) as caught:
            await push(http, user(1), retry_key=retry_key)
        assert isinstance(caught.value, AnswerLost)
        assert state.delivery_counts() == {user(1): 1}, "accepted and delivered"
        state.set_spec(SandboxSpec())
        assert (await push(http, user(1), retry_key=retry_key)).status_code == 409


async def test_lost_answer_with_a_status(clock: FakeClock) -> None:
    state = faulty(Fault(kind="lost_answer", rate=1.0, status=500), clock=clock)
    retry_key = key()
    async with client_for(state) as http:
        assert (await push(http, user(1), retry_key=retry_key)).status_code == 500
        assert (await push(http, user(1), retry_key=retry_key)).status_code == 409
    assert state.delivery_counts() == {user(1): 1}
    assert state.requests[0]["outcome"] == "accepted_answer_lost"


async def test_latency(clock: FakeClock) -> None:
    state = faulty(Fault(kind="latency", ms=60, jitter_ms=10), clock=clock)
    async with client_for(state) as http:
        started = time.monotonic()
        await http.get("/v2/bot/message/quota")
        assert time.monotonic() - started >= 0.06


async def test_permanent_400_for_chosen_users(clock: FakeClock) -> None:
    state = faulty(Fault(kind="permanent_400", users=[user(2)]), clock=clock)
    async with client_for(state) as http:
        assert (await push(http, user(1))).status_code == 200
        refused = await push(http, user(2))
        assert refused.status_code == 400 and refused.json() == {
            "message": "Failed to send messages"
        }
        assert (await multicast(http, [user(3), user(2)])).status_code == 400
    assert state.delivery_counts() == {user(1): 1}


async def test_monthly_limit_after_n_messages(clock: FakeClock) -> None:
    state = faulty(Fault(kind="monthly_limit", count=2), clock=clock)
    async with client_for(state) as http:
        codes = [(await push(http, user(n))).status_code for n in range(3)]
        last = await push(http, user(9))
        # The plan itself is unlimited: LINE's FAQ says this 429 can come anyway.
        assert (await http.get("/v2/bot/message/quota")).json() == {"type": "none"}
    assert codes == [200, 200, 429] and last.json()["message"] == MONTHLY_LIMIT_MESSAGE


async def test_rate_limit_share(clock: FakeClock) -> None:
    state = faulty(Fault(kind="rate_limit", rate=1.0, endpoint="push"), clock=clock)
    async with client_for(state) as http:
        refused = await push(http, user(1))
        assert refused.status_code == 429 and refused.json()["message"] == RATE_LIMIT_MESSAGE
        assert (await multicast(http, [user(1)])).status_code == 200, "push only"


@pytest.mark.parametrize(("kind", "status"), [("unauthorized", 401), ("forbidden", 403)])
async def test_auth_faults_hit_every_request(clock: FakeClock, kind: str, status: int) -> None:
    state = faulty(Fault(kind=kind), clock=clock)
    async with client_for(state) as http:
        assert (await push(http, user(1))).status_code == status
        assert (await http.get("/v2/bot/message/quota")).status_code == status
        assert (await http.get("/_sandbox/state")).status_code == 200
    assert state.deliveries == {}


async def test_faults_narrowed_to_an_endpoint(clock: FakeClock) -> None:
    state = faulty(Fault(kind="random_5xx", rate=1.0, endpoint="multicast"), clock=clock)
    async with client_for(state) as http:
        assert (await push(http, user(1))).status_code == 200
        assert (await multicast(http, [user(1)])).status_code == 500
        assert (await http.get("/v2/bot/message/quota")).status_code == 200


def test_spec_from_flags() -> None:
    spec = spec_from_flags(
        fail_first=3, random_5xx=0.1, lost_answer=0.15, latency_ms=5, monthly_quota=10, seed=4
    )
    assert [fault.kind for fault in spec.faults] == [
        "fail_first",
        "random_5xx",
        "lost_answer",
        "latency",
    ]
    assert spec.monthly_quota == 10 and spec.seed == 4
    assert spec_from_flags() == SandboxSpec()


# --- introspection ------------------------------------------------------------------------


async def test_requests_log_has_retry_keys_and_no_tokens(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    retry_key = key()
    await push(http, user(1), retry_key=retry_key)
    await push(http, user(1), retry_key=retry_key)
    log = (await http.get("/_sandbox/requests")).json()
    assert log["total"] == 2
    first, second = log["requests"]
    assert first["retry_key"] == second["retry_key"] == retry_key
    assert (first["status"], second["status"]) == (200, 409)
    assert first["to"] == user(1) and first["authorized"] is True
    assert (await http.get("/_sandbox/requests", params={"limit": 1})).json()["requests"] == [
        second
    ]
    everything = b"".join(
        [
            (await http.get(path)).content
            for path in ("/_sandbox/requests", "/_sandbox/deliveries", "/_sandbox/state")
        ]
    )
    assert TOKEN.encode() not in everything
    assert TOKEN not in repr(state)


async def test_deliveries_state_reset_and_faults(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    await push(http, user(1))
    await multicast(http, [user(1), user(2)])
    deliveries = (await http.get("/_sandbox/deliveries")).json()
    assert deliveries["counts"] == {user(1): 2, user(2): 1}
    assert deliveries["recipients"] == 2 and deliveries["total"] == 3
    assert [d["endpoint"] for d in deliveries["deliveries"][user(1)]] == ["push", "multicast"]
    one = (await http.get("/_sandbox/deliveries", params={"user": user(2), "detail": "0"})).json()
    assert one["counts"] == {user(2): 1} and "deliveries" not in one
    summary = (await http.get("/_sandbox/state")).json()
    assert summary["deliveries"] == 3 and summary["usage_this_month"] == 3

    replaced = await http.post("/_sandbox/faults", json=[{"kind": "fail_first", "count": 1}])
    assert replaced.status_code == 200 and replaced.json()["faults"][0]["kind"] == "fail_first"
    assert (await push(http, user(3))).status_code == 500
    assert (await push(http, user(3))).status_code == 200
    whole = await http.post("/_sandbox/faults", json={"faults": [], "monthly_quota": 100})
    assert whole.json()["monthly_quota"] == 100
    assert (await http.get("/_sandbox/faults")).json()["monthly_quota"] == 100
    wrong = await http.post("/_sandbox/faults", json=[{"kind": "meteor"}])
    assert wrong.status_code == 400 and wrong.json()["details"][0]["property"].startswith("0")
    assert (await http.post("/_sandbox/faults", content=b"{")).status_code == 400

    after = (await http.post("/_sandbox/reset")).json()
    assert after["deliveries"] == 0 and after["requests"] == 0
    assert after["spec"]["monthly_quota"] == 100, "reset keeps the configuration"
    assert state.deliveries == {} and len(state.requests) == 0


# --- persistence ----------------------------------------------------------------------------


async def test_state_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "sandbox.json"
    retry_key = key()
    state = SandboxState.load(path, clock=clock)
    async with client_for(state) as http:
        assert (
            await push(http, user(1), retry_key=retry_key, customAggregationUnits=["u"])
        ).status_code == 200
    state.save(path)

    clock.now += 3600
    resumed = SandboxState.load(path, spec=SandboxSpec(monthly_quota=1), clock=clock)
    async with client_for(resumed) as http:
        again = await push(http, user(1), retry_key=retry_key)
        assert again.status_code == 409
        assert again.headers["x-line-accepted-request-id"] == state.accepted[retry_key].request_id
        assert again.json()["sentMessages"] == state.accepted[retry_key].sent_messages
        assert (await push(http, user(2))).status_code == 429, "the month's usage came back too"
    assert resumed.delivery_counts() == {user(1): 1}
    assert resumed.units == {"202611": ["u"]}
    assert resumed.request_count == 3

    clock.now += RETRY_KEY_TTL_S
    resumed.save(path)
    assert SandboxState.load(path, clock=clock).accepted == {}, "expired keys are not kept"


def test_missing_state_file_is_a_fresh_sandbox(tmp_path: Path) -> None:
    state = SandboxState.load(tmp_path / "nothing.json", spec=SandboxSpec(seed=3))
    assert state.deliveries == {} and state.spec.seed == 3


@pytest.mark.parametrize("content", [b"{broken", b"[]", b'{"version": 99}', b'{"version": 1}'])
def test_corrupt_state_file_is_refused_and_kept(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sandbox.json"
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt) as caught:
        SandboxState.load(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content


# --- the client against the in-process sandbox ---------------------------------------------


class NoSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def sandbox_client(state: SandboxState) -> LineClient:
    return LineClient(SANDBOX_BASE_URL, token_env=None, transport=sandbox_transport(state))


async def test_exactly_once_through_500s_and_lost_answers(clock: FakeClock) -> None:
    """The issue's done-when, at the client level: 10% random 500s, 15% lost answers."""
    state = faulty(
        Fault(kind="random_5xx", rate=0.10),
        Fault(kind="lost_answer", rate=0.15),
        clock=clock,
        seed=2026,
    )
    policy = ActivationPolicy(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=60.0)
    sleep = NoSleep()
    recipients = [user(n) for n in range(500)]
    async with sandbox_client(state) as client:

        async def deliver(to: str) -> SendResult:
            retry_key = key()
            return await send_with_retries(
                lambda: client.push(to, TEXT, retry_key=retry_key), policy, sleep=sleep
            )

        results = await asyncio.gather(*(deliver(to) for to in recipients))
    assert all(result.accepted for result in results)
    assert state.delivery_counts() == {to: 1 for to in recipients}
    statuses = [entry["status"] for entry in state.requests]
    lost = [entry for entry in state.requests if entry["fault"] == "lost_answer"]
    assert statuses.count(500) > 20 and len(lost) > 40, "the faults really struck"
    assert sum(1 for result in results if result.status == 409) == len(lost)
    assert len(sleep.waits) == len(state.requests) - 500


async def test_the_same_key_on_every_attempt_at_the_sandbox(clock: FakeClock) -> None:
    state = faulty(Fault(kind="fail_first", count=2), clock=clock)
    retry_key = key()
    async with sandbox_client(state) as client:
        result = await send_with_retries(
            lambda: client.multicast([user(1), user(2)], TEXT, retry_key=retry_key),
            ActivationPolicy(),
            sleep=NoSleep(),
        )
    assert result.accepted
    assert [entry["retry_key"] for entry in state.requests] == [retry_key] * 3
    assert state.delivery_counts() == {user(1): 1, user(2): 1}


async def test_the_monthly_limit_is_fatal_after_one_refusal(clock: FakeClock) -> None:
    state = faulty(clock=clock, monthly_quota=0)
    sleep = NoSleep()
    async with sandbox_client(state) as client:
        result = await send_with_retries(
            lambda: client.push(user(1), TEXT, retry_key=key()), ActivationPolicy(), sleep=sleep
        )
    assert result.error_class is ErrorClass.FATAL and result.monthly_limit
    assert result.error_code == "429"
    assert len(state.requests) == 1 and sleep.waits == []


async def test_client_reads_against_the_sandbox(clock: FakeClock) -> None:
    state = faulty(clock=clock, monthly_quota=1000)
    async with sandbox_client(state) as client:
        assert (await client.push(user(1), TEXT, retry_key=key(), aggregation_unit="u")).accepted
        quota = await client.quota()
        assert (quota.type, quota.value) == ("limited", 1000)
        assert await client.consumption() == 1
        assert (await client.bot_info())["displayName"]
        assert await client.aggregation_unit_count() == 1
        day = date(2026, 11, 30)
        stats = await client.unit_statistics("u", day, day)
        assert set(stats) == {"overview", "messages", "clicks"}
        assert (await client.insight_deliveries(day)) == {"status": "unready"}
        assert (await client.delivery_count("push", day)) == {"status": "unready"}
        invalid = await client.validate([{"type": "textV2", "text": ""}])
        assert invalid.error_class is ErrorClass.PERMANENT
        assert invalid.details[0].property == "messages[0].text"


def test_sandbox_clock_is_wall_time_by_default() -> None:
    state = SandboxState()
    assert abs(state.clock() - datetime.now(UTC).timestamp()) < 5


def test_request_log_json_round_trips(state: SandboxState) -> None:
    assert orjson.loads(orjson.dumps(state.to_json()))["version"] == 1


def test_conversion_api_state_follows_the_spec() -> None:
    spec = SandboxSpec(faults=[Fault(kind="random_5xx", rate=0.5, endpoint="capi")])
    state = SandboxState(spec=spec)
    capi = state.capi
    assert capi.faults == spec.faults
    state.set_spec(SandboxSpec())
    assert capi.faults == []
    state.set_spec(spec)
    state.reset()
    assert state.capi is capi, "the Conversion API routes keep their state object"
    assert capi.faults == spec.faults and capi.batches == []
