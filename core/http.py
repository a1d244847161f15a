"""HTTP transports for the LINE clients.

httpx's own async pool served 300-900 requests/s to a loopback server on our machines, below
LINE's 2,000 pushes per second; httpx on aiohttp's connection pool (`httpx-aiohttp`) keeps the
httpx API (and pytest-httpx in tests) and serves about 2,000/s. `bench/bench_client.py` measures
both against a bare aiohttp loop.
"""

from __future__ import annotations

from typing import Literal

import httpx
from httpx_aiohttp import AiohttpTransport

TransportKind = Literal["aiohttp", "httpx"]
DEFAULT_MAX_CONNECTIONS = 256
KEEPALIVE_S = 30.0


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
        return AiohttpTransport(limits=limits, trust_env=True)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=True)
    raise ValueError(f"unknown transport {kind!r}: expected 'aiohttp' or 'httpx'")
