"""The Messaging API client against pytest-httpx: every status class, header and odd body."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from pytest_httpx import HTTPXMock

from core.http import make_transport
from core.line_client import (
    SANDBOX_BASE_URL,
    LineApiError,
    LineClient,
    Quota,
    is_sandbox_base,
    line_date,
)
from core.ratelimit import Limit, RateLimiter
from core.retry import (
    MONTHLY_LIMIT_MESSAGE,
    RATE_LIMIT_MESSAGE,
    ErrorClass,
    ErrorDetail,
    RetryPolicy,
    SendResult,
    send_with_retries,
)

BASE = "https://api.line.me"
PUSH = f"{BASE}/v2/bot/message/push"
MULTICAST = f"{BASE}/v2/bot/message/multicast"
TOKEN_ENV = "ACME_LINE_TOKEN"
SECRET = "s3cr3t-channel-token-value"
USER = "U" + "0" * 32
KEY = "123e4567-e89b-12d3-a456-426614174000"
MESSAGES = [{"type": "textV2", "text": "Hello"}]
NO_WAIT = RetryPolicy(max_attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    return SECRET


@pytest.fixture
async def client(token: str) -> AsyncIterator[LineClient]:
    line = LineClient(
        BASE,
        token_env=TOKEN_ENV,
        channel="acme",
        transport=make_transport("httpx"),
        get_policy=NO_WAIT,
    )
    yield line
    await line.aclose()


async def push(client: LineClient) -> SendResult:
    return await client.push(USER, MESSAGES, retry_key=KEY)


# --- what goes out ------------------------------------------------------------------------


async def test_push_request_carries_token_retry_key_and_body(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=PUSH, method="POST", json={"sentMessages": []})
    await client.push(USER, MESSAGES, retry_key=KEY)
    request = httpx_mock.get_requests()[0]
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["x-line-retry-key"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {"to": USER, "messages": MESSAGES}


async def test_unit_and_notification_flag_only_when_given(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=MULTICAST, json={}, is_reusable=True)
    await client.multicast(
        [USER, "U" + "1" * 32],
        MESSAGES,
        retry_key=KEY,
        aggregation_unit="spring_sale_2_0a1b2c3d4e5f",
        notification_disabled=True,
    )
    await client.multicast([USER], MESSAGES, retry_key=KEY)
    first, second = (orjson.loads(r.content) for r in httpx_mock.get_requests())
    assert first == {
        "to": [USER, "U" + "1" * 32],
        "messages": MESSAGES,
        "notificationDisabled": True,
        "customAggregationUnits": ["spring_sale_2_0a1b2c3d4e5f"],
    }
    assert second == {"to": [USER], "messages": MESSAGES}


async def test_token_is_read_at_each_request(
    client: LineClient, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpx_mock.add_response(url=PUSH, json={}, is_reusable=True)
    await push(client)
    monkeypatch.setenv(TOKEN_ENV, "rotated-token")
    await push(client)
    first, second = httpx_mock.get_requests()
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert second.headers["authorization"] == "Bearer rotated-token"
    assert SECRET not in repr(vars(client)) and "rotated-token" not in repr(vars(client))


@pytest.mark.parametrize("value", [None, ""])
async def test_missing_token_refuses_before_sending(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(TOKEN_ENV, raising=False)
    else:
        monkeypatch.setenv(TOKEN_ENV, value)
    async with LineClient(BASE, token_env=TOKEN_ENV, transport=make_transport("httpx")) as line:
        result = await push(line)
        assert result.error_class is ErrorClass.FATAL
        assert result.local_error == "missing_token" and result.error_code == "missing_token"
        assert result.message is not None and TOKEN_ENV in result.message
        with pytest.raises(LineApiError) as caught:
            await line.quota()
        assert TOKEN_ENV in str(caught.value)
    assert httpx_mock.get_requests() == []


async def test_no_token_env_on_a_real_base_is_refused(httpx_mock: HTTPXMock) -> None:
    async with LineClient(BASE, channel="acme", transport=make_transport("httpx")) as line:
        result = await push(line)
    assert result.error_class is ErrorClass.FATAL and "token_env" in (result.message or "")
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("base", [SANDBOX_BASE_URL, "http://127.0.0.1:8931", "http://localhost"])
async def test_the_sandbox_takes_no_token(
    base: str, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    httpx_mock.add_response(json={})
    async with LineClient(base, token_env=TOKEN_ENV, transport=make_transport("httpx")) as line:
        result = await push(line)
    assert result.accepted
    assert "authorization" not in httpx_mock.get_requests()[0].headers


def test_sandbox_bases() -> None:
    assert is_sandbox_base(SANDBOX_BASE_URL)
    assert is_sandbox_base("http://[::1]:8931")
    assert is_sandbox_base("http://127.0.0.2:1")
    assert not is_sandbox_base("https://api.line.me")
    assert not is_sandbox_base("http://10.0.0.1:8931")


# --- what comes back ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_class", "error_code"),
    [
        (200, {"sentMessages": [{"id": "461230966842064897", "quoteToken": "q"}]}, "accepted", ""),
        (500, {"message": "Internal error"}, "transient", "500"),
        (502, b"<html>Bad Gateway</html>", "transient", "502"),
        (503, b"", "transient", "503"),
        (504, None, "transient", "504"),
        (429, {"message": RATE_LIMIT_MESSAGE}, "transient", "429"),
        (429, {"message": "Too many requests to one user"}, "transient", "429"),
        (429, {"message": MONTHLY_LIMIT_MESSAGE}, "fatal", "429"),
        (409, {"message": "The retry key is already accepted"}, "permanent", "409"),
        (401, {"message": "Authentication failed due to the following reason: x"}, "fatal", "401"),
        (403, {"message": "Access to this API is not available for your account"}, "fatal", "403"),
        (400, {"message": "The request body has 1 error(s)"}, "permanent", "400"),
        (404, {"message": "Not found"}, "permanent", "404"),
        (410, {}, "permanent", "410"),
        (413, b"too big", "permanent", "413"),
        (415, {"message": "The content type, text/plain, is not supported"}, "permanent", "415"),
        (418, [1, 2], "permanent", "418"),
    ],
)
async def test_status_classes(
    client: LineClient,
    httpx_mock: HTTPXMock,
    status: int,
    body: object,
    error_class: str,
    error_code: str,
) -> None:
    if isinstance(body, bytes | type(None)):
        httpx_mock.add_response(url=PUSH, status_code=status, content=body or b"")
    else:
        httpx_mock.add_response(url=PUSH, status_code=status, json=body)
    result = await client.push(USER, MESSAGES, retry_key=KEY)
    assert result.status == status
    assert result.error_class == error_class
    assert result.error_code == error_code
    assert result.monthly_limit == (error_class == "fatal" and status == 429)


async def test_409_with_the_accepted_header_is_success(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=PUSH,
        status_code=409,
        headers={"X-LINE-Request-Id": "req-2", "X-Line-ACCEPTED-Request-Id": "req-1"},
        json={
            "message": "The retry key is already accepted",
            "sentMessages": [{"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b"}],
        },
    )
    result = await push(client)
    assert result.accepted and result.error_code == ""
    assert result.request_id == "req-2" and result.accepted_request_id == "req-1"
    assert result.effective_request_id == "req-1"
    assert result.sent_messages == ({"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b"},)


async def test_request_id_and_sent_messages_on_200(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=PUSH,
        headers={"x-line-request-id": "f70dd685-499a-4231-a441-f24b8d4fba21"},
        json={"sentMessages": [{"id": 461230966842064897, "quoteToken": "q"}, "junk"]},
    )
    result = await push(client)
    assert result.request_id == "f70dd685-499a-4231-a441-f24b8d4fba21"
    assert result.accepted_request_id is None
    assert result.sent_messages == ({"id": "461230966842064897", "quoteToken": "q"},)


async def test_error_details_are_parsed(client: LineClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=PUSH,
        status_code=400,
        json={
            "message": "The request body has 2 error(s)",
            "details": [
                {"message": "May not be empty", "property": "messages[0].text"},
                {"property": "messages[1].type"},
            ],
        },
    )
    result = await push(client)
    assert result.message == "The request body has 2 error(s)"
    assert result.details == (
        ErrorDetail("May not be empty", "messages[0].text"),
        ErrorDetail(None, "messages[1].type"),
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json at all",
        b'{"message": null, "key": null, "stacktrace": null, "code": null}',
        b'{"message": ["a"], "details": {"property": 1}}',
        b"\xff\xfe\x00garbage",
        b"[" * 10_000,
        b'"just a string"',
    ],
)
async def test_malformed_error_bodies_are_never_a_crash(
    client: LineClient, httpx_mock: HTTPXMock, content: bytes
) -> None:
    httpx_mock.add_response(url=PUSH, status_code=400, content=content)
    result = await push(client)
    assert result.error_class is ErrorClass.PERMANENT
    assert result.message is None and result.details == ()


@pytest.mark.parametrize(
    ("exception", "timed_out"),
    [
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.ConnectError("connection refused"), False),
        (httpx.RemoteProtocolError("peer closed connection"), False),
        (httpx.ReadError("connection reset"), False),
    ],
)
async def test_no_answer_is_transient(
    client: LineClient, httpx_mock: HTTPXMock, exception: Exception, timed_out: bool
) -> None:
    httpx_mock.add_exception(exception, url=PUSH)
    result = await push(client)
    assert result.status == 0 and result.error_class is ErrorClass.TRANSIENT
    assert result.timed_out is timed_out and result.error_code == "timeout"
    assert SECRET not in (result.message or "")


async def test_multicast_recipient_bounds(client: LineClient, httpx_mock: HTTPXMock) -> None:
    for count in (0, 501):
        result = await client.multicast([USER] * count, MESSAGES, retry_key=KEY)
        assert result.error_class is ErrorClass.PERMANENT
        assert result.local_error == "invalid_request" and str(count) in (result.message or "")
    assert httpx_mock.get_requests() == []
    httpx_mock.add_response(url=MULTICAST, json={})
    assert (await client.multicast([USER] * 500, MESSAGES, retry_key=KEY)).accepted


async def test_validate_has_no_retry_key(client: LineClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/bot/message/validate/multicast", json={})
    httpx_mock.add_response(
        url=f"{BASE}/v2/bot/message/validate/push",
        status_code=400,
        json={
            "message": "The request body has 1 error(s)",
            "details": [{"message": "Length must be between 0 and 5000", "property": "x"}],
        },
    )
    assert (await client.validate(MESSAGES, kind="multicast")).accepted
    refused = await client.validate(MESSAGES)
    assert refused.error_class is ErrorClass.PERMANENT and refused.details[0].property == "x"
    for request in httpx_mock.get_requests():
        assert "x-line-retry-key" not in request.headers
        assert orjson.loads(request.content) == {"messages": MESSAGES}
    with pytest.raises(ValueError):
        await client.validate(MESSAGES, kind="sideways")


# --- retries ------------------------------------------------------------------------------


async def test_the_same_retry_key_on_every_attempt(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=PUSH, status_code=500, json={"message": "Internal error"})
    httpx_mock.add_exception(httpx.ReadTimeout("lost"), url=PUSH)
    httpx_mock.add_response(
        url=PUSH, status_code=409, headers={"x-line-accepted-request-id": "req-1"}, json={}
    )
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    result = await send_with_retries(
        lambda: client.push(USER, MESSAGES, retry_key=KEY),
        RetryPolicy(max_attempts=5),
        sleep=no_sleep,
        rand=lambda: 0.5,
    )
    assert result.accepted and result.accepted_request_id == "req-1"
    keys = [request.headers["x-line-retry-key"] for request in httpx_mock.get_requests()]
    assert keys == [KEY, KEY, KEY]
    assert waits == [0.5, 1.0]


async def test_rate_limit_answer_backs_the_bucket_off(token: str, httpx_mock: HTTPXMock) -> None:
    limiter = RateLimiter()
    httpx_mock.add_response(url=PUSH, status_code=429, json={"message": RATE_LIMIT_MESSAGE})
    async with LineClient(
        BASE,
        token_env=TOKEN_ENV,
        channel="acme",
        limiter=limiter,
        transport=make_transport("httpx"),
    ) as line:
        result = await push(line)
    assert result.rate_limited and result.error_class is ErrorClass.TRANSIENT
    assert limiter.try_acquire("acme", "push") > 0.5
    assert limiter.try_acquire("other", "push") == 0.0


async def test_monthly_limit_does_not_back_off(token: str, httpx_mock: HTTPXMock) -> None:
    limiter = RateLimiter()
    httpx_mock.add_response(url=PUSH, status_code=429, json={"message": MONTHLY_LIMIT_MESSAGE})
    async with LineClient(
        BASE,
        token_env=TOKEN_ENV,
        channel="acme",
        limiter=limiter,
        transport=make_transport("httpx"),
    ) as line:
        result = await push(line)
    assert result.monthly_limit and result.error_class is ErrorClass.FATAL
    assert limiter.try_acquire("acme", "push") == 0.0


# --- reads --------------------------------------------------------------------------------


async def test_quota_and_consumption(client: LineClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/bot/message/quota", json={"type": "none"})
    httpx_mock.add_response(
        url=f"{BASE}/v2/bot/message/quota", json={"type": "limited", "value": 1000}
    )
    httpx_mock.add_response(
        url=f"{BASE}/v2/bot/message/quota/consumption", json={"totalUsage": 500}
    )
    assert await client.quota() == Quota("none", None)
    assert await client.quota() == Quota("limited", 1000)
    assert await client.consumption() == 500
    for request in httpx_mock.get_requests():
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        assert "x-line-retry-key" not in request.headers


@pytest.mark.parametrize(
    "body", [{"type": "limited"}, {"type": "weird"}, {"type": "limited", "value": "9"}, []]
)
async def test_unreadable_quota_is_an_error_not_a_crash(
    client: LineClient, httpx_mock: HTTPXMock, body: object
) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/bot/message/quota", json=body)
    with pytest.raises(LineApiError) as caught:
        await client.quota()
    assert "quota" in str(caught.value)


async def test_statistics_parameters(client: LineClient, httpx_mock: HTTPXMock) -> None:
    stats = {"overview": {"uniqueImpression": None}, "messages": [], "clicks": []}
    httpx_mock.add_response(json=stats, is_reusable=True)
    assert await client.unit_statistics("spring", date(2026, 11, 1), date(2026, 11, 30)) == stats
    await client.insight_deliveries(date(2026, 11, 30))
    await client.delivery_count("multicast", date(2026, 11, 30))
    await client.bot_info()
    urls = [str(request.url) for request in httpx_mock.get_requests()]
    assert urls == [
        f"{BASE}/v2/bot/insight/message/event/aggregation"
        "?customAggregationUnit=spring&from=20261101&to=20261130",
        f"{BASE}/v2/bot/insight/message/delivery?date=20261130",
        f"{BASE}/v2/bot/message/delivery/multicast?date=20261130",
        f"{BASE}/v2/bot/info",
    ]
    with pytest.raises(ValueError):
        await client.delivery_count("narrowcast", date(2026, 11, 30))


async def test_aggregation_unit_count(client: LineClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/v2/bot/message/aggregation/info", json={"numOfCustomAggregationUnits": 22}
    )
    assert await client.aggregation_unit_count() == 22


async def test_reads_retry_transient_errors(client: LineClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/bot/info", status_code=503)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/v2/bot/info")
    httpx_mock.add_response(url=f"{BASE}/v2/bot/info", json={"displayName": "Acme"})
    assert await client.bot_info() == {"displayName": "Acme"}


async def test_refused_read_raises_with_lines_reason(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/v2/bot/insight/message/event/aggregation?customAggregationUnit=u&from=20261101&to=20261231",
        status_code=400,
        json={"message": None, "key": None, "stacktrace": None, "code": None},
    )
    with pytest.raises(LineApiError) as caught:
        await client.unit_statistics("u", date(2026, 11, 1), date(2026, 12, 31))
    assert caught.value.status == 400 and caught.value.error_class is ErrorClass.PERMANENT
    assert "statistics of unit u" in str(caught.value) and "no reason given" in str(caught.value)


async def test_hourly_statistics_429_is_not_retried(
    client: LineClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=429, json={"message": RATE_LIMIT_MESSAGE})
    with pytest.raises(LineApiError) as caught:
        await client.insight_deliveries(date(2026, 11, 30))
    assert caught.value.status == 429 and caught.value.rate_limited
    assert len(httpx_mock.get_requests()) == 1


async def test_local_hourly_allowance_refuses_without_sending(
    token: str, httpx_mock: HTTPXMock
) -> None:
    limiter = RateLimiter({"insight_unit_statistics": Limit(1, 3600.0)})
    httpx_mock.add_response(json={"overview": {}, "messages": [], "clicks": []})
    async with LineClient(
        BASE, token_env=TOKEN_ENV, limiter=limiter, transport=make_transport("httpx")
    ) as line:
        await line.unit_statistics("u", date(2026, 11, 1), date(2026, 11, 2))
        with pytest.raises(LineApiError) as caught:
            await line.unit_statistics("u", date(2026, 11, 1), date(2026, 11, 2))
    assert caught.value.rate_limited and "per hour" in str(caught.value)
    assert len(httpx_mock.get_requests()) == 1


# --- secrets ------------------------------------------------------------------------------


async def test_the_token_is_in_no_repr_exception_or_log_record(
    client: LineClient, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(url=PUSH, status_code=401, json={"message": "Authentication failed"})
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=PUSH)
    httpx_mock.add_response(url=f"{BASE}/v2/bot/info", status_code=403, json={"message": "no"})
    outcomes: list[object] = [await push(client), await push(client)]
    with pytest.raises(LineApiError) as caught:
        await client.bot_info()
    outcomes += [caught.value, caught.value.result, client]
    for outcome in outcomes:
        assert SECRET not in repr(outcome) and SECRET not in str(outcome)
    assert caplog.records, "the client and httpx log at debug level"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)


def test_line_date_is_utc_plus_9() -> None:
    assert line_date(datetime(2026, 11, 30, 15, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert line_date(datetime(2026, 11, 30, 14, 59)) == date(2026, 11, 30)


# --- the default transport against a real socket ----------------------------------------


@contextlib.asynccontextmanager
async def serving_pushes(handlers: Mapping[str, Callable[..., Any]]) -> AsyncIterator[str]:
    """A loopback aiohttp server answering `POST /<prefix>/v2/bot/message/push` with
    `handlers[prefix]`; yields its base URL."""
    from aiohttp import web

    app = web.Application()
    for prefix, handler in handlers.items():
        app.router.add_post(f"/{prefix}/v2/bot/message/push", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    """A loopback server that answers the way no LINE should: gzip, huge, slow, cut off."""
    import gzip

    from aiohttp import web

    async def compressed(request: web.Request) -> web.Response:
        body = gzip.compress(orjson.dumps({"message": "squeezed"}))
        return web.Response(
            body=body,
            status=400,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 1024 * 1024)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({})

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"sent')
        assert request.transport is not None
        request.transport.close()
        return response

    async def ok(request: web.Request) -> web.Response:
        return web.json_response(
            {"sentMessages": [{"id": "1", "quoteToken": "q"}]},
            headers={"X-Line-Request-Id": "abc"},
        )

    handlers = {"gzip": compressed, "huge": huge, "slow": slow, "cut": cut, "ok": ok}
    async with serving_pushes(handlers) as base:
        yield base


@pytest.mark.parametrize(
    ("prefix", "status", "error_class", "timed_out"),
    [
        ("ok", 200, ErrorClass.ACCEPTED, False),
        ("gzip", 400, ErrorClass.PERMANENT, False),
        ("huge", 0, ErrorClass.TRANSIENT, False),
        ("slow", 0, ErrorClass.TRANSIENT, True),
        ("cut", 0, ErrorClass.TRANSIENT, False),
    ],
)
async def test_default_transport_survives_odd_servers(
    odd_server: str, prefix: str, status: int, error_class: ErrorClass, timed_out: bool
) -> None:
    async with LineClient(f"{odd_server}/{prefix}", timeout=0.5) as line:
        result = await push(line)
    assert (result.status, result.error_class, result.timed_out) == (status, error_class, timed_out)
    if prefix == "gzip":
        assert result.message == "squeezed"
    if prefix == "ok":
        assert result.request_id == "abc" and result.sent_messages == (
            {"id": "1", "quoteToken": "q"},
        )
