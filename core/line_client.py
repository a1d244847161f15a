"""LINE Messaging API client (async, httpx)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass(frozen=True)
class SendResult:
    status: int
    """HTTP status; 0 when no answer came back (timeout, connection error)."""
    request_id: str | None = None
    accepted_request_id: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200 or (self.status == 409 and self.accepted_request_id is not None)


class LineClient:
    def __init__(
        self,
        base_url: str,
        *,
        token_env: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._token_env = token_env
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    def _headers(self, retry_key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = os.environ.get(self._token_env) if self._token_env else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        return headers

    async def push(self, to: str, messages: list[dict[str, Any]], *, retry_key: str) -> SendResult:
        body = orjson.dumps({"to": to, "messages": messages})
        try:
            response = await self._http.post(
                "/v2/bot/message/push", content=body, headers=self._headers(retry_key)
            )
        except httpx.TransportError:
            return SendResult(status=0)
        message = None
        if response.status_code >= 400:
            try:
                message = orjson.loads(response.content).get("message")
            except (orjson.JSONDecodeError, AttributeError):
                message = None
        return SendResult(
            status=response.status_code,
            request_id=response.headers.get("x-line-request-id"),
            accepted_request_id=response.headers.get("x-line-accepted-request-id"),
            message=message,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
