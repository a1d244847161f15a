"""Console startup, and the campaign list with 10,000 campaigns.

Startup: the time from starting `lcc demo` (a new process) to its first screen, compared with a
bare Textual "hello" app started the same way (the ratio is what matters on a shared machine).

* headless: a child process runs the real `lcc demo` code path (`tui.cli.main(["demo"])`) with
  `App.run` switched to `headless=True` and an auto-pilot that notes the time when the first
  screen has been drawn, then when the campaign list shows the demo's campaigns;
* terminal: the same command in tmux (when installed), polling `capture-pane` every 10 ms for the
  header, then for a campaign name: what an operator sees, key encoding and all.

The 10,000-campaign list: one console in this process opens a data dir holding 10,000 campaigns
(written with `insert_multiple`) and reports the time until the rows are listed, then a state
filter, a search keystroke and a sort, each to the next drawn frame. Baseline: Textual's own
`DataTable` given the same rows with `add_rows`, and a filter as `clear()` + `add_rows` (what
a straightforward list would do).

    .venv/bin/python bench/bench_startup.py [--runs 5] [--markdown bench/results/startup.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_S = 0.5

HELLO = """
from textual.app import App
from textual.widgets import Footer, Header, Static

class Hello(App):
    def compose(self):
        yield Header()
        yield Static("Hello")
        yield Footer()

Hello().run()
"""

# --- headless children ----------------------------------------------------------------------

CHILD = r"""
import json, os, sys, time
T0 = float(os.environ["BENCH_T0"])
WHAT = sys.argv[1]
marks = {}

from textual.app import App

display = App._display

def first_display(self, screen, renderable):
    # the compositor hands its first full frame to the driver (headless: not written)
    if renderable is not None and "first_frame" not in marks:
        marks["first_frame"] = time.time() - T0
        marks["first_frame_cpu"] = time.process_time()  # since the process started
    return display(self, screen, renderable)

App._display = first_display

def patch(app_class, ready):
    original = app_class.run

    def run(self, *args, **kwargs):
        async def pilot(p):
            deadline = time.time() + 120
            while time.time() < deadline and not ("first_frame" in marks and ready(p.app)):
                await p.pause(0.005)
            marks["ready"] = time.time() - T0
            p.app.exit()
        kwargs.update(headless=True, auto_pilot=pilot)
        kwargs.pop("mouse", None)
        return original(self, *args, **kwargs)

    app_class.run = run

if WHAT == "hello":
    patch(App, lambda app: True)
    exec(os.environ["BENCH_HELLO"])
else:
    import tui.app

    def listed(app):
        from tui.screens.campaigns import CampaignListScreen
        screen = app.screen
        return isinstance(screen, CampaignListScreen) and bool(screen._all_rows)

    patch(tui.app.ConsoleApp, listed)
    from tui.cli import main
    main(["demo"])
print("BENCH " + json.dumps(marks), file=sys.stderr)
"""


def headless_run(what: str, config: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "BENCH_T0": repr(time.time()),
        "BENCH_HELLO": HELLO,
        "LCC_CONFIG_FILE": str(config),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, what],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in result.stderr.splitlines():
        if line.startswith("BENCH "):
            marks: dict[str, float] = json.loads(line[6:])
            return marks
    raise RuntimeError(f"{what}: no figures\n{result.stderr[-2000:]}")


# --- tmux -----------------------------------------------------------------------------------


def tmux_run(command: str, first: str, ready: str, config: Path) -> dict[str, float] | None:
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    socket = f"lcc-bench-{os.getpid()}-{time.monotonic_ns()}"
    base = [tmux, "-L", socket, "-f", "/dev/null"]
    env = {**os.environ, "TERM": "xterm-256color", "LCC_CONFIG_FILE": str(config)}
    env.pop("TMUX", None)
    marks: dict[str, float] = {}
    start = time.monotonic()
    started = subprocess.run(
        [*base, "new-session", "-d", "-s", "b", "-x", "80", "-y", "24", "-c", str(ROOT), command],
        env=env,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:  # a loaded machine sometimes loses the fresh server: skip it
        print(f"  (tmux: {started.stderr.strip()}; run skipped)", file=sys.stderr)
        return {}
    try:
        deadline = start + 120
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*base, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True
            ).stdout
            now = time.monotonic() - start
            if "first_frame" not in marks and first in screen:
                marks["first_frame"] = now
            if ready in screen:
                marks["ready"] = now
                break
            time.sleep(0.01)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
    return marks


# --- the 10,000-campaign list ---------------------------------------------------------------


async def list_figures(count: int) -> dict[str, float]:
    from core.models import CampaignState
    from core.service import Services
    from core.settings import load_settings
    from tests.tui.test_app import FrozenClock, fixed_campaign, fixed_world
    from tui.app import ConsoleApp
    from tui.screens.campaigns import CampaignTable

    folder = Path(tempfile.mkdtemp(prefix="lcc-bench-"))
    services = Services.open(load_settings(data_dir=folder), clock=FrozenClock())
    fixed_world(services)
    states = list(CampaignState)
    docs = [
        fixed_campaign(
            100 + n, f"bulk campaign {n:05d}", states[n % 5], age=timedelta(minutes=n)
        ).model_dump(mode="json")
        for n in range(count)
    ]
    services.store.table("campaigns", "campaigns").insert_multiple(docs)
    figures: dict[str, float] = {}
    app = ConsoleApp(services, scheduler_interval=None)
    start = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.screen.query(CampaignTable) or not app.screen.query_one(CampaignTable).rows:
            await pilot.pause(0.005)
        await pilot.pause()
        figures["listed_s"] = time.perf_counter() - start
        for name, keys in (
            ("filter_s", ["2"]),
            ("unfilter_s", ["0"]),
            ("sort_s", ["s"]),
            ("search_key_s", ["slash", "9"]),
        ):
            await pilot.pause()
            began, cpu = time.perf_counter(), time.process_time()
            await pilot.press(*keys)
            await pilot.pause()
            figures[name] = time.perf_counter() - began
            figures[name.replace("_s", "_cpu")] = time.process_time() - cpu
    shutil.rmtree(folder, ignore_errors=True)
    return figures


async def datatable_figures(count: int) -> dict[str, float]:
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    rows = [
        (f"bulk campaign {n:05d}", Text("○ Draft"), "Acme Official", "Immediately", "—", "1m ago")
        for n in range(count)
    ]

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    figures: dict[str, float] = {}
    app = Plain()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(DataTable)
        table.add_columns("Campaign", "State", "Sender", "Schedule", "Progress", "Changed")
        began = time.perf_counter()
        table.add_rows(rows)
        await pilot.pause()
        figures["listed_s"] = time.perf_counter() - began
        began, cpu = time.perf_counter(), time.process_time()
        table.clear()
        table.add_rows(rows[::5])
        await pilot.pause()
        figures["filter_s"] = time.perf_counter() - began
        figures["filter_cpu"] = time.process_time() - cpu
    return figures


# --- report ---------------------------------------------------------------------------------


def median(runs: list[dict[str, float]], key: str) -> float:
    values = [run[key] for run in runs if key in run]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--markdown", type=Path, help="also write the figures here")
    parser.add_argument(
        "--startup-only", action="store_true", help="skip the 10,000-campaign list figures"
    )
    args = parser.parse_args()
    compile_sources()
    config = Path(tempfile.mkdtemp()) / "config.toml"  # no user config file

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text)
        lines.append(text)

    say(
        f"# Startup of `lcc demo` ({datetime.now(UTC):%Y-%m-%d}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    say()
    # alternated, so a drift in the machine's speed reaches both sides alike
    headless_hello: list[dict[str, float]] = []
    headless_demo: list[dict[str, float]] = []
    for _ in range(args.runs):
        headless_hello.append(headless_run("hello", config))
        headless_demo.append(headless_run("demo", config))
    hello = median(headless_hello, "first_frame")
    first = median(headless_demo, "first_frame")
    listed = median(headless_demo, "ready")
    hello_cpu = median(headless_hello, "first_frame_cpu")
    first_cpu = median(headless_demo, "first_frame_cpu")
    say(f"headless, median of {args.runs} (process start to frame; CPU: the process's own time,")
    say("which other load on the machine hardly changes):")
    say(f"  bare Textual hello, first frame      {hello:6.3f} s   CPU {hello_cpu:5.3f} s")
    say(
        f"  lcc demo, first frame                {first:6.3f} s   CPU {first_cpu:5.3f} s   "
        f"{first / hello:4.2f}x hello (CPU {first_cpu / hello_cpu:4.2f}x)"
    )
    say(f"  lcc demo, list with its campaigns    {listed:6.3f} s   (seeded while shown)")
    python = shlex_quote(sys.executable)
    hello_file = config.parent / "hello.py"
    hello_file.write_text(HELLO, encoding="utf-8")
    tmux_hello: list[dict[str, float] | None] = []
    tmux_demo: list[dict[str, float] | None] = []
    for _ in range(args.runs):
        tmux_hello.append(
            tmux_run(f"{python} {shlex_quote(str(hello_file))}", "Hello", "Hello", config)
        )
        tmux_demo.append(
            tmux_run(f"{python} -m tui demo", "LINE Campaign Console", "welcome_friends", config)
        )
    if tmux_hello[0] is not None:
        t_hello = median([m for m in tmux_hello if m], "first_frame")
        t_first = median([m for m in tmux_demo if m], "first_frame")
        t_listed = median([m for m in tmux_demo if m], "ready")
        say()
        say(f"tmux 80x24, median of {args.runs} (command start to text on screen):")
        say(f"  bare Textual hello, first frame      {t_hello:6.3f} s")
        say(
            f"  lcc demo, first frame                {t_first:6.3f} s   "
            f"{t_first / t_hello:4.2f}x hello"
        )
        say(f"  lcc demo, list with its campaigns    {t_listed:6.3f} s")
    verdict = "met" if first <= GOAL_S else "not met on this machine"
    say()
    say(
        f"goal: first screen under {GOAL_S} s: {verdict} (headless {first:.3f} s, "
        f"{first_cpu:.3f} s of CPU; a bare Textual app: {hello:.3f} s, {hello_cpu:.3f} s of CPU)"
    )

    if args.startup_only:
        write_markdown(args.markdown, lines)
        return
    ours = asyncio.run(list_figures(args.campaigns))
    plain = asyncio.run(datatable_figures(args.campaigns))
    say()
    say(f"## The campaign list with {args.campaigns:,} campaigns (120x40, one run)")
    say()
    say("Each step is a key press until the next frame is drawn; CPU is this process's time")
    say("(less sensitive to other load on the machine than the wall clock).")
    say()
    say("| step | campaign list | DataTable baseline | ratio |")
    say("|---|---|---|---|")
    say(
        f"| rows listed (wall) | {ours['listed_s']:.3f} s (read in a thread) | "
        f"{plain['listed_s']:.3f} s (add_rows, UI thread) | "
        f"{ours['listed_s'] / plain['listed_s']:.2f}x |"
    )
    say(
        f"| state filter (CPU) | {ours['filter_cpu']:.3f} s | "
        f"{plain['filter_cpu']:.3f} s (clear + add_rows) | "
        f"{ours['filter_cpu'] / plain['filter_cpu']:.2f}x |"
    )
    for label, key in (
        ("back to all states", "unfilter"),
        ("sort", "sort"),
        ("search: focus the box and type a key", "search_key"),
    ):
        say(f"| {label} (CPU, wall) | {ours[key + '_cpu']:.3f} s, {ours[key + '_s']:.3f} s | | |")
    write_markdown(args.markdown, lines)


def write_markdown(path: Path | None, lines: list[str]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def compile_sources() -> None:
    """Bytecode for lcc's own modules, as `make install` leaves it (installed packages have
    theirs from pip): with PYTHONDONTWRITEBYTECODE set, each start would compile them again."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "core"), str(ROOT / "tui")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


if __name__ == "__main__":
    main()
