"""The in-process way to the sandbox: httpx's ASGI transport, minus a per-request import.

httpx's `ASGITransport` tries `import sniffio` on every request to detect trio; without sniffio
installed that failed import costs more than the sandbox's own work (in-process pushes ran at
~260/s). This subclass keeps its behaviour for asyncio, which is all the console runs on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class SandboxTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": self.root_path,
        }
        chunks = request.stream.__aiter__()
        request_complete = False
        status_code: int | None = None
        response_headers: list[tuple[bytes, bytes]] | None = None
        body: list[bytes] = []
        response_complete = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal request_complete
            if request_complete:
                await response_complete.wait()
                return {"type": "http.disconnect"}
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                request_complete = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: Any) -> None:
            nonlocal status_code, response_headers
            if message["type"] == "http.response.start":
                status_code = message["status"]
                response_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if data and request.method != "HEAD":
                    body.append(data)
                if not message.get("more_body", False):
                    response_complete.set()

        try:
            await self.app(scope, receive, send)
        except Exception:
            if self.raise_app_exceptions:
                raise
            response_complete.set()
            status_code = 500 if status_code is None else status_code
            response_headers = response_headers or []
        if status_code is None or response_headers is None or not response_complete.is_set():
            raise httpx.RemoteProtocolError("the sandbox app ended without a complete answer")
        return httpx.Response(status_code, headers=response_headers, content=b"".join(body))
