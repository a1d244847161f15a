"""The sandbox's stand-in for the LINE Conversion API (`POST /v1/{tag_id}/events`).

It answers as LINE documents: 202 when every event is acceptable; 400 when one is not, and
then the whole batch is discarded (validation stops at the first bad event); 400 for
`Transfer-Encoding: chunked`; 401 without `X-Line-TagAccessToken`. Events are checked with the
rules `core.capi` applies before sending (`check_wire_event`), and accepted events are
deduplicated by `event_name` + `deduplication_key` per tag, as LINE does.

Faults from `SandboxSpec.faults` that apply to `capi` (see `Fault.applies_to`) are honoured with
the sandbox's own `FaultEngine`: `latency`, `unauthorized`, `forbidden`, `rate_limit`,
`fail_first`, `random_5xx`, `permanent_400` (a batch with an event whose user fields name one of
`users`), and `lost_answer`: the batch is recorded, then the answer is lost (the connection
drops) or, with a `status`, that status comes back: LINE's own "a 500 may have accepted some
events already". Deduplication makes the client's retry harmless, as with LINE.

`GET /_sandbox/capi` shows what arrived.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from core.capi import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    EventBuilder,
    check_wire_event,
)
from core.sandbox.faults import Fault, FaultEngine, SandboxSpec

KEEP_EVENTS = 10_000
"""Accepted events kept for introspection; beyond this only their dedup keys are kept."""
KEEP_RECORDS = 10_000
ENDPOINT = "capi"

_CHANNEL_ID = re.compile(r"[0-9]+")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CapiState:
    """What the sandbox's Conversion API received and accepted."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    """One summary per accepted batch: tag_id, channel_id, events, new, duplicates, at."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Accepted, deduplicated events (the first `KEEP_EVENTS`), as LINE's JSON."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request: tag_id, status, events, content_length (no token, no event data)."""
    faults: list[Fault] = field(default_factory=list)
    clock: Callable[[], datetime] = _utc_now
    accepted_events: int = 0
    duplicates: int = 0
    refused_batches: int = 0
    request_count: int = 0
    _keys: set[int] = field(default_factory=set)
    _engine: FaultEngine | None = None
    _engine_faults: list[Fault] | None = None

    @property
    def engine(self) -> FaultEngine:
        """The fault engine for `faults`, rebuilt when the list is replaced."""
        if self._engine is None or self._engine_faults is not self.faults:
            self._engine = FaultEngine(SandboxSpec(faults=list(self.faults)))
            self._engine_faults = self.faults
        return self._engine

    def record(self, tag_id: str, channel_id: str | None, events: list[Any]) -> dict[str, Any]:
        new = duplicates = 0
        for item in events:
            event = item["event"]
            key = hash((tag_id, event.get("event_name", ""), event["deduplication_key"]))
            if key in self._keys:
                duplicates += 1
                continue
            self._keys.add(key)
            new += 1
            if len(self.events) < KEEP_EVENTS:
                self.events.append(item)
        self.accepted_events += new
        self.duplicates += duplicates
        summary = {
            "tag_id": tag_id,
            "channel_id": channel_id,
            "events": len(events),
            "new": new,
            "duplicates": duplicates,
            "at": self.clock().isoformat(),
        }
        if len(self.batches) < KEEP_RECORDS:
            self.batches.append(summary)
        return summary


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> Response:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return Response(orjson.dumps(body), status, media_type="application/json")


def _user_values(events: list[Any]) -> set[str]:
    values: set[str] = set()
    for item in events:
        user = item.get("user") if isinstance(item, dict) else None
        if isinstance(user, dict):
            values.update(v for v in user.values() if isinstance(v, str))
    return values


def capi_routes(state: CapiState) -> list[BaseRoute]:
    """Routes mounted into the sandbox app."""

    def log(tag_id: str, status: int, events: int, length: int) -> None:
        state.request_count += 1
        if len(state.requests) < KEEP_RECORDS:
            state.requests.append(
                {"tag_id": tag_id, "status": status, "events": events, "content_length": length}
            )

    async def events(request: Request) -> Response:
        tag_id = request.path_params["tag_id"]
        length = int(request.headers.get("content-length") or 0)
        engine = state.engine
        delay = engine.latency_s(ENDPOINT)
        if delay:
            await asyncio.sleep(delay)
        refusal = engine.auth_refusal(ENDPOINT)
        if refusal is not None:
            log(tag_id, refusal.status, 0, length)
            return _error(refusal.status, f"Authentication failed (sandbox fault {refusal.fault})")
        if engine.rate_limited(ENDPOINT):
            log(tag_id, 429, 0, length)
            return _error(429, "The API rate limit has been exceeded. Try again later.")
        refusal = engine.failure(ENDPOINT)
        if refusal is not None:
            log(tag_id, refusal.status, 0, length)
            return _error(refusal.status, f"Internal error (sandbox fault {refusal.fault})")
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            log(tag_id, 400, 0, length)
            return _error(400, "Transfer-Encoding: chunked is not supported; send Content-Length")
        if not request.headers.get("x-line-tagaccesstoken"):
            log(tag_id, 401, 0, length)
            return _error(401, "Authentication failed: X-Line-TagAccessToken is missing")
        if length > MAX_BODY_BYTES:
            log(tag_id, 413, 0, length)
            return _error(413, f"The request body is over {MAX_BODY_BYTES} bytes")
        channel_id = request.headers.get("x-line-channelid")
        if channel_id is not None and not _CHANNEL_ID.fullmatch(channel_id):
            log(tag_id, 400, 0, length)
            return _error(400, "X-Line-ChannelID must be digits")
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log(tag_id, 400, 0, len(raw))
            return _error(400, "The request body could not be parsed as JSON")
        if type(body) is not list or not 1 <= len(body) <= MAX_EVENTS_PER_REQUEST:
            log(tag_id, 400, 0, len(raw))
            return _error(
                400, f"The body must be a JSON array of 1 to {MAX_EVENTS_PER_REQUEST} events"
            )
        builder = EventBuilder(now=state.clock(), channel_id=channel_id, wire=True)
        for index, item in enumerate(body):
            problems = check_wire_event(item, builder, prefix=f"[{index}].")
            if problems:
                state.refused_batches += 1
                log(tag_id, 400, len(body), len(raw))
                details = [{"property": where, "message": why} for where, why in problems]
                return _error(400, "The request has an invalid event", details)
        if engine.refused_recipient(ENDPOINT, sorted(_user_values(body))) is not None:
            state.refused_batches += 1
            log(tag_id, 400, len(body), len(raw))
            return _error(400, "The request has an invalid event (sandbox fault permanent_400)")
        lost = engine.lost_answer(ENDPOINT)
        state.record(tag_id, channel_id, body)
        if lost is not None:
            log(tag_id, lost.status, len(body), len(raw))
            if lost.status:
                return _error(lost.status, "Internal error (sandbox fault lost_answer)")
            return _LostAnswer()
        log(tag_id, 202, len(body), len(raw))
        return Response(status_code=202)

    async def introspect(request: Request) -> Response:
        try:
            limit = max(0, int(request.query_params.get("limit", "100")))
        except ValueError:
            limit = 100
        document = {
            "requests": state.request_count,
            "accepted_events": state.accepted_events,
            "duplicates": state.duplicates,
            "refused_batches": state.refused_batches,
            "batches": state.batches[-1000:],
            "events": state.events[:limit],
        }
        return Response(orjson.dumps(document), 200, media_type="application/json")

    return [
        Route("/v1/{tag_id}/events", events, methods=["POST"]),
        Route("/_sandbox/capi", introspect, methods=["GET"]),
    ]


class _LostAnswer(Response):
    """Starts a 202, then loses it: the client sees a timeout although the batch was taken."""

    def __init__(self) -> None:
        super().__init__(status_code=202)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from core.sandbox.app import AnswerLost

        await send({"type": "http.response.start", "status": 202, "headers": self.raw_headers})
        raise AnswerLost("the sandbox accepted the batch and lost the answer (lost_answer)")
