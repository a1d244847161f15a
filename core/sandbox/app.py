"""The LINE sandbox as an ASGI app: it answers like LINE's Messaging API.

It runs in-process by default (httpx's ASGI transport, no port) and `lcc sandbox` serves it over
HTTP on loopback.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.sandbox.capi import CapiState, capi_routes
from core.sandbox.faults import SandboxSpec

RETRY_KEY_TTL_S = 24 * 3600


@dataclass
class SandboxState:
    """What the sandbox remembers: accepted retry keys, deliveries, requests received."""

    spec: SandboxSpec = field(default_factory=SandboxSpec)
    accepted: dict[str, tuple[float, str]] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    capi: CapiState = field(default_factory=CapiState)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def create_app(state: SandboxState | None = None) -> Starlette:
    state = state or SandboxState()

    async def push(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = {"x-line-request-id": request_id}
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json(400, {"message": "The request body could not be parsed as JSON"}, headers)
        retry_key = request.headers.get("x-line-retry-key")
        state.requests.append({"path": "/v2/bot/message/push", "retry_key": retry_key})
        now = time.time()
        if retry_key:
            seen = state.accepted.get(retry_key)
            if seen and now - seen[0] < RETRY_KEY_TTL_S:
                headers["x-line-accepted-request-id"] = seen[1]
                return _json(409, {"message": "The retry key is already accepted"}, headers)
        to = body.get("to")
        messages = body.get("messages") or []
        if not isinstance(to, str) or not 1 <= len(messages) <= 5:
            return _json(400, {"message": "The request body has 1 error(s)"}, headers)
        if retry_key:
            state.accepted[retry_key] = (now, request_id)
        state.deliveries[to] = state.deliveries.get(to, 0) + 1
        sent = [
            {"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex} for _ in messages
        ]
        return _json(200, {"sentMessages": sent}, headers)

    async def deliveries(request: Request) -> Response:
        return _json(200, {"deliveries": state.deliveries})

    async def requests(request: Request) -> Response:
        return _json(200, {"requests": state.requests})

    return Starlette(
        routes=[
            Route("/v2/bot/message/push", push, methods=["POST"]),
            Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
            Route("/_sandbox/requests", requests, methods=["GET"]),
            *capi_routes(state.capi),
        ]
    )
