"""Error classes and backoff: what each LINE answer means, and how long to wait before the next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from core.models import ActivationPolicy
from core.retry import (
    MONTHLY_LIMIT_MESSAGE,
    RATE_LIMIT_MESSAGE,
    ErrorClass,
    ErrorDetail,
    RetryPolicy,
    SendResult,
    backoff_ceiling,
    backoff_delay,
    classify,
    header,
    parse_error_body,
    send_with_retries,
)

A, T, P, F = ErrorClass.ACCEPTED, ErrorClass.TRANSIENT, ErrorClass.PERMANENT, ErrorClass.FATAL


@pytest.mark.parametrize(
    ("status", "message", "accepted_id", "expected"),
    [
        (200, None, None, A),
        (202, None, None, A),
        (409, "The retry key is already accepted", "req-1", A),
        (409, "The retry key is already accepted", None, P),
        (0, None, None, T),
        (500, None, None, T),
        (502, None, None, T),
        (503, None, None, T),
        (504, None, None, T),
        (429, RATE_LIMIT_MESSAGE, None, T),
        (429, "A large number of messages were sent to the same user", None, T),
        (429, None, None, T),
        (429, MONTHLY_LIMIT_MESSAGE, None, F),
        (401, "Authentication failed due to the following reason: x", None, F),
        (403, "Access to this API is not available for your account", None, F),
        (400, "The request body has 1 error(s)", None, P),
        (404, "Not found", None, P),
        (410, None, None, P),
        (413, None, None, P),
        (415, None, None, P),
        (418, None, None, P),
        (422, None, None, P),
        (301, None, None, P),
    ],
)
def test_classify(status: int, message: str | None, accepted_id: str | None, expected: str) -> None:
    assert classify(status, message, accepted_request_id=accepted_id) is expected


def test_send_result_codes() -> None:
    ok = SendResult(200, A, request_id="r")
    assert ok.accepted and ok.error_code == "" and ok.effective_request_id == "r"
    conflict = SendResult(409, A, request_id="r2", accepted_request_id="r1")
    assert conflict.accepted and conflict.effective_request_id == "r1"
    assert SendResult(0, T, timed_out=True).error_code == "timeout"
    assert SendResult(0, T).error_code == "timeout"
    assert SendResult(500, T).error_code == "500"
    monthly = SendResult(429, F, message=MONTHLY_LIMIT_MESSAGE)
    assert monthly.monthly_limit and not monthly.rate_limited and monthly.error_code == "429"
    rate = SendResult(429, T, message=RATE_LIMIT_MESSAGE)
    assert rate.rate_limited and not rate.monthly_limit
    assert SendResult(0, F, local_error="missing_token").error_code == "missing_token"


def test_header_is_case_insensitive_and_bounded() -> None:
    headers = {"X-Line-Accepted-Request-Id": "abc", "X-Empty": "", "x-long": "z" * 500}
    assert header(headers, "x-line-accepted-request-id") == "abc"
    assert header(headers, "X-LINE-ACCEPTED-REQUEST-ID") == "abc"
    assert header(headers, "x-empty") is None
    assert header(headers, "x-missing") is None
    assert header(headers, "x-long") == "z" * 200


@pytest.mark.parametrize(
    ("body", "message", "details"),
    [
        (
            {
                "message": "The request body has 2 error(s)",
                "details": [
                    {"message": "May not be empty", "property": "messages[0].text"},
                    {"message": "Size must be between 1 and 5"},
                ],
            },
            "The request body has 2 error(s)",
            (
                ErrorDetail("May not be empty", "messages[0].text"),
                ErrorDetail("Size must be between 1 and 5", None),
            ),
        ),
        ({"message": None, "key": None, "stacktrace": None, "code": None}, None, ()),
        ({"message": "x", "details": []}, "x", ()),
        ({"message": "x", "details": "oops"}, "x", ()),
        (
            {"message": "x", "details": [1, None, "a", {"property": 7}]},
            "x",
            (ErrorDetail(None, None),),
        ),
        ({"message": 42}, None, ()),
        ({"error": "invalid_request", "error_description": "bad grant"}, "bad grant", ()),
        ([1, 2, 3], None, ()),
        ("text", None, ()),
        (None, None, ()),
    ],
)
def test_parse_error_body_tolerates_anything(
    body: object, message: str | None, details: tuple[ErrorDetail, ...]
) -> None:
    assert parse_error_body(body) == (message, details)


def test_parse_error_body_bounds_hostile_sizes() -> None:
    body = {"message": "m" * 100_000, "details": [{"message": "d"}] * 10_000}
    message, details = parse_error_body(body)
    assert message is not None and len(message) == 1000
    assert len(details) == 100


def test_backoff_ceiling_doubles_then_caps() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff_s=1.0, max_backoff_s=5.0)
    assert [backoff_ceiling(n, policy) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_ceiling(10_000, policy) == 5.0
    assert backoff_delay(3, policy, lambda: 0.25) == 1.0


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def scripted(*results: SendResult) -> tuple[list[int], Callable[[], Awaitable[SendResult]]]:
    calls: list[int] = []

    async def attempt() -> SendResult:
        calls.append(1)
        return results[min(len(calls) - 1, len(results) - 1)]

    return calls, attempt


async def test_full_jitter_waits_within_the_policy() -> None:
    sleep = FakeSleep()
    calls, attempt = scripted(SendResult(500, T))
    rands = iter([0.5, 0.5, 0.5, 0.5, 0.5])
    heard: list[tuple[int, float, str]] = []
    policy = ActivationPolicy(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=3.0)
    result = await send_with_retries(
        attempt,
        policy,
        sleep=sleep,
        rand=lambda: next(rands),
        on_retry=lambda r, n, d: heard.append((n, d, r.error_code)),
    )
    assert result.status == 500
    assert len(calls) == 5
    assert sleep.calls == [0.5, 1.0, 1.5, 1.5]
    assert heard == [(1, 0.5, "500"), (2, 1.0, "500"), (3, 1.5, "500"), (4, 1.5, "500")]


async def test_jitter_spans_zero_to_ceiling() -> None:
    sleep = FakeSleep()
    _, attempt = scripted(SendResult(0, T))
    rands = iter([0.0, 0.999])
    await send_with_retries(
        attempt,
        RetryPolicy(max_attempts=3, initial_backoff_s=2.0, max_backoff_s=60.0),
        sleep=sleep,
        rand=lambda: next(rands),
    )
    assert sleep.calls == [0.0, pytest.approx(3.996)]


@pytest.mark.parametrize(
    "final",
    [
        SendResult(200, A),
        SendResult(409, A, accepted_request_id="r"),
        SendResult(400, P),
        SendResult(409, P),
        SendResult(401, F),
        SendResult(429, F, message=MONTHLY_LIMIT_MESSAGE),
    ],
)
async def test_never_retries_what_is_not_transient(final: SendResult) -> None:
    sleep = FakeSleep()
    calls, attempt = scripted(final)
    result = await send_with_retries(attempt, RetryPolicy(), sleep=sleep)
    assert result is final
    assert len(calls) == 1 and sleep.calls == []


async def test_stops_at_the_first_success_after_transients() -> None:
    sleep = FakeSleep()
    calls, attempt = scripted(SendResult(503, T), SendResult(0, T), SendResult(200, A))
    result = await send_with_retries(
        attempt,
        RetryPolicy(max_attempts=5),
        sleep=sleep,
        rand=lambda: 1.0,
    )
    assert result.accepted and len(calls) == 3 and sleep.calls == [1.0, 2.0]


async def test_one_attempt_policy_never_sleeps() -> None:
    sleep = FakeSleep()
    calls, attempt = scripted(SendResult(500, T))
    for max_attempts in (1, 0):
        calls.clear()
        result = await send_with_retries(
            attempt,
            RetryPolicy(max_attempts=max_attempts),
            sleep=sleep,
        )
        assert result.status == 500 and len(calls) == 1
    assert sleep.calls == []
