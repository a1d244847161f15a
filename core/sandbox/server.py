"""Serving the sandbox over HTTP with uvicorn (`lcc sandbox`, end-to-end tests, benchmarks)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from core.sandbox.app import AnswerLost, SandboxState, create_app

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _QuietLostAnswers(logging.Filter):
    """A lost answer is a fault the operator asked for, not a crash worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, AnswerLost)


def _quiet_lost_answers() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _QuietLostAnswers) for existing in logger.filters):
        logger.addFilter(_QuietLostAnswers())


def uvicorn_config(
    state: SandboxState, host: str, port: int, *, log_level: str = "warning"
) -> uvicorn.Config:
    """uvicorn with whatever speedups are installed (httptools, uvloop), no access log."""
    _quiet_lost_answers()
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        backlog=4096,
    )


def serve(state: SandboxState, host: str, port: int, *, log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl-C)."""
    uvicorn.Server(uvicorn_config(state, host, port, log_level=log_level)).run()


@contextmanager
def running_sandbox(
    state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[str]:
    """Serve the sandbox on a loopback port in a background thread; yields its base URL."""
    state = state if state is not None else SandboxState()
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn_config(state, host, port))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield base_url(host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
