"""The aiohttp path `LineClient` takes against a real http(s) base, on a loopback server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from core.http import MAX_ANSWER_BYTES
from core.line_client import LineClient
from core.retry import ErrorClass, SendResult
from tests.core.test_line_client import serving_pushes

TEXT = [{"type": "textV2", "text": "hi"}]
USER = "U" + "0" * 32


async def _accepted(request: web.Request) -> web.Response:
    body = await request.json()
    assert request.headers["X-Line-Retry-Key"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer sekret"
    assert body["to"] == USER
    return web.json_response(
        {"sentMessages": [{"id": "1", "quoteToken": "q"}]},
        headers={"X-Line-Request-Id": " req-1 ", "X-Line-Accepted-Request-Id": "acc-0"},
    )


async def _huge(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await answer.prepare(request)
    chunk = b" " * 65536
    for _ in range(MAX_ANSWER_BYTES // len(chunk) + 2):
        await answer.write(chunk)
    await answer.write_eof()
    return answer


async def _gzip_bomb(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b" " * (MAX_ANSWER_BYTES + 1)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def _gzip_small(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b'{"message": "The request body has 1 error(s)"}'),
        status=400,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.5)
    return web.json_response({})


@pytest.fixture
async def base() -> AsyncIterator[str]:
    handlers = {
        "ok": _accepted,
        "huge": _huge,
        "bomb": _gzip_bomb,
        "bad": _gzip_small,
        "slow": _slow,
    }
    async with serving_pushes(handlers) as url:
        yield url


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCC_TEST_TOKEN", "sekret")


async def push(url: str, read_timeout: float = 2.0) -> SendResult:
    """One push through a client that requires the token (set by `token`)."""
    line = LineClient(url, token_env="LCC_TEST_TOKEN", require_token=True, timeout=read_timeout)
    async with line:
        return await line.push(USER, TEXT, retry_key="key-1")


async def test_an_accepted_push_carries_the_headers_and_reads_the_ids(base: str) -> None:
    result = await push(base + "/ok")
    assert result.accepted
    assert result.request_id == "req-1"
    assert result.accepted_request_id == "acc-0"


@pytest.mark.parametrize("path", ["/huge", "/bomb"])
async def test_an_answer_past_the_cap_is_refused_not_read(base: str, path: str) -> None:
    result = await push(base + path)
    assert not result.accepted
    assert result.error_class is ErrorClass.TRANSIENT
    assert result.status == 0


async def test_a_compressed_refusal_is_decompressed_and_permanent(base: str) -> None:
    result = await push(base + "/bad")
    assert result.status == 400
    assert result.error_class is ErrorClass.PERMANENT
    assert "1 error" in (result.message or "")


async def test_a_silent_server_times_out_as_a_transient_no_answer(base: str) -> None:
    result = await push(base + "/slow", read_timeout=0.3)
    assert result.status == 0
    assert result.timed_out
    assert result.error_class is ErrorClass.TRANSIENT


async def test_a_refused_connection_is_transient_and_names_no_token() -> None:
    result = await push("http://127.0.0.1:9")
    assert result.status == 0
    assert not result.timed_out
    assert result.error_class is ErrorClass.TRANSIENT
    assert "sekret" not in (result.message or "")
