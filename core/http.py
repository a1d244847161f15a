"""HTTP transports for the LINE clients.

httpx's own async pool served 300-900 requests/s to a loopback server on our machines, below
LINE's 2,000 pushes per second; httpx on aiohttp's connection pool (`httpx-aiohttp`) keeps the
httpx API (and pytest-httpx in tests) and serves about 2,000/s. `bench/bench_client.py` measures
it against a bare aiohttp loop.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

TransportKind = Literal["aiohttp", "httpx"]
DEFAULT_MAX_CONNECTIONS = 256
KEEPALIVE_S = 30.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""LINE's answers are small JSON documents; anything far larger is hostile, not an answer."""


class WholeAnswerTransport(AiohttpTransport):
    """`httpx_aiohttp.AiohttpTransport` for small JSON answers: read the body in one go.

    The parent streams every answer through httpx's chunk iterators and three context managers
    per chunk; for LINE's few-hundred-byte answers that bookkeeping cost about as much CPU as
    aiohttp's whole request. Same connection pool, timeouts and exception mapping.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        headers = [
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in request.headers.raw
        ]
        with map_aiohttp_exceptions():
            async with self.client.request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=True,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            ) as answer:
                chunks: list[bytes] = []
                size = 0
                async for chunk in answer.content.iter_any():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise httpx.RemoteProtocolError(
                            f"the answer is larger than {MAX_ANSWER_BYTES} bytes", request=request
                        )
                    chunks.append(chunk)
                content = b"".join(chunks)
                raw_headers = [
                    (key, value)
                    for key, value in answer.raw_headers
                    if key.lower() not in (b"content-encoding", b"transfer-encoding")
                ]
                return httpx.Response(
                    answer.status,
                    headers=raw_headers,
                    content=content,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )


def make_transport(
    kind: TransportKind | str = "aiohttp", *, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncBaseTransport:
    """`aiohttp` (fast, the default) or `httpx` (the one pytest-httpx intercepts).

    `max_connections` should match the caller's concurrency: a request beyond it waits for a free
    connection instead of opening one more.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_S,
    )
    if kind == "aiohttp":
        return WholeAnswerTransport(limits=limits, trust_env=True)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=True)
    raise ValueError(f"unknown transport {kind!r}: expected 'aiohttp' or 'httpx'")
