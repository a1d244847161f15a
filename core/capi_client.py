"""LINE Conversion API client: `POST {base}/v1/{tag_id}/events`, one batch per request.

What LINE documents, and what this does about it:

* 202: every event of the batch was received.
* 400: one invalid event discards the whole batch; sending it again changes nothing, so it is
  never retried. `Transfer-Encoding: chunked` is a 400 too: the body is always `bytes`, which
  gives httpx a fixed `Content-Length`.
* 401 (and 403, 404: a token or tag that is not ours) stops the export: every later batch
  would be refused the same way.
* 5xx, 408, 429, timeouts and connection errors are retried with the seed's settings:
  exponential from `initial_retry_wait`, capped by `max_retry_wait`, up to `max_retry` retries.
  A 500 may have accepted part of the batch; `deduplication_key` makes the repeat harmless.

The access token is read from its environment variable for each request, never kept, and
scrubbed from any text that comes back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx
import orjson

if TYPE_CHECKING:
    from core.sandbox.app import SandboxState

SANDBOX_BASE = "http://capi.sandbox"
SANDBOX_TOKEN = "sandbox-token"
"""Sent to the sandbox when no `--token-env` is given: the sandbox wants a token header, any."""
PRODUCTION_BASE = "https://conversion-api.tr.line.me"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    """LINE refused the batch (400 and the like): every event in it was discarded."""
    TRANSIENT = "transient"
    FATAL = "fatal"
    """The token or tag is wrong: stop the export."""


@dataclass(frozen=True)
class CapiResponse:
    status: int
    """HTTP status; 0 when no answer came back (timeout, connection error, missing token)."""
    outcome: Outcome
    message: str | None = None
    timed_out: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    def describe(self) -> str:
        if self.status == 0:
            return self.message or ("timed out" if self.timed_out else "no answer")
        text = f"HTTP {self.status}"
        return f"{text}: {self.message}" if self.message else text


@dataclass(frozen=True)
class RetryPolicy:
    """The seed's retry settings (Treasure Data's LINE Conversion export)."""

    max_retry: int = 8
    initial_wait: float = 15.0
    max_wait: float = 3600.0

    def wait(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based): doubling, capped."""
        return float(min(self.initial_wait * (2 ** (retry - 1)), self.max_wait))


@dataclass(frozen=True)
class BatchResult:
    response: CapiResponse
    attempts: int


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status in (401, 403, 404):
        return Outcome.FATAL
    if status in (408, 429) or status >= 500:
        return Outcome.TRANSIENT
    return Outcome.REFUSED


class CapiClient:
    def __init__(
        self,
        base_url: str,
        tag_id: str,
        *,
        token_env: str | None,
        channel_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 300.0,
        sandbox: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tag_id = tag_id
        self.token_env = token_env
        self.channel_id = channel_id
        self.sandbox = sandbox
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=httpx.Timeout(timeout)
        )

    @classmethod
    def for_base(
        cls,
        capi_base: str,
        tag_id: str,
        *,
        token_env: str | None,
        channel_id: str | None = None,
        timeout: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sandbox_state: SandboxState | None = None,
    ) -> CapiClient:
        """The client for a `capi_base` setting: `sandbox` goes in-process to the sandbox app."""
        if capi_base == "sandbox":
            return cls(
                SANDBOX_BASE,
                tag_id,
                token_env=token_env,
                channel_id=channel_id,
                transport=transport or sandbox_transport(sandbox_state),
                timeout=timeout,
                sandbox=True,
            )
        return cls(
            capi_base,
            tag_id,
            token_env=token_env,
            channel_id=channel_id,
            transport=transport,
            timeout=timeout,
        )

    @property
    def path(self) -> str:
        return f"/v1/{self.tag_id}/events"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def shown_headers(self, *, line_uid: bool) -> dict[str, str]:
        """The headers as a dry run shows them: the token is named, never printed."""
        headers = {"Content-Type": "application/json"}
        if self.token_env:
            headers["X-Line-TagAccessToken"] = f"<not shown: read from ${self.token_env}>"
        elif self.sandbox:
            headers["X-Line-TagAccessToken"] = "<sandbox>"
        if line_uid and self.channel_id:
            headers["X-Line-ChannelID"] = self.channel_id
        return headers

    def _token(self) -> str | None:
        if self.token_env:
            return os.environ.get(self.token_env) or None
        return SANDBOX_TOKEN if self.sandbox else None

    async def post_events(self, body: bytes, *, line_uid: bool) -> CapiResponse:
        """One attempt. `body` is the JSON array; bytes, so the length is fixed and known."""
        token = self._token()
        if token is None:
            where = f"${self.token_env}" if self.token_env else "--token-env"
            return CapiResponse(0, Outcome.FATAL, f"no access token: {where} is not set")
        headers = {"Content-Type": "application/json", "X-Line-TagAccessToken": token}
        if line_uid and self.channel_id:
            headers["X-Line-ChannelID"] = self.channel_id
        try:
            response = await self._http.post(self.path, content=body, headers=headers)
        except httpx.TimeoutException:
            return CapiResponse(0, Outcome.TRANSIENT, "timed out", timed_out=True)
        except httpx.TransportError as exc:
            text = _scrub(f"connection failed: {type(exc).__name__} {exc}", token)
            return CapiResponse(0, Outcome.TRANSIENT, text)
        status = response.status_code
        return CapiResponse(status, classify(status), _message(response, token))

    async def send_batch(
        self,
        body: bytes,
        *,
        line_uid: bool,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_retry: Callable[[CapiResponse, int, float], None] | None = None,
    ) -> BatchResult:
        """Send one batch, retrying what can succeed later; refusals and fatal ones at once."""
        attempt = 1
        while True:
            response = await self.post_events(body, line_uid=line_uid)
            if response.outcome is not Outcome.TRANSIENT or attempt > retry.max_retry:
                return BatchResult(response, attempt)
            wait = retry.wait(attempt)
            if on_retry is not None:
                on_retry(response, attempt, wait)
            await sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CapiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def sandbox_transport(state: SandboxState | None = None) -> httpx.AsyncBaseTransport:
    """httpx's ASGI transport onto the sandbox app: no port, no network."""
    from core.sandbox.app import SandboxState, create_app

    state = state if state is not None else SandboxState()
    return httpx.ASGITransport(app=create_app(state))


def _scrub(text: str, token: str | None) -> str:
    if token and token in text:
        text = text.replace(token, "***")
    return text


def _message(response: httpx.Response, token: str | None) -> str | None:
    """LINE documents no error body; when one comes, keep its `message` (or a short text)."""
    if response.status_code < 300 or not response.content:
        return None
    text: str | None = None
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()[:300] or None
    else:
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
            details = body.get("details")
            if isinstance(details, list) and details and isinstance(details[0], dict):
                first = details[0]
                where = first.get("property")
                what = first.get("message")
                if what:
                    text += f" ({where}: {what})" if where else f" ({what})"
                if len(details) > 1:
                    text += f" and {len(details) - 1} more"
        else:
            text = response.text.strip()[:300] or None
    return _scrub(text, token) if text else None
