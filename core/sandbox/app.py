"""The LINE sandbox as an ASGI app: it answers like LINE's Messaging API.

It runs in-process by default (httpx's ASGI transport, no port) and `lcc sandbox` serves it over
HTTP on loopback. It keeps LINE's rules where a sender can trip over them: 1-5 valid messages,
1-500 multicast recipients, retry keys remembered for 24 hours (409 with
`x-line-accepted-request-id` on a repeat), per-token rate limits, the monthly quota counted as
LINE counts it (recipients x 1 per request), and LINE's error bodies. Configured faults
(`core.sandbox.faults`) strike in between. `/_sandbox/` shows what arrived and what was
delivered, the evidence that every recipient got a campaign exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.retry import MONTHLY_LIMIT_MESSAGE, RATE_LIMIT_MESSAGE, RETRY_KEY_ACCEPTED_MESSAGE
from core.sandbox.capi import capi_routes
from core.sandbox.faults import Fault, Refusal, SandboxSpec
from core.sandbox.insight import PRIVACY_THRESHOLD, unit_statistics
from core.sandbox.state import RETRY_KEY_TTL_S, SandboxState, day_start

__all__ = ["RETRY_KEY_TTL_S", "AnswerLost", "SandboxState", "create_app", "sandbox_transport"]

MAX_BODY_BYTES = 2 * 1024 * 1024
MULTICAST_MAX = 500
STATISTICS_MAX_DAYS = 30
INSIGHT_SINCE = date(2017, 3, 1)

UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PUSH_TO = re.compile(r"^[UCR][0-9a-f]{32}$")
USER_ID = re.compile(r"^U[0-9a-f]{32}$")
UNIT_NAME = re.compile(r"^[a-zA-Z0-9_]{1,30}$")
DATE_PARAM = re.compile(r"^\d{8}$")

UNAUTHORIZED_MESSAGE = (
    "Authentication failed due to the following reason: invalid token. "
    "Confirm that the access token in the authorization header is valid."
)
FORBIDDEN_MESSAGE = "Access to this API is not available for your account"
FAILED_TO_SEND = "Failed to send messages"
SERVER_ERROR_MESSAGE = "An error occurred in the server"
ODD_400_BODY = {"message": None, "key": None, "stacktrace": None, "code": None}
"""What LINE documents for a refused per-unit statistics request: nothing useful."""

VALIDATE_KINDS = ("push", "multicast", "broadcast", "narrowcast", "reply")
DELIVERY_KINDS = ("push", "multicast", "broadcast", "reply")
SEND_KINDS = frozenset({"push", "multicast"})

_FAULTS_LIST: TypeAdapter[list[Fault]] = TypeAdapter(list[Fault])


class AnswerLost(httpx.ReadTimeout):
    """Raised by the app after accepting a request whose answer a fault loses.

    In-process (httpx's ASGI transport) the client sees it as the read timeout it stands for;
    under uvicorn the connection drops after the status line, mid-answer.
    """


class _Answer(Exception):
    """Stop handling the request and answer this (LINE's error bodies)."""

    def __init__(
        self, status: int, body: Any, *, headers: dict[str, str] | None = None, outcome: str = ""
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.outcome = outcome or "refused"


class _DroppedAnswer(Response):
    """Starts a 200 answer, then loses it (the `lost_answer` fault without a status)."""

    def __init__(self) -> None:
        super().__init__(b"{}", 200, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        raise AnswerLost("the sandbox accepted the request and lost the answer (lost_answer)")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _body_errors(details: list[dict[str, str]]) -> _Answer:
    return _Answer(
        400, {"message": f"The request body has {len(details)} error(s)", "details": details}
    )


def _token_key(request: Request) -> str:
    """Rate limits are per bearer token; keep only a fingerprint of it, never the token."""
    authorization = request.headers.get("authorization", "")
    return hashlib.sha256(authorization.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4096)
def _message_details(messages_json: bytes) -> tuple[tuple[str, str], ...]:
    """The same rules as `core` (validation), memoised: a campaign repeats its bundle a lot."""
    from core.validation import message_issues

    issues = message_issues(orjson.loads(messages_json))
    return tuple((issue.message, issue.field) for issue in issues)


def _messages_problems(messages: Any) -> list[dict[str, str]]:
    try:
        key = orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return [{"message": "must be an array of message objects", "property": "messages"}]
    return [{"message": message, "property": field} for message, field in _message_details(key)]


def _parse_day(value: str | None) -> date | None:
    if value is None or not DATE_PARAM.match(value):
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


class _Sandbox:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._message_ids = itertools.count(461230966842064897)

    # --- the wrapper every Messaging API route goes through --------------------------------

    def api(
        self,
        name: str,
        handler: Callable[[Request, dict[str, Any]], Awaitable[Response]],
        *,
        send_kind: str | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            fault_endpoint = send_kind or name
            state = self.state
            request_id = str(uuid.uuid4())
            entry: dict[str, Any] = {
                "at": state.clock(),
                "method": request.method,
                "path": request.scope["path"],
                "endpoint": name,
                "retry_key": request.headers.get("x-line-retry-key"),
                "authorized": "authorization" in request.headers,
                "request_id": request_id,
                "fault": None,
            }
            try:
                await self._guard(request, name, fault_endpoint, entry)
                response = await handler(request, entry)
                ok = response.status_code < 300
                entry.setdefault("outcome", "accepted" if ok else "answered")
            except _Answer as answer:
                response = _json(answer.status, answer.body, answer.headers)
                entry["outcome"] = answer.outcome
            response.headers["x-line-request-id"] = request_id
            entry["status"] = response.status_code
            state.log_request(entry)
            return response

        return route

    async def _guard(
        self, request: Request, name: str, fault_endpoint: str, entry: dict[str, Any]
    ) -> None:
        state = self.state
        faults = state.faults
        delay = faults.latency_s(fault_endpoint)
        if delay > 0:
            await asyncio.sleep(delay)
        refusal = faults.auth_refusal(fault_endpoint)
        if refusal is not None:
            entry["fault"] = refusal.fault
            message = UNAUTHORIZED_MESSAGE if refusal.status == 401 else FORBIDDEN_MESSAGE
            raise _Answer(refusal.status, {"message": message})
        if state.enforce_rate_limits and state.limiter.try_acquire(_token_key(request), name) > 0:
            raise _Answer(429, {"message": RATE_LIMIT_MESSAGE})
        if faults.rate_limited(fault_endpoint):
            entry["fault"] = "rate_limit"
            raise _Answer(429, {"message": RATE_LIMIT_MESSAGE})
        if fault_endpoint not in SEND_KINDS and "x-line-retry-key" in request.headers:
            raise _Answer(
                400, {"message": "The X-Line-Retry-Key header is not supported by this endpoint"}
            )

    async def _json_body(self, request: Request) -> Any:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            raise _Answer(
                415, {"message": f"The content type, {content_type or '(none)'}, is not supported"}
            )
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise _Answer(413, {"message": "Request Entity Too Large"})
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _Answer(
                400,
                {
                    "message": "The request body could not be parsed as JSON "
                    f"(line: {exc.lineno}, column: {exc.colno})"
                },
            ) from None
        if not isinstance(body, dict):
            raise _body_errors([{"message": "must be a JSON object", "property": ""}])
        return body

    # --- sends ----------------------------------------------------------------------------

    def _recipients(self, body: dict[str, Any], kind: str) -> list[str]:
        to = body.get("to")
        if kind == "push":
            if not isinstance(to, str) or not to:
                raise _body_errors([{"message": "May not be empty", "property": "to"}])
            if not PUSH_TO.match(to):
                raise _Answer(
                    400,
                    {
                        "message": "The property, 'to', in the request body is invalid "
                        "(line: -, column: -)"
                    },
                )
            return [to]
        if not isinstance(to, list) or not all(isinstance(user, str) for user in to):
            raise _body_errors([{"message": "must be an array of user IDs", "property": "to"}])
        if not 1 <= len(to) <= MULTICAST_MAX:
            raise _body_errors(
                [{"message": f"Size must be between 1 and {MULTICAST_MAX}", "property": "to"}]
            )
        if not all(map(USER_ID.match, to)):
            index = next(i for i, user in enumerate(to) if not USER_ID.match(user))
            raise _Answer(
                400,
                {
                    "message": f"The property, 'to[{index}]', in the request body is invalid "
                    "(line: -, column: -)"
                },
            )
        return list(dict.fromkeys(to))

    @staticmethod
    def _options_problems(body: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
        problems: list[dict[str, str]] = []
        disabled = body.get("notificationDisabled")
        if disabled is not None and not isinstance(disabled, bool):
            problems.append({"message": "must be a boolean", "property": "notificationDisabled"})
        units = body.get("customAggregationUnits")
        unit: str | None = None
        where = "customAggregationUnits"
        if units is not None:
            if not isinstance(units, list):
                problems.append({"message": "must be an array", "property": where})
            elif len(units) > 1:
                problems.append({"message": "Size must be between 0 and 1", "property": where})
            elif units:
                name = units[0]
                if not isinstance(name, str) or not UNIT_NAME.match(name):
                    problems.append(
                        {
                            "message": "must match ^[a-zA-Z0-9_]{1,30}$",
                            "property": "customAggregationUnits[0]",
                        }
                    )
                else:
                    unit = name
        return problems, unit

    def send_handler(self, kind: str) -> Callable[[Request, dict[str, Any]], Awaitable[Response]]:
        async def handler(request: Request, entry: dict[str, Any]) -> Response:
            state = self.state
            faults = state.faults
            body = await self._json_body(request)
            key = request.headers.get("x-line-retry-key")
            if key is not None and not UUID_PATTERN.match(key):
                raise _Answer(
                    400,
                    {
                        "message": "The retry key is invalid: X-Line-Retry-Key must be a UUID "
                        "in hexadecimal format"
                    },
                )
            if key:
                seen = state.accepted_key(key)
                if seen is not None:
                    answer: dict[str, Any] = {"message": RETRY_KEY_ACCEPTED_MESSAGE}
                    if kind == "push" and seen.sent_messages is not None:
                        answer["sentMessages"] = seen.sent_messages
                    raise _Answer(
                        409,
                        answer,
                        headers={"x-line-accepted-request-id": seen.request_id},
                        outcome="already_accepted",
                    )
            recipients = self._recipients(body, kind)
            if kind == "push":
                entry["to"] = recipients[0]
            entry["recipients"] = len(recipients)
            messages = body.get("messages")
            problems = _messages_problems(messages)
            options, unit = self._options_problems(body)
            problems += options
            if problems:
                raise _body_errors(problems)
            assert isinstance(messages, list)
            if faults.refused_recipient(kind, recipients) is not None:
                entry["fault"] = "permanent_400"
                raise _Answer(400, {"message": FAILED_TO_SEND})
            limit = state.monthly_limit(kind)
            if limit is not None and state.month_usage() + len(recipients) > limit:
                raise _Answer(429, {"message": MONTHLY_LIMIT_MESSAGE})
            failure = faults.failure(kind)
            if failure is not None:
                entry["fault"] = failure.fault
                raise _Answer(failure.status, self._failure_body(failure))
            request_id = entry["request_id"]
            sent = (
                [
                    {"id": str(next(self._message_ids)), "quoteToken": os.urandom(16).hex()}
                    for _ in messages
                ]
                if kind == "push"
                else None
            )
            state.record_acceptance(
                endpoint=kind,
                recipients=recipients,
                messages=messages,
                unit=unit,
                retry_key=key,
                request_id=request_id,
                sent_messages=sent,
            )
            lost = faults.lost_answer(kind)
            if lost is not None:
                entry["fault"] = "lost_answer"
                entry["outcome"] = "accepted_answer_lost"
                if lost.status:
                    return _json(lost.status, self._failure_body(lost))
                return _DroppedAnswer()
            return _json(200, {"sentMessages": sent} if sent is not None else {})

        return handler

    @staticmethod
    def _failure_body(failure: Refusal) -> dict[str, Any]:
        if failure.status >= 500:
            return {"message": SERVER_ERROR_MESSAGE}
        if failure.status == 429:
            return {"message": RATE_LIMIT_MESSAGE}
        if failure.status == 401:
            return {"message": UNAUTHORIZED_MESSAGE}
        if failure.status == 403:
            return {"message": FORBIDDEN_MESSAGE}
        return {"message": FAILED_TO_SEND}

    async def validate(self, request: Request, entry: dict[str, Any]) -> Response:
        body = await self._json_body(request)
        problems = _messages_problems(body.get("messages"))
        if problems:
            raise _body_errors(problems)
        return _json(200, {})

    # --- reads ----------------------------------------------------------------------------

    async def quota(self, request: Request, entry: dict[str, Any]) -> Response:
        quota = self.state.spec.monthly_quota
        if quota is None:
            return _json(200, {"type": "none"})
        return _json(200, {"type": "limited", "value": quota})

    async def consumption(self, request: Request, entry: dict[str, Any]) -> Response:
        return _json(200, {"totalUsage": self.state.month_usage()})

    async def bot_info(self, request: Request, entry: dict[str, Any]) -> Response:
        fingerprint = _token_key(request)
        return _json(
            200,
            {
                "userId": "U" + hashlib.md5(fingerprint.encode()).hexdigest(),
                "basicId": "@" + fingerprint[:8],
                "displayName": "LINE Sandbox",
                "chatMode": "bot",
                "markAsReadMode": "auto",
            },
        )

    async def aggregation_info(self, request: Request, entry: dict[str, Any]) -> Response:
        return _json(200, {"numOfCustomAggregationUnits": self.state.units_this_month()})

    async def unit_statistics(self, request: Request, entry: dict[str, Any]) -> Response:
        params = request.query_params
        unit = params.get("customAggregationUnit")
        start, end = _parse_day(params.get("from")), _parse_day(params.get("to"))
        if (
            unit is None
            or not UNIT_NAME.match(unit)
            or start is None
            or end is None
            or end < start
            or (end - start).days > STATISTICS_MAX_DAYS
        ):
            raise _Answer(400, ODD_400_BODY)
        deliveries = self.state.unit_deliveries(unit, start, end)
        return _json(200, unit_statistics(unit, deliveries))

    def _day(self, request: Request) -> date:
        day = _parse_day(request.query_params.get("date"))
        if day is None:
            raise _body_errors([{"message": "must be yyyyMMdd (UTC+9)", "property": "date"}])
        return day

    def _day_over(self, day: date) -> bool:
        return day_start(day + timedelta(days=1)) <= self.state.clock()

    async def insight_deliveries(self, request: Request, entry: dict[str, Any]) -> Response:
        day = self._day(request)
        if day < INSIGHT_SINCE:
            return _json(200, {"status": "out_of_service"})
        if not self._day_over(day):
            return _json(200, {"status": "unready"})
        counts = self.state.daily.get(day.strftime("%Y%m%d"), {})
        return _json(
            200,
            {
                "status": "ready",
                "broadcast": 0,
                "targeting": 0,
                "apiBroadcast": counts.get("broadcast", 0),
                "apiPush": counts.get("push", 0),
                "apiMulticast": counts.get("multicast", 0),
                "apiNarrowcast": counts.get("narrowcast", 0),
                "apiReply": counts.get("reply", 0),
            },
        )

    def delivery_count_handler(
        self, kind: str
    ) -> Callable[[Request, dict[str, Any]], Awaitable[Response]]:
        async def handler(request: Request, entry: dict[str, Any]) -> Response:
            day = self._day(request)
            if not self._day_over(day):
                return _json(200, {"status": "unready"})
            success = self.state.daily.get(day.strftime("%Y%m%d"), {}).get(kind, 0)
            if success < PRIVACY_THRESHOLD:
                return _json(200, {"status": "unavailable_for_privacy"})
            return _json(200, {"status": "ready", "success": success})

        return handler

    # --- introspection --------------------------------------------------------------------

    async def requests(self, request: Request) -> Response:
        entries = list(self.state.requests)
        limit = request.query_params.get("limit")
        if limit is not None and limit.isdigit():
            entries = entries[-int(limit) :] if int(limit) else []
        return _json(200, {"total": self.state.request_count, "requests": entries})

    async def deliveries(self, request: Request) -> Response:
        state = self.state
        user = request.query_params.get("user")
        records = state.deliveries
        if user is not None:
            records = {user: records.get(user, [])}
        body: dict[str, Any] = {
            "recipients": len(state.deliveries),
            "total": sum(len(entries) for entries in state.deliveries.values()),
            "counts": {name: len(entries) for name, entries in records.items()},
        }
        if request.query_params.get("detail", "true").lower() not in ("0", "false", "no"):
            body["deliveries"] = records
        return _json(200, body)

    async def summary(self, request: Request) -> Response:
        return _json(200, self.state.summary())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return _json(200, self.state.summary())

    async def get_faults(self, request: Request) -> Response:
        return _json(200, self.state.spec.model_dump(mode="json"))

    async def set_faults(self, request: Request) -> Response:
        try:
            raw = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _json(400, {"message": f"not JSON (line: {exc.lineno}, column: {exc.colno})"})
        current = self.state.spec
        try:
            if isinstance(raw, list):
                spec = SandboxSpec(
                    faults=_FAULTS_LIST.validate_python(raw),
                    monthly_quota=current.monthly_quota,
                    seed=current.seed,
                )
            else:
                spec = SandboxSpec.model_validate(raw)
        except ValidationError as exc:
            details = [
                {
                    "message": error["msg"],
                    "property": ".".join(str(part) for part in error["loc"]) or "(top level)",
                }
                for error in exc.errors(include_url=False)
            ]
            return _json(400, _body_errors(details).body)
        self.state.set_spec(spec)
        return _json(200, spec.model_dump(mode="json"))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = "Not found" if status == 404 else "Method not allowed"
    return _json(status, {"message": message})


def create_app(state: SandboxState | None = None) -> Starlette:
    state = state if state is not None else SandboxState()
    sandbox = _Sandbox(state)
    api = sandbox.api
    routes = [
        Route(
            "/v2/bot/message/push",
            api("push", sandbox.send_handler("push"), send_kind="push"),
            methods=["POST"],
        ),
        Route(
            "/v2/bot/message/multicast",
            api("multicast", sandbox.send_handler("multicast"), send_kind="multicast"),
            methods=["POST"],
        ),
        *(
            Route(
                f"/v2/bot/message/validate/{kind}",
                api(f"validate_{kind}", sandbox.validate),
                methods=["POST"],
            )
            for kind in VALIDATE_KINDS
        ),
        Route("/v2/bot/message/quota", api("quota", sandbox.quota), methods=["GET"]),
        Route(
            "/v2/bot/message/quota/consumption",
            api("quota_consumption", sandbox.consumption),
            methods=["GET"],
        ),
        Route("/v2/bot/info", api("bot_info", sandbox.bot_info), methods=["GET"]),
        Route(
            "/v2/bot/insight/message/event/aggregation",
            api("insight_unit_statistics", sandbox.unit_statistics),
            methods=["GET"],
        ),
        Route(
            "/v2/bot/insight/message/delivery",
            api("insight_deliveries", sandbox.insight_deliveries),
            methods=["GET"],
        ),
        *(
            Route(
                f"/v2/bot/message/delivery/{kind}",
                api(f"delivery_{kind}", sandbox.delivery_count_handler(kind)),
                methods=["GET"],
            )
            for kind in DELIVERY_KINDS
        ),
        Route(
            "/v2/bot/message/aggregation/info",
            api("aggregation_info", sandbox.aggregation_info),
            methods=["GET"],
        ),
        Route("/_sandbox/requests", sandbox.requests, methods=["GET"]),
        Route("/_sandbox/deliveries", sandbox.deliveries, methods=["GET"]),
        Route("/_sandbox/state", sandbox.summary, methods=["GET"]),
        Route("/_sandbox/reset", sandbox.reset, methods=["POST"]),
        Route("/_sandbox/faults", sandbox.get_faults, methods=["GET"]),
        Route("/_sandbox/faults", sandbox.set_faults, methods=["POST"]),
        *capi_routes(state.capi),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.sandbox = state
    return app


def sandbox_transport(state: SandboxState) -> httpx.ASGITransport:
    """The in-process transport a `LineClient` uses to talk to the sandbox (no port)."""
    from core.sandbox.transport import SandboxTransport

    return SandboxTransport(app=create_app(state))
