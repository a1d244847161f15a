"""LINE Messaging API client (async, httpx).

The channel access token is read from `os.environ[token_env]` at the moment of each request and
goes only into that request's `Authorization` header: it is never kept on the client, logged,
shown, or put into a result or an exception. Sends carry the caller's `X-Line-Retry-Key`, so every
attempt of one logical request carries the same key and LINE executes it at most once.

Sends never raise for what LINE (or the network) answers: they return a `SendResult` whose
`error_class` says what to do next (`core.retry`). The other calls raise `LineApiError`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import aiohttp
import httpx
import orjson
from yarl import URL

from core.errors import LccError
from core.http import DEFAULT_MAX_CONNECTIONS, AiohttpWire, make_transport
from core.ratelimit import LINE_LIMITS, PER_SECOND, RateLimiter, RateLimitWait
from core.retry import (
    BackoffPolicy,
    ErrorClass,
    ErrorDetail,
    RetryPolicy,
    SendResult,
    classify,
    clean_header_value,
    parse_error_body,
    send_with_retries,
)

__all__ = [
    "SANDBOX_BASE_URL",
    "ErrorClass",
    "ErrorDetail",
    "LineApiError",
    "LineClient",
    "Quota",
    "SendResult",
    "is_sandbox_base",
    "line_date",
]

log = logging.getLogger(__name__)

LINE_API_BASE = "https://api.line.me"
SANDBOX_BASE_URL = "http://line-sandbox.invalid"
"""The in-process sandbox's base URL (a `.invalid` host can never reach a real server)."""

LINE_TZ = timezone(timedelta(hours=9))
"""LINE's `date`, `from` and `to` parameters are calendar days in UTC+9."""

MULTICAST_MAX = 500
VALIDATE_KINDS = ("push", "multicast", "broadcast", "narrowcast", "reply")
DELIVERY_KINDS = ("push", "multicast", "broadcast", "reply")
GET_POLICY = RetryPolicy(max_attempts=3, initial_backoff_s=0.5, max_backoff_s=4.0)
GET_MAX_WAIT_S = 30.0
"""A statistics call that would wait longer than this for LINE's hourly allowance fails instead."""


def line_date(moment: datetime) -> date:
    """The UTC+9 calendar day LINE files `moment` under."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LINE_TZ).date()


def is_sandbox_base(base_url: str) -> bool:
    """The in-process sandbox (`*.invalid`) or a loopback server (`lcc sandbox`)."""
    host = httpx.URL(base_url).host.strip("[]").lower()
    if host.endswith(".invalid") or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Quota:
    type: str
    """`none` (no limit) or `limited`."""
    value: int | None
    """Messages allowed this month when `limited`."""


class LineApiError(LccError):
    """A call other than a send that LINE refused or did not answer. The text holds no token."""

    def __init__(self, what: str, result: SendResult) -> None:
        self.what = what
        self.result = result
        self.status = result.status
        self.message = result.message
        self.details = result.details
        self.error_class = result.error_class
        self.request_id = result.request_id
        super().__init__(self.describe())

    @property
    def rate_limited(self) -> bool:
        return self.result.rate_limited or self.result.local_error == "rate_limited"

    def describe(self) -> str:
        if self.result.local_error:
            return f"{self.what}: {self.message}"
        if self.status == 0:
            return f"{self.what}: no answer from LINE ({self.message or 'connection failed'})"
        reason = self.message or "no reason given"
        extra = "".join(
            f"; {detail.property or '?'}: {detail.message or '?'}" for detail in self.details[:5]
        )
        return f"{self.what}: LINE answered {self.status}: {reason}{extra}"


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _line_ids(raw: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """`x-line-request-id` and `x-line-accepted-request-id`, whatever their case, in one pass
    over the raw headers (httpx's decoded view costs more than the rest of the answer)."""
    found: dict[bytes, bytes] = {}
    for key, value in raw:
        lowered = key.lower()
        if lowered in _ID_HEADERS:
            found[lowered] = value
    request_id, accepted_id = (
        clean_header_value(found[name].decode("latin-1")) if name in found else None
        for name in _ID_HEADERS
    )
    return request_id, accepted_id


_ID_HEADERS = (b"x-line-request-id", b"x-line-accepted-request-id")
_REQUEST_ID = "x-line-request-id"
_ACCEPTED_ID = "x-line-accepted-request-id"
_PLAIN_HEADERS = {"User-Agent": "lcc"}
_JSON_HEADERS = {"User-Agent": "lcc", "Content-Type": "application/json"}


def _no_answer(exc: BaseException) -> SendResult:
    cause = exc.__cause__
    if isinstance(exc, aiohttp.ClientError):
        timed_out = isinstance(exc, TimeoutError)  # aiohttp's timeouts are TimeoutErrors
    elif isinstance(cause, aiohttp.ClientError):
        # httpx-aiohttp maps every aiohttp connection error to a timeout; look underneath.
        timed_out = isinstance(cause, TimeoutError)
    else:
        timed_out = isinstance(exc, httpx.TimeoutException | TimeoutError)
    detail = str(exc).strip()[:200]
    name = type(exc).__name__
    return SendResult(
        status=0,
        error_class=ErrorClass.TRANSIENT,
        message=f"{name}: {detail}" if detail else name,
        timed_out=timed_out,
    )


_TRANSPORT_ERRORS = (
    httpx.HTTPError,
    httpx.StreamError,
    httpx.InvalidURL,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    ValueError,
)


class LineClient:
    """One channel's view of the Messaging API.

    `token_env` names the environment variable holding the channel access token. Against a real
    base it must be set and non-empty at each request, or the request is refused before it is
    sent (a fatal result naming the variable). The sandbox (`SANDBOX_BASE_URL`, or a loopback
    base such as `lcc sandbox` serves) takes any token or none; `require_token` overrides this.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token_env: str | None = None,
        channel: str = "default",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        require_token: bool | None = None,
        get_policy: BackoffPolicy = GET_POLICY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.channel = channel
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.require_token = (
            not is_sandbox_base(self.base_url) if require_token is None else require_token
        )
        self._get_policy = get_policy
        # Against a real http(s) base the client talks to aiohttp directly (`AiohttpWire`):
        # httpx's request and response models around aiohttp's cost about as much CPU as the
        # request itself. A given transport (pytest-httpx, the in-process sandbox) is driven
        # directly too: httpx.AsyncClient's per-request machinery (URL merging, cookies, auth
        # and redirect flows, event hooks) does not apply to LINE.
        self._transport: httpx.AsyncBaseTransport | None = transport
        self._wire: AiohttpWire | None = None
        if transport is None:
            if httpx.URL(self.base_url).scheme in ("http", "https"):
                self._wire = AiohttpWire(max_connections=max_connections, timeout=timeout)
            else:
                self._transport = make_transport(max_connections=max_connections)
        self._timeout = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        self._urls: dict[str, httpx.URL] = {}
        self._wire_urls: dict[str, URL] = {}

    def __repr__(self) -> str:
        return (
            f"LineClient(base_url={self.base_url!r}, token_env={self.token_env!r}, "
            f"channel={self.channel!r})"
        )

    async def __aenter__(self) -> LineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        if self._transport is not None:
            await self._transport.aclose()

    def _url(self, path: str, params: dict[str, str] | None) -> httpx.URL:
        if params:
            return httpx.URL(self.base_url + path, params=params)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        return url

    def _wire_url(self, path: str, params: dict[str, str] | None) -> URL:
        """The same URL as `_url`, as aiohttp takes it (the query encoded by httpx's rules)."""
        if params:
            return URL(str(self._url(path, params)), encoded=True)
        url = self._wire_urls.get(path)
        if url is None:
            url = self._wire_urls[path] = URL(str(self._url(path, None)), encoded=True)
        return url

    # --- the request ----------------------------------------------------------------------

    def _authorization(self) -> str | SendResult | None:
        """The Authorization header's value, read from the environment now (None: send none),
        or a refusal."""
        name = self.token_env
        token = os.environ.get(name) if name else None
        if token:
            return f"Bearer {token}"
        if not self.require_token:
            return None
        if name:
            why = (
                f"the environment variable {name} is not set or is empty; it must hold the "
                f"channel access token of {self.channel}"
            )
        else:
            why = (
                f"sender account {self.channel} names no token_env (the environment variable "
                "that holds its channel access token)"
            )
        return SendResult(
            status=0, error_class=ErrorClass.FATAL, message=why, local_error="missing_token"
        )

    async def _request(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        retry_key: str | None = None,
        max_wait_s: float | None = None,
    ) -> tuple[SendResult, Any]:
        authorization = self._authorization()
        if isinstance(authorization, SendResult):
            return authorization, None
        try:
            await self.limiter.acquire(self.channel, endpoint, max_wait_s=max_wait_s)
        except RateLimitWait as exc:
            refused = SendResult(
                status=0,
                error_class=ErrorClass.TRANSIENT,
                message=str(exc),
                local_error="rate_limited",
            )
            return refused, None
        content = orjson.dumps(body) if body is not None else None
        headers = (_JSON_HEADERS if content is not None else _PLAIN_HEADERS).copy()
        if authorization is not None:
            headers["Authorization"] = authorization
        if retry_key is not None:
            headers["X-Line-Retry-Key"] = retry_key
        wire = self._wire
        try:
            if wire is not None:
                answer = await wire.request(method, self._wire_url(path, params), headers, content)
                status, answer_headers, answer_body = answer.status, answer.headers, answer.content
                request_id = clean_header_value(answer_headers.get(_REQUEST_ID))
                accepted_id = clean_header_value(answer_headers.get(_ACCEPTED_ID))
            else:
                status, request_id, accepted_id, answer_body = await self._via_transport(
                    method, self._url(path, params), headers, content
                )
        except _TRANSPORT_ERRORS as exc:
            result = _no_answer(exc)
            log.debug("%s %s: no answer (%s)", method, path, result.message)
            return result, None
        return self._read(status, request_id, accepted_id, answer_body, endpoint)

    async def _via_transport(
        self, method: str, url: httpx.URL, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, str | None, str | None, bytes]:
        """One request through the httpx transport: (status, request id, accepted id, body)."""
        assert self._transport is not None
        request = httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": self._timeout}
        )
        response = await self._transport.handle_async_request(request)
        try:
            answer_body = await response.aread()
        finally:
            await response.aclose()
        request_id, accepted_id = _line_ids(response.headers.raw)
        return response.status_code, request_id, accepted_id, answer_body

    def _read(
        self,
        status: int,
        request_id: str | None,
        accepted_id: str | None,
        content: bytes,
        endpoint: str,
    ) -> tuple[SendResult, Any]:
        sends = endpoint in ("push", "multicast")
        if 200 <= status < 300:
            body = None if sends else _decode(content)  # a send's answer is read on demand
            message: str | None = None
            details: tuple[ErrorDetail, ...] = ()
        else:
            body = _decode(content)
            message, details = parse_error_body(body)
        error_class = classify(status, message, accepted_request_id=accepted_id)
        result = SendResult(
            status=status,
            error_class=error_class,
            request_id=request_id,
            accepted_request_id=accepted_id,
            message=message,
            details=details,
            push_answer=content if endpoint == "push" else b"",
        )
        if result.rate_limited:
            self.limiter.back_off(self.channel, endpoint)
        if not result.accepted:
            log.debug(
                "%s answered %s (%s), request id %s",
                endpoint,
                status,
                message or "no message",
                request_id,
            )
        return result, body

    # --- sends ----------------------------------------------------------------------------

    @staticmethod
    def _send_body(
        to: str | list[str],
        messages: list[dict[str, Any]] | orjson.Fragment,
        aggregation_unit: str | None,
        notification_disabled: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"to": to, "messages": messages}
        if notification_disabled:
            body["notificationDisabled"] = True
        if aggregation_unit:
            body["customAggregationUnits"] = [aggregation_unit]
        return body

    async def push(
        self,
        to: str,
        messages: list[dict[str, Any]] | orjson.Fragment,
        *,
        retry_key: str,
        aggregation_unit: str | None = None,
        notification_disabled: bool = False,
    ) -> SendResult:
        """`POST /v2/bot/message/push`: one recipient, 1-5 messages."""
        body = self._send_body(to, messages, aggregation_unit, notification_disabled)
        result, _ = await self._request(
            "POST", "/v2/bot/message/push", "push", body=body, retry_key=retry_key
        )
        return result

    async def multicast(
        self,
        to: Sequence[str],
        messages: list[dict[str, Any]] | orjson.Fragment,
        *,
        retry_key: str,
        aggregation_unit: str | None = None,
        notification_disabled: bool = False,
    ) -> SendResult:
        """`POST /v2/bot/message/multicast`: 1-500 user ids, the same 1-5 messages to each."""
        recipients = list(to)
        if not 1 <= len(recipients) <= MULTICAST_MAX:
            return SendResult(
                status=0,
                error_class=ErrorClass.PERMANENT,
                message=f"multicast takes 1 to {MULTICAST_MAX} user ids, got {len(recipients)}",
                local_error="invalid_request",
            )
        body = self._send_body(recipients, messages, aggregation_unit, notification_disabled)
        result, _ = await self._request(
            "POST", "/v2/bot/message/multicast", "multicast", body=body, retry_key=retry_key
        )
        return result

    async def validate(self, messages: list[dict[str, Any]], *, kind: str = "push") -> SendResult:
        """`POST /v2/bot/message/validate/{kind}`: would LINE take these messages? (no retry key:
        LINE refuses the header outside the sends)."""
        if kind not in VALIDATE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(VALIDATE_KINDS)}, got {kind!r}")
        result, _ = await self._request(
            "POST",
            f"/v2/bot/message/validate/{kind}",
            f"validate_{kind}",
            body={"messages": messages},
            max_wait_s=GET_MAX_WAIT_S,
        )
        return result

    # --- reads ----------------------------------------------------------------------------

    async def _get(
        self, what: str, path: str, endpoint: str, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        hourly = LINE_LIMITS.get(endpoint) is not None and LINE_LIMITS[endpoint].per_s > PER_SECOND
        last_body: list[Any] = [None]

        async def attempt() -> SendResult:
            result, body = await self._request(
                "GET", path, endpoint, params=params, max_wait_s=GET_MAX_WAIT_S
            )
            last_body[0] = body
            if hourly and result.status == 429:
                # Waiting seconds does not help against an hourly allowance.
                return replace(result, error_class=ErrorClass.PERMANENT)
            return result

        result = await send_with_retries(attempt, self._get_policy, sleep=asyncio.sleep)
        if not result.accepted:
            raise LineApiError(what, result)
        body = last_body[0]
        if not isinstance(body, dict):
            raise LineApiError(
                what,
                replace(
                    result,
                    error_class=ErrorClass.PERMANENT,
                    message="LINE's answer is not a JSON object",
                    local_error="unreadable_answer",
                ),
            )
        return body

    @staticmethod
    def _unreadable(what: str, field: str, body: Any) -> LineApiError:
        shown = orjson.dumps(body)[:200].decode(errors="replace")
        return LineApiError(
            what,
            SendResult(
                status=200,
                error_class=ErrorClass.PERMANENT,
                message=f"unexpected {field} in LINE's answer: {shown}",
                local_error="unreadable_answer",
            ),
        )

    async def quota(self) -> Quota:
        """`GET /v2/bot/message/quota`: this month's message allowance."""
        what = "quota"
        body = await self._get(what, "/v2/bot/message/quota", "quota")
        kind = body.get("type")
        value = body.get("value")
        if kind == "none":
            return Quota("none", None)
        if kind == "limited" and isinstance(value, int) and not isinstance(value, bool):
            return Quota("limited", value)
        raise self._unreadable(what, "type/value", body)

    async def consumption(self) -> int:
        """`GET /v2/bot/message/quota/consumption`: messages counted this month."""
        what = "quota consumption"
        body = await self._get(what, "/v2/bot/message/quota/consumption", "quota_consumption")
        usage = body.get("totalUsage")
        if isinstance(usage, int) and not isinstance(usage, bool) and usage >= 0:
            return usage
        raise self._unreadable(what, "totalUsage", body)

    async def bot_info(self) -> dict[str, Any]:
        """`GET /v2/bot/info`: the Official Account behind the token (name, basic id)."""
        return await self._get("bot info", "/v2/bot/info", "bot_info")

    async def unit_statistics(self, unit: str, start: date, end: date) -> dict[str, Any]:
        """`GET /v2/bot/insight/message/event/aggregation`: statistics of one
        `customAggregationUnits` name, `start`..`end` as UTC+9 days (at most 30 days apart)."""
        params = {
            "customAggregationUnit": unit,
            "from": start.strftime("%Y%m%d"),
            "to": end.strftime("%Y%m%d"),
        }
        return await self._get(
            f"statistics of unit {unit}",
            "/v2/bot/insight/message/event/aggregation",
            "insight_unit_statistics",
            params,
        )

    async def insight_deliveries(self, day: date) -> dict[str, Any]:
        """`GET /v2/bot/insight/message/delivery`: messages delivered on a UTC+9 day, per kind."""
        return await self._get(
            f"deliveries of {day.isoformat()}",
            "/v2/bot/insight/message/delivery",
            "insight_deliveries",
            {"date": day.strftime("%Y%m%d")},
        )

    async def delivery_count(self, kind: str, day: date) -> dict[str, Any]:
        """`GET /v2/bot/message/delivery/{kind}`: `{"status", "success"}` for a UTC+9 day."""
        if kind not in DELIVERY_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DELIVERY_KINDS)}, got {kind!r}")
        return await self._get(
            f"{kind} messages sent on {day.isoformat()}",
            f"/v2/bot/message/delivery/{kind}",
            f"delivery_{kind}",
            {"date": day.strftime("%Y%m%d")},
        )

    async def aggregation_unit_count(self) -> int:
        """`GET /v2/bot/message/aggregation/info`: unit names used this month (LINE caps 1,000)."""
        what = "aggregation unit usage"
        body = await self._get(what, "/v2/bot/message/aggregation/info", "aggregation_info")
        count = body.get("numOfCustomAggregationUnits")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        raise self._unreadable(what, "numOfCustomAggregationUnits", body)
