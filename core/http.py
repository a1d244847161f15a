"""HTTP for the LINE clients: a lean aiohttp path for real bases, httpx transports for the rest.

httpx's own async pool served 300-900 requests/s to a loopback server on our machines, below
LINE's 2,000 pushes per second. `AiohttpWire` drives an `aiohttp.ClientSession` directly: the
path `LineClient` takes against a real http(s) base, within a few percent of a bare aiohttp
loop's CPU per request. httpx transports (`make_transport`) stay for what needs httpx's API:
pytest-httpx in tests, the in-process sandbox (`ASGITransport`), and callers that pass their own.
`bench/bench_client.py` measures both against a bare aiohttp loop.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDictProxy
from yarl import URL

TransportKind = Literal["aiohttp", "httpx"]
DEFAULT_MAX_CONNECTIONS = 256
KEEPALIVE_S = 30.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""LINE's answers are small JSON documents; anything far larger is hostile, not an answer."""
DNS_CACHE_S = 60


class AnswerTooLarge(aiohttp.ClientPayloadError):
    """An answer past `MAX_ANSWER_BYTES` (after decompression): refused, not read."""


@dataclass(frozen=True, slots=True)
class WireAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    """Case-insensitive, as received (`Content-Encoding` included)."""
    content: bytes
    """The body, decompressed."""


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context per process: building one loads the system's certificates, 20-40 ms
    of CPU that every client (a launch's quota check, each delivery) paid again."""
    return httpx.create_ssl_context(trust_env=True)


class AiohttpWire:
    """One `aiohttp.ClientSession` per client, used the way a bare aiohttp loop uses it.

    The session is made on first use (it binds to the running loop) with a connector of
    `max_connections` kept-alive connections, `timeout` seconds for connecting, waiting for a
    connection and each read (no total: a slow but live LINE is waited for, as before), no
    cookie jar (LINE sets none), no redirects, and TLS verified as httpx verifies it
    (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured, else certifi's bundle). Proxy variables are not
    read: aiohttp looks them up in a thread per request when asked to.

    `request` raises aiohttp's exceptions (`TimeoutError` subclasses for timeouts) and
    `AnswerTooLarge`; the caller turns them into results.
    """

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: float = 30.0,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=0,
            keepalive_timeout=self.keepalive_s,
            ttl_dns_cache=DNS_CACHE_S,
            ssl=_ssl_context(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            trust_env=False,
        )
        return self._session

    async def request(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None
    ) -> WireAnswer:
        session = self._session
        if session is None or session.closed:
            session = self._open()
        async with session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            length = answer.content_length
            if (
                length is not None
                and length <= MAX_ANSWER_BYTES
                and "Content-Encoding" not in answer.headers
            ):
                content = await answer.read()
            else:
                content = await _read_capped(answer)
            return WireAnswer(answer.status, answer.headers, content)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


async def _read_capped(answer: aiohttp.ClientResponse) -> bytes:
    """The body of an answer of unknown or compressed size, refused past `MAX_ANSWER_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
