"""What a LINE answer means for the sender, and how hard to try again.

LINE gives no machine-readable error code: the status and, for 429, the `message` decide. The
classes follow LINE's retry guide: after a 5xx or a timeout the outcome is unknown, so the same
request goes again with the same `X-Line-Retry-Key` (LINE either executes it once or answers 409
with the id of the attempt it had accepted).
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

RATE_LIMIT_MESSAGE = "The API rate limit has been exceeded. Try again later."
MONTHLY_LIMIT_MESSAGE = "You have reached your monthly limit."
RETRY_KEY_ACCEPTED_MESSAGE = "The retry key is already accepted"

MAX_MESSAGE_CHARS = 1000
MAX_DETAILS = 100


class ErrorClass(enum.StrEnum):
    ACCEPTED = "accepted"
    """LINE took the request (200, or 409 naming the attempt it had accepted)."""
    TRANSIENT = "transient"
    """Unknown outcome or a short refusal: try again with the same retry key."""
    PERMANENT = "permanent"
    """This request will never be accepted as it is; other requests may be."""
    FATAL = "fatal"
    """No request of this campaign can succeed now (token, plan, monthly limit): stop."""


@dataclass(frozen=True)
class ErrorDetail:
    message: str | None
    property: str | None


@dataclass(frozen=True)
class SendResult:
    """One answer (or the lack of one) to one request."""

    status: int
    """HTTP status; 0 when no answer came back (timeout, connection error) or nothing was sent."""
    error_class: ErrorClass
    request_id: str | None = None
    accepted_request_id: str | None = None
    message: str | None = None
    details: tuple[ErrorDetail, ...] = ()
    timed_out: bool = False
    push_answer: bytes = field(default=b"", repr=False)
    """Push only: LINE's answer as received, read only when `sent_messages` is asked for (the
    engine never asks: decoding every accepted push's answer cost the sender 2-3% of its time)."""
    local_error: str | None = None
    """Set when the request was never sent: `missing_token`, `invalid_request`."""

    @property
    def sent_messages(self) -> tuple[dict[str, Any], ...]:
        """Push only: LINE's `sentMessages` (also repeated on a 409)."""
        try:
            body = orjson.loads(self.push_answer) if self.push_answer else None
        except orjson.JSONDecodeError:
            return ()
        raw = body.get("sentMessages") if isinstance(body, dict) else None
        if not isinstance(raw, list):
            return ()
        return tuple(
            {
                key: str(item[key])[:200]
                for key in ("id", "quoteToken")
                if isinstance(item.get(key), str | int)
            }
            for item in raw[:5]
            if isinstance(item, dict)
        )

    @property
    def accepted(self) -> bool:
        return self.error_class is ErrorClass.ACCEPTED

    @property
    def error_code(self) -> str:
        """The delivery log's `error_code`: empty when accepted, `timeout`, or LINE's status."""
        if self.accepted:
            return ""
        if self.local_error:
            return self.local_error
        return str(self.status) if self.status else "timeout"

    @property
    def monthly_limit(self) -> bool:
        return self.status == 429 and is_monthly_limit(self.message)

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 and not is_monthly_limit(self.message)

    @property
    def effective_request_id(self) -> str | None:
        """The id LINE knows the delivery by: the accepted attempt's, else this answer's."""
        return self.accepted_request_id or self.request_id


def is_monthly_limit(message: str | None) -> bool:
    return message is not None and "monthly limit" in message.lower()


def classify(status: int, message: str | None, *, accepted_request_id: str | None) -> ErrorClass:
    """LINE's status (and, for 429, its message) as an error class."""
    if 200 <= status < 300:
        return ErrorClass.ACCEPTED
    if status == 409:
        return ErrorClass.ACCEPTED if accepted_request_id else ErrorClass.PERMANENT
    if status in (401, 403):
        return ErrorClass.FATAL
    if status == 429:
        return ErrorClass.FATAL if is_monthly_limit(message) else ErrorClass.TRANSIENT
    if status == 0 or 500 <= status < 600:
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT


def header(headers: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    """A response header read case-insensitively, cut to a sane length; None when absent/empty."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    return clean_header_value(value, limit)


def clean_header_value(value: str | None, limit: int = 200) -> str | None:
    if not value:
        return None
    return value.strip()[:limit] or None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:MAX_MESSAGE_CHARS]
    return None


def parse_error_body(body: Any) -> tuple[str | None, tuple[ErrorDetail, ...]]:
    """`message` and `details[]` from an already-decoded JSON body, whatever its shape."""
    if not isinstance(body, dict):
        return None, ()
    message = _text(body.get("message"))
    if message is None:
        # OAuth-style bodies of the token endpoints.
        message = _text(body.get("error_description")) or _text(body.get("error"))
    raw_details = body.get("details")
    details: list[ErrorDetail] = []
    if isinstance(raw_details, Sequence) and not isinstance(raw_details, str | bytes):
        for item in list(raw_details)[:MAX_DETAILS]:
            if isinstance(item, dict):
                details.append(ErrorDetail(_text(item.get("message")), _text(item.get("property"))))
    return message, tuple(details)


# --- retrying -----------------------------------------------------------------------------


class BackoffPolicy(Protocol):
    """What `send_with_retries` needs of a policy (`core.models.ActivationPolicy` fits)."""

    @property
    def max_attempts(self) -> int: ...

    @property
    def initial_backoff_s(self) -> float: ...

    @property
    def max_backoff_s(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0


class Classified(Protocol):
    @property
    def error_class(self) -> ErrorClass: ...


ResultT = TypeVar("ResultT", bound=Classified)


def backoff_ceiling(attempt: int, policy: BackoffPolicy) -> float:
    """The longest wait after failed attempt `attempt` (1-based): exponential, capped."""
    exponent = min(max(attempt - 1, 0), 62)
    return float(min(policy.max_backoff_s, policy.initial_backoff_s * 2.0**exponent))


def backoff_delay(attempt: int, policy: BackoffPolicy, rand: Callable[[], float]) -> float:
    """Full jitter: uniformly in [0, ceiling), so many senders never retry in lockstep."""
    return max(0.0, rand()) * backoff_ceiling(attempt, policy)


async def send_with_retries(
    attempt: Callable[[], Awaitable[ResultT]],
    policy: BackoffPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[ResultT, int, float], None] | None = None,
) -> ResultT:
    """Call `attempt` until it is not transient, at most `policy.max_attempts` times in all.

    `attempt` must send the same logical request each time (the same retry key). The last result
    is returned; permanent, fatal and accepted results are returned at once. `on_retry` hears
    (result, number of the attempt that failed, seconds about to be waited).
    """
    attempts = max(1, policy.max_attempts)
    number = 1
    while True:
        result = await attempt()
        if result.error_class is not ErrorClass.TRANSIENT or number >= attempts:
            return result
        delay = backoff_delay(number, policy, rand)
        if on_retry is not None:
            on_retry(result, number, delay)
        await sleep(delay)
        number += 1
