"""`lcc serve` in a real browser: Debian's Chromium, driven by Playwright, headless.

The page runs xterm.js and talks to a console process over a websocket. xterm.js draws on a
canvas, so the test reads what the console sent down the websocket (its terminal output) and
saves a screenshot of the page for people to look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lcc serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"lcc serve did not listen on port {port}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "LCC_CONFIG_FILE": str(tmp_path / "config.toml")}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            f"{port}",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server and the consoles it starts, ended together
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        with_group = process.pid
        if process.poll() is None:
            os.killpg(with_group, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                process.wait(timeout=15)
        log.close()


def wait_for(page: Page, seen: Callable[[], str], text: str, what: str) -> None:
    deadline = time.monotonic() + 90
    while text not in seen():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({text!r}) in the page")
        page.wait_for_timeout(100)


def draw(page: Page) -> None:
    """Two animation frames: xterm.js has drawn what it received."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_lcc_serve_shows_the_console_in_chromium(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import WebSocket, sync_playwright

    received: list[bytes] = []

    def listen(websocket: WebSocket) -> None:
        def frame(payload: str | bytes) -> None:
            received.append(payload.encode() if isinstance(payload, str) else payload)

        websocket.on("framereceived", frame)

    def seen() -> str:
        return b"".join(received).decode("utf-8", errors="replace")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("websocket", listen)
            page.goto(served, wait_until="domcontentloaded")
            page.wait_for_selector("body.-first-byte", timeout=60_000)
            wait_for(page, seen, "welcome_friends", "the campaign list")
            output = seen()
            assert "LINE Campaign Console" in output
            assert "welcome_friends" in output, "the demo's campaigns never reached the page"
            assert "SANDBOX" in output
            # a click gives the terminal the keyboard (Textual's footer waits for focus);
            # it lands below the rows, so it selects nothing
            page.mouse.click(640, 760)
            wait_for(page, seen, "Conversions", "the footer's keys")
            draw(page)
            page.screenshot(path=str(tmp_path / "lcc-serve-list.png"))
            # keys typed in the browser reach the console: Enter opens the highlighted campaign
            before = len(received)
            page.keyboard.press("Enter")

            def since() -> str:
                return b"".join(received[before:]).decode("utf-8", errors="replace")

            wait_for(page, since, "UTM Tracking", "the campaign's tabs")
            assert "Target Audience" in since()
            wait_for(page, since, "Back", "the campaign screen's keys")
            draw(page)
            shot = tmp_path / "lcc-serve-campaign.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000, "the screenshot looks empty"
        finally:
            browser.close()
