"""The Textual console: the campaign list, and each campaign on its five tabs.

The app is built only from injected objects (`Services`, `ConsoleConfig`), so the CLI, the
browser server and the tests construct it the same way. The CLI passes a function that opens
the services instead: the first frame is drawn after importing Textual alone, and the domain
(pydantic models, HTTP clients, the sandbox) is imported and the data dir opened in a worker
while the operator already sees the console. What it promises operators:

* it never blocks: store I/O runs in thread workers, HTTP in async workers;
* it never crashes on a failed worker: that becomes a notification saying what to do; an error
  no handler caught ends the session with one line and ``<data_dir>/logs/crash.log``;
* a dropped terminal (SIGHUP, stdin gone) or SIGTERM stops deliveries through their own
  cancellation path, so what was sent is recorded, and then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from core.errors import InputError, LccError
from tui.config import ConsoleConfig, save_theme, unknown_binding_ids
from tui.widgets import literal, sandbox_notice

if TYPE_CHECKING:
    from core.models import CampaignState
    from core.service import Services

SCHEDULER_SECONDS = 30.0
"""How often the console runs a scheduler pass while it is open."""
TERMINAL_CHECK_SECONDS = 5.0
DELIVERY_CANCEL_WAIT_SECONDS = 5.0
EXIT_GRACE_SECONDS = 10.0
"""Once the terminal is gone and deliveries are stopped, how long leaving may take before the
process ends itself: Textual's farewell writes to a dead terminal can block forever."""
DELIVERY_GROUP_PREFIX = "delivery"
"""Workers whose group starts with this send to LINE; they are stopped, never abandoned."""
DELIVERY_STOP_TIMEOUT = 30.0


def _console_commands() -> type[Provider]:
    """The palette's provider, imported when the palette first opens, not at start-up."""
    from tui.palette import ConsoleCommands

    return ConsoleCommands


class StartingScreen(Screen[None]):
    """The first frame: drawn before the domain is imported and the data dir opened."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.message, id="starting", classes="empty")
        yield Footer()


class ConsoleApp(App[None], inherit_bindings=False):
    """Built only from injected services, so the CLI and the tests construct it the same way."""

    TITLE = "LINE Campaign Console"
    CSS_PATH = "app.tcss"
    COMMANDS: ClassVar[set[type[Provider] | Any]] = {_console_commands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit",
            priority=True,
            tooltip="Quit the console (a running delivery is stopped and recorded first).",
        ),
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        Binding(
            "ctrl+p", "command_palette", "Commands", id="app.palette", priority=True, show=False
        ),
        Binding("ctrl+t", "change_theme", "Switch theme", id="app.theme", show=False),
        Binding("ctrl+c", "help_quit", show=False, system=True),
    ]

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text: messages quote campaign names, ids and LINE's
        answers, and a name like `[red]x` must read as written, never as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def __init__(
        self,
        services: Services | None = None,
        *,
        open_services: Callable[[], Services] | None = None,
        prepare: Callable[[Services], object] | None = None,
        demo: bool = False,
        config: ConsoleConfig | None = None,
        scheduler_interval: float | None = SCHEDULER_SECONDS,
        contain_errors: bool = False,
    ) -> None:
        super().__init__()
        if services is None and open_services is None:
            raise ValueError("give the services, or a function that opens them")
        self._services = services
        self._open_services = open_services
        self._prepare = prepare
        self.preparing = False
        """True while `prepare` (the demo's seeding) runs after the list is shown."""
        self.demo = demo
        self.config = config or ConsoleConfig()
        self.scheduler_interval = scheduler_interval
        self.contain_errors = contain_errors
        """End on an unexpected error with one line and a crash log (the CLI turns this on),
        instead of Textual's traceback (what tests want)."""
        self.crash_message: str | None = None
        self.startup_error: str | None = None
        """Why the data dir could not be opened (the console then exits with code 2)."""
        self.animation_level = self.config.animations
        self.known_campaigns: list[tuple[str, str, CampaignState]] = []
        self.last_test_recipient: str | None = None
        """The LINE user id of this session's last test send, offered for the next one (kept in
        memory only: a user id is never written in the clear)."""
        self._leaving = False
        self._terminal_gone: int | None = None
        self._backstop_armed = False
        self._backstops: list[threading.Timer] = []
        self._previous_handlers: dict[int, Any] = {}
        self.delivery_stop_timeout = DELIVERY_STOP_TIMEOUT
        self._scheduler_seen: set[str] = set()
        self._quit_armed = False
        self._theme_ready = False
        self._scheduler_missing_noted = False
        if self.config.theme is not None:
            if self.config.theme in self.available_themes:
                self.theme = self.config.theme
            else:
                self._config_problem(
                    "theme",
                    f"no theme {self.config.theme!r}; choose one of "
                    f"{', '.join(sorted(self.available_themes))}",
                )
        if self.config.keymap:
            self.set_keymap(self.config.keymap)

    # --- composition ---------------------------------------------------------------------

    @property
    def services(self) -> Services:
        if self._services is None:
            raise LccError("the console is still opening its data dir; try again in a moment")
        return self._services

    @property
    def services_ready(self) -> bool:
        return self._services is not None

    @property
    def sandbox_notice(self) -> tuple[str, bool] | None:
        """What the badge says while a sandbox is in use (`tui.widgets.sandbox_notice`)."""
        if self._services is None:
            return None
        return sandbox_notice(self._services.settings)

    def get_default_screen(self) -> Screen[Any]:
        if self._services is None:
            return StartingScreen("Opening the console…")
        from tui.screens.campaigns import CampaignListScreen

        return CampaignListScreen()

    def on_mount(self) -> None:
        if self.demo:
            self.sub_title = "demo"
        if self._services is None:
            # until the data dir is known, nothing may print over the screen
            logging.getLogger().addHandler(logging.NullHandler())
            # only once the first frame is out: the imports hold the GIL and would delay it
            self.call_after_refresh(self._start)
        for problem in self.config.problems:
            self.notify(
                str(problem), title="Config file", severity="warning", timeout=30, markup=False
            )
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.call_after_refresh(self._after_first_frame)
        if self.scheduler_interval:
            self.set_interval(self.scheduler_interval, self.run_scheduler_pass, name="scheduler")
        if not self.is_headless and not self.is_web:
            self._watch_terminal()

    def _after_first_frame(self) -> None:
        self._theme_ready = True
        if self._services is not None:
            self._warm_up()

    @work(thread=True, group="startup", exit_on_error=False, description="Opening the console")
    def _start(self) -> None:
        """Import the domain and open the data dir off the UI thread, then show the list."""
        assert self._open_services is not None
        try:
            services = self._open_services()
            import tui.screens.campaigns  # noqa: F401  (imported here, not on the UI thread)
        except LccError as error:
            message = error.describe() if isinstance(error, InputError) else str(error)
            self.startup_error = f"lcc: {message}"
            self.call_from_thread(self.exit, None, 2, self.startup_error)
            return
        self.call_from_thread(self._services_opened, services)

    def _services_opened(self, services: Services) -> None:
        from tui.screens.campaigns import CampaignListScreen

        self._services = services
        self._log_to_data_dir(services.settings.data_dir)
        # pushed over the starting screen (replacing the bottom screen of the stack is not
        # something Textual supports while widgets mount); nothing ever pops the list
        self.push_screen(CampaignListScreen())
        if self._prepare is not None:
            self.preparing = True
            self._run_prepare(services)
        self._warm_up()

    @work(
        thread=True,
        group="delivery-prepare",
        exit_on_error=False,
        description="Preparing the demo",
    )
    def _run_prepare(self, services: Services) -> None:
        """The demo's seeding (its deliveries count as deliveries: quitting stops them)."""
        assert self._prepare is not None
        try:
            self._prepare(services)
        finally:
            self.call_from_thread(self._prepared)

    def _prepared(self) -> None:
        from tui.screens.campaigns import CampaignListScreen

        self.preparing = False
        for screen in self.screen_stack:
            if isinstance(screen, CampaignListScreen):
                screen.load_campaigns(force=True)

    def _log_to_data_dir(self, data_dir: Path) -> None:
        """Warnings from the domain go to <data_dir>/logs/console.log, never over the screen."""
        try:
            folder = data_dir / "logs"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = logging.FileHandler(folder / "console.log", encoding="utf-8")
        except OSError:
            return
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(handler)

    @work(thread=True, group="startup", exit_on_error=False, description="Getting ready")
    def _warm_up(self) -> None:
        """Import the campaign screen ahead of the first Enter, then check the keymap's ids."""
        for module in ("tui.screens.campaign", "tui.tabs", "tui.screens.conversions"):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        self.call_from_thread(self._check_keymap_ids)

    def _config_problem(self, key: str, message: str) -> None:
        source = str(self.config.path) if self.config.path else "config"
        self.config.problems.append(InputError(message, source=source, location=key))

    # --- campaigns -------------------------------------------------------------------------

    def remember_campaigns(self, campaigns: list[tuple[str, str, CampaignState]]) -> None:
        """The list's latest rows, for "open campaign …" in the command palette."""
        self.known_campaigns = campaigns

    def open_campaign(self, campaign_id: str) -> None:
        """Show a campaign on its first tab, from wherever the operator is."""
        from tui.screens.campaign import CampaignScreen
        from tui.screens.campaigns import CampaignListScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, CampaignListScreen):
            self.pop_screen()
        self.push_screen(CampaignScreen(campaign_id))

    # --- help, themes, keymap --------------------------------------------------------------

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen.for_screen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own commands, minus those the console's provider already lists."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys", "Theme"):
                yield command

    def _theme_changed(self, _theme: object) -> None:
        if self._theme_ready and self.config.path is not None:
            self._persist_theme(self.theme)

    @work(thread=True, exclusive=True, group="config", exit_on_error=False)
    def _persist_theme(self, theme: str) -> None:
        if self.config.path is not None:
            save_theme(self.config.path, theme)

    def _check_keymap_ids(self) -> None:
        """Warn about keymap entries that name no binding (a typo would silently do nothing)."""
        if not self.config.keymap:
            return
        for problem in unknown_binding_ids(self.config, known_binding_ids()):
            self.notify(
                str(problem), title="Config file", severity="warning", timeout=30, markup=False
            )

    # --- workers and errors ---------------------------------------------------------------

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        what = event.worker.description or event.worker.name or "background work"
        if isinstance(error, LccError):
            self.notify(
                str(error), title=f"{what} failed", severity="error", timeout=15, markup=False
            )
        elif isinstance(error, BaseException):
            self.report_internal_error(error, what=what)

    def report_internal_error(self, error: BaseException, *, what: str = "") -> Path | None:
        """Write the traceback to the crash log and tell the operator where it is."""
        path = self.write_crash_log(error)
        where = f"; details in {path}" if path else ""
        prefix = f"{what}: " if what else ""
        self.notify(
            f"{prefix}internal error: {type(error).__name__}: {error}{where}. "
            "Your data is safe; you can carry on, or quit and report the log.",
            title="Internal error",
            severity="error",
            timeout=30,
            markup=False,
        )
        return path

    def write_crash_log(self, error: BaseException) -> Path | None:
        try:
            if self._services is not None:
                data_dir = self._services.settings.data_dir
            else:
                from core.settings import default_data_dir

                data_dir = default_data_dir()
            folder = data_dir / "logs"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / "crash.log"
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"--- {datetime.now(UTC).isoformat()} (console)\n")
                handle.write("".join(traceback.format_exception(error)))
            path.chmod(0o600)
            return path
        except Exception:
            return None

    def _handle_exception(self, error: Exception) -> None:
        """An error no handler caught. Textual cannot carry on after one (the failing widget's
        message loop has stopped), so end the session tidily: the traceback goes to the crash
        log, the terminal gets one line saying where, and workers are cancelled on the way out
        (deliveries record what they sent when cancelled)."""
        if not self.contain_errors:
            super()._handle_exception(error)
            return
        path = self.write_crash_log(error)
        where = f"; details in {path}" if path else ""
        self.crash_message = f"internal error: {type(error).__name__}: {error}{where}"
        self._return_code = 1
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        self.panic(Text(f"lcc: {self.crash_message}"))

    # --- the scheduler -------------------------------------------------------------------

    def run_scheduler_pass(self) -> None:
        """One pass of `core.scheduler.run_pass`: launch what is due, resume what was cut off."""
        if (
            self._leaving
            or self._services is None
            or any(w.group == "delivery-scheduler" and not w.is_finished for w in self.workers)
        ):
            return
        try:
            scheduler = importlib.import_module("core.scheduler")
        except ModuleNotFoundError as error:
            if error.name != "core.scheduler":
                raise
            if not self._scheduler_missing_noted:
                self._scheduler_missing_noted = True
                self.log.warning("core.scheduler is not available; no passes while open")
            return
        self._scheduler_pass(scheduler)

    @work(group="delivery-scheduler", exit_on_error=False, description="Scheduler pass")
    async def _scheduler_pass(self, scheduler: Any) -> None:
        report = await scheduler.run_pass(self.services, listener=self._scheduler_event)
        if getattr(report, "listener", None) is None:
            # a scheduler without live events: tell what the pass did at its end
            for line in scheduler_lines(report):
                self._scheduler_event(line)

    def _scheduler_event(self, line: str) -> None:
        """One thing a scheduler pass did, as a notification (each standing condition once)."""
        if line.startswith(SCHEDULER_REPEATING):
            if line in self._scheduler_seen:
                return
            self._scheduler_seen.add(line)
        severity: Any = next(
            (level for label, level in SCHEDULER_SEVERITY.items() if line.startswith(label)),
            "information",
        )
        self.notify(self._with_names(line), title="Scheduler", severity=severity, markup=False)

    def _with_names(self, line: str) -> str:
        for campaign_id, name, _state in self.known_campaigns:
            if campaign_id in line:
                return line.replace(campaign_id, f"{literal(name)} ({campaign_id})", 1)
        return line

    # --- leaving -------------------------------------------------------------------------

    def delivery_workers(self) -> list[Worker[Any]]:
        return [
            worker
            for worker in self.workers
            if worker.group.startswith(DELIVERY_GROUP_PREFIX) and not worker.is_finished
        ]

    async def action_quit(self) -> None:
        running = [w for w in self.delivery_workers() if w.group == DELIVERY_GROUP_PREFIX]
        if running and not self._quit_armed:
            self._quit_armed = True
            self.set_timer(5.0, self._disarm_quit)
            key = self._key_for("app.quit") or "ctrl+q"
            self.notify(
                f"A delivery is running. Press {key} again within 5 s to stop it; "
                "what was sent so far is recorded and it can be resumed.",
                title="Quit?",
                severity="warning",
                markup=False,
            )
            return
        await self.shutdown_cleanly()

    def _disarm_quit(self) -> None:
        self._quit_armed = False

    def _key_for(self, binding_id: str) -> str | None:
        for key, active in self.screen.active_bindings.items():
            if active.binding.id == binding_id:
                return self.get_key_display(active.binding.with_key(key))
        return None

    async def shutdown_cleanly(self, reason: str | None = None) -> None:
        """Stop deliveries through the engine's stop path, then exit.

        `Services.stop_deliveries` lets requests already in flight finish and be recorded and
        leaves the rest pending (the next run resumes them under the same retry keys). Only a
        delivery that does not stop within `delivery_stop_timeout` is cancelled, which still
        flushes what it recorded.
        """
        if self._leaving:
            return
        self._leaving = True
        why = reason or "the console is closing"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delivery_stop_timeout
        # asked again while they run: a worker that delivers campaign after campaign (the
        # scheduler, the demo's seeding) starts the next one before it sees the first stop
        while self.delivery_workers() and loop.time() < deadline:
            self.services.stop_deliveries(why)
            await asyncio.sleep(0.05)
        stubborn = self.delivery_workers()
        for worker in stubborn:
            worker.cancel()
        if stubborn:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(w.wait() for w in stubborn), return_exceptions=True),
                    DELIVERY_CANCEL_WAIT_SECONDS,
                )
        self.log.warning(why)
        if self._terminal_gone is not None:
            self._leave_without_terminal(self._terminal_gone)
        self.exit()

    def _leave_without_terminal(self, signum: int) -> None:
        """Leave on a signal, maybe with nobody to read the screen (SSH dropped, tmux killed).

        Deliveries are stopped and recorded by now, and every store write is complete (each is
        a whole-file rename), so ending the process cannot lose anything; without this, the
        driver's last writes to the dead terminal fill its output queue and the process waits
        forever, holding its campaigns' claims.
        """
        driver = self._driver
        if driver is not None and (signum == signal.SIGHUP or not _terminal_alive()):
            with contextlib.suppress(AttributeError, TypeError):
                driver.write = lambda data: None  # type: ignore[method-assign]

        self._arm_backstop(EXIT_GRACE_SECONDS, signum)

    def _arm_backstop(self, seconds: float, signum: int) -> None:
        """A headless app (tests, Pilot) has no terminal to lose and shares its process."""
        if not self.is_headless:
            self._backstops.append(_end_after(seconds, signum))

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """`App.run`, after which no backstop may end the process (it is leaving on its own)."""
        try:
            return super().run(*args, **kwargs)
        finally:
            for timer in self._backstops:
                timer.cancel()
            self._backstops.clear()

    def _watch_terminal(self) -> None:
        """Leave cleanly when the terminal goes away (SSH drop) or we are asked to stop.

        A plain signal handler rather than the loop's: it also runs while the loop is stuck in a
        write to a terminal that is gone, and then the backstop ends the process (as safe as a
        kill: the outbox resumes what was in flight under the same retry keys).
        """
        loop = asyncio.get_running_loop()
        backstop = self.delivery_stop_timeout + DELIVERY_CANCEL_WAIT_SECONDS + EXIT_GRACE_SECONDS

        def on_signal(signum: int, frame: object) -> None:
            if self._backstop_armed:
                return
            self._backstop_armed = True
            self._arm_backstop(backstop, signum)
            with contextlib.suppress(RuntimeError):  # the loop has closed: the backstop ends us
                loop.call_soon_threadsafe(self._terminal_lost, signum)

        for signum in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # not the main thread (tests)
                self._previous_handlers[signum] = signal.signal(signum, on_signal)
        self.set_interval(TERMINAL_CHECK_SECONDS, self._check_terminal, name="terminal-check")

    def on_unmount(self) -> None:
        """Give the process its signal handlers back (tests run many apps in one process)."""
        for signum, handler in self._previous_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _check_terminal(self) -> None:
        if not _terminal_alive():
            self._terminal_lost(signal.SIGHUP)

    def _terminal_lost(self, signum: int) -> None:
        if self._terminal_gone is None:
            self._terminal_gone = signum
        name = signal.Signals(signum).name
        self.run_worker(
            self.shutdown_cleanly(f"{name}: stopping deliveries and leaving"),
            group="shutdown",
            exclusive=True,
            exit_on_error=False,
        )


def _end_after(seconds: float, signum: int) -> threading.Timer:
    """End the process in `seconds` unless it has ended, or the timer is cancelled, by then."""

    def end() -> None:
        logging.shutdown()
        os._exit(128 + signum)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()
    return timer


def _terminal_alive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


SCHEDULER_SEVERITY = {
    "suspended": "error",
    "error": "error",
    "flagged for the operator": "warning",
    "waiting for the operator": "warning",
}


SCHEDULER_REPEATING = ("waiting for the operator", "being delivered by another process")
"""Conditions a pass reports every time until someone acts: notified once per session."""


def scheduler_lines(report: Any) -> list[str]:
    """The lines of a pass report (`PassReport.lines()`), or its items for simpler reports."""
    if report is None:
        return []
    lines = getattr(report, "lines", None)
    if callable(lines):
        return [str(line) for line in lines()]
    items = report if isinstance(report, list | tuple) else [report]
    return [str(item) for item in items]


def known_binding_ids() -> set[str]:
    """Every binding id declared by the console's widgets and screens loaded so far."""
    from textual.dom import DOMNode

    ids: set[str] = set()
    pending: list[type[Any]] = [DOMNode]
    seen: set[type[Any]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        for binding in cls.__dict__.get("BINDINGS", []):
            binding_id = getattr(binding, "id", None)
            if binding_id:
                ids.add(binding_id)
    return ids
