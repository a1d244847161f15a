"""`lcc demo` in a real terminal (tmux): real key encoding, alternate screen, ctrl+q.

Pilot cannot see what a terminal does with the app's output; tmux can. The server is private
(`-L`) and reads no config (`-f /dev/null`), so the user's tmux is never touched. Everything is
polled; nothing waits a fixed time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

TABS = ("Audience", "Content", "Schedule", "Activation", "UTM", "Report")
"""The tab names as an 80-column terminal shows them (the seeds' names do not fit one row)."""


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None
        return subprocess.run(
            [TMUX, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "lcc").stdout

    def alive(self) -> bool:
        return self.run("has-session", "-t", "lcc", check=False).returncode == 0

    def wait_for(self, condition: Callable[[str], bool], what: str, seconds: float = 90) -> str:
        deadline = time.monotonic() + seconds
        text = ""
        while time.monotonic() < deadline:
            text = self.screen() if self.alive() else ""
            if condition(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"lcc-e2e-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server", check=False)


def start_demo(tmux: Tmux, tmp_path: Path) -> str:
    """`lcc demo` in an 80x24 session (exec'd, so the pane's pid is the console's); its list."""
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "LCC_CONFIG_FILE": str(tmp_path / "config.toml"),
    }
    env.pop("TMUX", None)
    command = f"exec {sys.executable} -m tui demo"
    assert TMUX is not None
    start = ["new-session", "-d", "-s", "lcc", "-x", "80", "-y", "24", "-c", str(REPO), command]
    subprocess.run(
        [TMUX, "-L", tmux.socket, "-f", "/dev/null", *start],
        env=env,
        check=True,
        timeout=30,
    )
    return tmux.wait_for(lambda s: "welcome_friends" in s, "the campaign list")


def test_lcc_demo_opens_a_campaign_and_quits_with_ctrl_q(tmux: Tmux, tmp_path: Path) -> None:
    listed = start_demo(tmux, tmp_path)
    assert "SANDBOX" in listed
    assert "Campaign" in listed and "State" in listed
    # the cursor is on the first row; Enter opens it on its tabs
    tmux.run("send-keys", "-t", "lcc", "Enter")
    opened = tmux.wait_for(lambda s: all(tab in s for tab in TABS), "the six tab names")
    assert "SANDBOX" in opened
    tmux.run("send-keys", "-t", "lcc", "C-q")
    deadline = time.monotonic() + 30
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), "ctrl+q did not end the console"


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may be slow, or absent in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_lcc_demo_ends_when_its_terminal_goes_away(tmux: Tmux, tmp_path: Path) -> None:
    """An SSH drop (here: the tmux server killed) must not leave a console running forever."""
    start_demo(tmux, tmp_path)
    pid = int(tmux.run("list-panes", "-t", "lcc", "-F", "#{pane_pid}").stdout.split()[0])
    tmux.run("kill-server", check=False)
    deadline = time.monotonic() + 90  # the stop may wait for deliveries; a backstop follows
    while time.monotonic() < deadline:
        if not running(pid):
            return
        time.sleep(0.2)
    os.kill(pid, 9)
    raise AssertionError("the console kept running after its terminal went away")
