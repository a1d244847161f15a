"""Pilot tests of the console shell: opening campaigns, the badge, errors, leaving cleanly.

The helpers at the top build a fixed world (ids, names, times) so these tests and the
snapshots see the same data on every run and machine.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Tab, TabbedContent, Tabs

from core.delivery_log import make_row
from core.demo import seed_demo
from core.errors import InputError, LccError
from core.models import (
    AudienceRef,
    Campaign,
    CampaignSpec,
    CampaignState,
    Profile,
    ScheduledSchedule,
    Segment,
    SenderAccount,
    TextV2Message,
    Workspace,
)
from core.sandbox.faults import Fault, SandboxSpec
from core.sandbox.state import SandboxState
from core.service import Services
from core.settings import Settings, load_settings
from tests.conftest import FIXTURES
from tui.app import ConsoleApp, known_binding_ids, scheduler_lines
from tui.screens.campaign import CampaignScreen
from tui.screens.campaigns import CampaignListScreen, CampaignTable
from tui.screens.help import HelpScreen
from tui.widgets import SANDBOX_NOTICE, SandboxBadge, literal, sandbox_notice

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class FrozenClock:
    """A clock that never moves: snapshots and relative times stay the same."""

    def __init__(self, moment: datetime = NOW) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


WORKSPACE = "marketing-jp"
ACCOUNT = SenderAccount(
    id="acme_oa",
    name="Acme Official",
    channel_id="1656000001",
    workspaces=[WORKSPACE],
    token_env="ACME_LINE_TOKEN",
)
SEGMENT = Segment(
    parent_segment="All Customers",
    segment="New Friends",
    profiles=[
        Profile(profile_id=f"c-{n:03d}", line_user_id=f"U{n:032x}", attributes={})
        for n in range(1, 4)
    ],
)


def fixed_campaign(
    number: int,
    name: str,
    state: CampaignState = CampaignState.DRAFT,
    *,
    age: timedelta,
    scheduled: datetime | None = None,
    zone: str | None = None,
) -> Campaign:
    changed = NOW - age
    schedule: Any = {"type": "immediate"}
    if scheduled is not None:
        schedule = ScheduledSchedule(at=scheduled, timezone=zone)
    return Campaign(
        id=f"cmp-{number:012d}",
        workspace=WORKSPACE,
        name=name,
        sender_account=ACCOUNT.id,
        audience=AudienceRef(parent_segment=SEGMENT.parent_segment, segment=SEGMENT.segment),
        messages=[TextV2Message(text=f"Hello from {name}")],
        schedule=schedule,
        state=state,
        created_at=changed,
        updated_at=changed,
        launched_at=changed if state is not CampaignState.DRAFT else None,
    )


def fixed_world(services: Services) -> list[Campaign]:
    """Five campaigns, one per state, with fixed ids and times; one has a delivery log."""
    store = services.store
    store.directory.save_workspace(Workspace(name=WORKSPACE))
    store.directory.save_account(ACCOUNT)
    store.directory.save_segment(SEGMENT)
    tokyo = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    campaigns = [
        fixed_campaign(1, "welcome_friends", age=timedelta(minutes=5)),
        fixed_campaign(
            2,
            "spring_sale_2026",
            CampaignState.PLANNED,
            age=timedelta(hours=3),
            scheduled=tokyo,
            zone="Asia/Tokyo",
        ),
        fixed_campaign(3, "[red]black friday[/red]", CampaignState.ACTIVE, age=timedelta(days=1)),
        fixed_campaign(4, "autumn_newsletter", CampaignState.FINISHED, age=timedelta(days=3)),
        fixed_campaign(5, "winter_preview", CampaignState.SUSPENDED, age=timedelta(days=20)),
    ]
    store.table("campaigns", "campaigns").insert_multiple(
        campaign.model_dump(mode="json") for campaign in campaigns
    )
    rows = [
        make_row(
            time=int(NOW.timestamp()),
            campaign_id="cmp-000000000004",
            channel_name=ACCOUNT.name,
            line_user_id=profile.line_user_id,
            message_type="textV2",
            success=index < 2,
            error_code="" if index < 2 else "400",
            profile_id=profile.profile_id,
            message_index=0,
        )
        for index, profile in enumerate(SEGMENT.profiles or [])
    ]
    store.delivery_log("cmp-000000000004").append(rows)
    return campaigns


def world_services(data_dir: Path, **settings: Any) -> Services:
    services = Services.open(load_settings(data_dir=data_dir, **settings), clock=FrozenClock())
    fixed_world(services)
    return services


def console(services: Services, **options: Any) -> ConsoleApp:
    options.setdefault("scheduler_interval", None)
    return ConsoleApp(services, **options)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until the screen is drawn and every worker (store reads) has finished."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def table_of(app: ConsoleApp) -> CampaignTable:
    return app.screen.query_one(CampaignTable)


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, seconds: float = 10.0
) -> None:
    """Settle until `condition` holds: a screen pushed by a worker's callback takes a few
    turns of the loop (and longer on a busy machine)."""
    for _ in range(int(seconds / 0.05)):
        await settle(pilot)
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def until_stopped(app: ConsoleApp, seconds: float = 10.0) -> None:
    """Wait for the app to leave by itself (Pilot cannot pause an app that has exited)."""
    for _ in range(int(seconds / 0.05)):
        if app._exit_renderables or not app.is_running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the console did not exit")


def notifications(app: ConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


# --- tests ----------------------------------------------------------------------------------


async def test_opens_a_campaign_on_its_five_tabs(settings: Settings) -> None:
    services = Services.open(settings)
    seed_demo(services, FIXTURES)
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = table_of(app)
        assert len(table.rows) >= 1
        assert "SANDBOX" in str(app.screen.query_one("#sandbox-badge").render())
        first = table.current_id
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.campaign_id == first
        labels = [str(tab.label) for tab in app.screen.query_one(Tabs).query(Tab)]
        names = ["Audience", "Content", "Schedule", "Activation", "UTM", "Report"]  # 80 columns
        assert len(labels) == len(names)
        # a tab's label may carry a problem marker after its name
        assert all(label.startswith(name) for label, name in zip(labels, names, strict=True))
        assert app.screen.query_one(TabbedContent).active == "audience"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen)


async def test_sandbox_badge_on_every_screen_and_only_with_the_sandbox(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.query(SandboxBadge)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.query(SandboxBadge)
        await pilot.press("escape", "enter")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.query(SandboxBadge)

    real = world_services(
        data_dir.parent / "real",
        line_api_base="https://api.line.me",
        capi_base="https://conversion-api.tr.line.me",
    )
    app = console(real)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.query(SandboxBadge)

    # live messages, sandboxed conversions: the badge must not say "not to phones"
    half = world_services(data_dir.parent / "half", line_api_base="https://api.line.me")
    app = console(half)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        badge = app.screen.query_one(SandboxBadge)
        said = str(badge.render())
        assert "LIVE LINE (api.line.me) · messages reach phones" in said
        assert "not to phones" not in said and badge.has_class("-live")


def test_the_badge_says_which_api_is_the_sandbox() -> None:
    def said(**bases: str) -> tuple[str, bool] | None:
        return sandbox_notice(load_settings(data_dir=Path("/nonexistent"), **bases))

    assert said() == (SANDBOX_NOTICE, False)
    assert said(capi_base="https://conversion-api.tr.line.me") == (
        "SANDBOX LINE · messages stay in the simulator · conversions go to "
        "conversion-api.tr.line.me",
        False,
    )
    assert said(line_api_base="https://api.line.me") == (
        "LIVE LINE (api.line.me) · messages reach phones · conversions: sandbox",
        True,
    )
    live = {
        "line_api_base": "https://api.line.me",
        "capi_base": "https://conversion-api.tr.line.me",
    }
    assert said(**live) is None


async def test_starts_and_draws_with_no_color(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = console(world_services(data_dir))
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert len(table_of(app).rows) == 5
        screenshot = app.export_screenshot()
    assert "welcome_friends" in screenshot
    # the state is written out, so it reads without colour
    assert "Suspended" in screenshot and "Finished" in screenshot


async def test_worker_errors_become_notifications_and_a_crash_log(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services)

    def refused() -> None:
        raise InputError("the segment file is gone", source="segments/x.csv", location="line 3")

    def broken() -> None:
        raise RuntimeError("unexpected")

    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.run_worker(refused, thread=True, exit_on_error=False, description="Recount")
        app.run_worker(broken, thread=True, exit_on_error=False, description="Preview")
        await settle(pilot)
        shown = notifications(app)
        assert "segments/x.csv: line 3: the segment file is gone" in shown
        [internal] = [m for m in shown if "internal error" in m]
        crash_log = services.settings.data_dir / "logs" / "crash.log"
        assert str(crash_log) in internal
        assert "RuntimeError: unexpected" in crash_log.read_text()
        assert app.is_running


async def test_an_uncaught_error_ends_with_one_line_and_a_crash_log(data_dir: Path) -> None:
    services = world_services(data_dir)
    app = console(services, contain_errors=True)
    with pytest.raises(ValueError, match="a handler bug"):
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)

            def explode() -> None:
                raise ValueError("a handler bug")

            app.call_later(explode)
            await pilot.pause(0.2)
    crash_log = services.settings.data_dir / "logs" / "crash.log"
    assert "ValueError: a handler bug" in crash_log.read_text()
    assert app.return_code == 1
    assert app.crash_message == f"internal error: ValueError: a handler bug; details in {crash_log}"


async def test_losing_the_terminal_stops_deliveries_through_the_engine(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = world_services(data_dir)
    app = console(services)
    stopped = asyncio.Event()
    recorded: list[str] = []

    def stop_deliveries(reason: str) -> None:
        recorded.append(reason)
        stopped.set()

    monkeypatch.setattr(services, "stop_deliveries", stop_deliveries)

    async def delivery() -> None:
        await stopped.wait()  # the engine finishes requests in flight, records, returns
        recorded.append("in-flight outcomes recorded")

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.run_worker(delivery(), group="delivery", exit_on_error=False)
        await pilot.pause()
        app._terminal_lost(1)
        await until_stopped(app)
    reason = "SIGHUP: stopping deliveries and leaving"
    assert recorded[0] == reason and recorded[-1] == "in-flight outcomes recorded"
    assert set(recorded[:-1]) == {reason}


async def test_a_delivery_that_does_not_stop_is_cancelled_after_the_timeout(
    data_dir: Path,
) -> None:
    app = console(world_services(data_dir))
    app.delivery_stop_timeout = 0.2
    cancelled: list[bool] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.run_worker(stubborn(), group="delivery", exit_on_error=False)
        await pilot.pause()
        app._terminal_lost(15)
        await until_stopped(app)
    assert cancelled == [True]


async def test_a_dropped_terminal_mid_delivery_leaves_every_sent_request_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real engine on the sandbox, slowed down, stopped half way by a lost terminal."""
    monkeypatch.setenv("ACME_LINE_TOKEN", "sandbox-token")
    sandbox = SandboxState(spec=SandboxSpec(faults=[Fault(kind="latency", ms=20)]))
    settings = load_settings(data_dir=tmp_path / "data", delivery_concurrency=4)
    services = Services.open(settings, sandbox=sandbox)
    store = services.store
    store.directory.save_workspace(Workspace(name=WORKSPACE))
    store.directory.save_account(ACCOUNT)
    big = Segment(
        parent_segment="All Customers",
        segment="Everyone",
        profiles=[
            Profile(
                profile_id=f"p-{n:04d}",
                line_user_id=f"U{n:032x}",
                attributes={"first_name": f"N{n}"},
            )
            for n in range(1, 401)
        ],
    )
    store.directory.save_segment(big)
    campaign = services.create_campaign(
        CampaignSpec(
            name="big_send",
            sender_account=ACCOUNT.id,
            audience=AudienceRef(parent_segment=big.parent_segment, segment=big.segment),
            # personalised, so one push per recipient (an unpersonalised one is a multicast)
            messages=[TextV2Message(text="Hello {{ profile.first_name }}")],
        ),
        workspace=WORKSPACE,
    )
    app = console(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await services.launch_async(campaign.id, actor="operator")
        app.run_worker(
            services.deliver(campaign.id, actor="operator"), group="delivery", exit_on_error=False
        )
        for _ in range(400):
            if len(sandbox.deliveries) >= 40:
                break
            await asyncio.sleep(0.01)
        app._terminal_lost(1)
        await until_stopped(app)
    received = set(sandbox.deliveries)
    assert 40 <= len(received) < 400, "the delivery should have stopped part way"
    counts = services.counts(campaign.id)
    assert counts.delivered == len(received), "every request LINE accepted is in the log"
    assert counts.failed == 0
    assert store.campaigns.get(campaign.id).state is CampaignState.ACTIVE  # resumable


async def test_quit_during_a_delivery_asks_again(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    app.delivery_stop_timeout = 0.2  # the stand-in delivery ignores stop requests: cancel it soon
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.run_worker(asyncio.sleep(60), group="delivery", exit_on_error=False)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running
        assert any("A delivery is running" in m for m in notifications(app))
        await pilot.press("ctrl+q")
        await until_stopped(app)
    assert not app.is_running


async def test_scheduler_pass_events_become_notifications(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = world_services(data_dir)
    calls: list[Services] = []

    async def run_pass(given: Services, *, listener: Any = None, **_: Any) -> Any:
        calls.append(given)
        listener("started cmp-000000000002")
        listener("suspended cmp-000000000003: LINE refused: monthly limit")
        listener("waiting for the operator cmp-000000000005: late")
        return types.SimpleNamespace(listener=listener)

    fake = types.ModuleType("core.scheduler")
    fake.run_pass = run_pass  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "core.scheduler", fake)
    app = console(services)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.run_scheduler_pass()
        await settle(pilot)
        app.run_scheduler_pass()
        await settle(pilot)
        assert calls == [services, services]
        shown = [(n.message, n.severity) for n in app._notifications]
        assert ("started spring_sale_2026 (cmp-000000000002)", "information") in shown
        assert (
            "suspended [red]black friday[/red] (cmp-000000000003): LINE refused: monthly limit",
            "error",
        ) in shown
        waiting = [m for m, _ in shown if m.startswith("waiting")]
        assert len(waiting) == 1, "a standing condition is told once, not every 30 s"


async def test_the_real_scheduler_pass_runs_in_the_console(data_dir: Path) -> None:
    pytest.importorskip("core.scheduler")
    services = world_services(data_dir)
    app = console(services)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.run_scheduler_pass()
        await settle(pilot)
        # spring_sale_2026 is Planned for 2026-12-01 00:00 UTC, after the frozen clock: untouched
        assert services.store.campaigns.get("cmp-000000000002").state is CampaignState.PLANNED
        assert app.is_running


def test_scheduler_lines_from_reports() -> None:
    class Report:
        def lines(self) -> list[str]:
            return ["started cmp-1", "error cmp-2: boom"]

    assert scheduler_lines(None) == []
    assert scheduler_lines(Report()) == ["started cmp-1", "error cmp-2: boom"]


def test_every_console_binding_has_an_id() -> None:
    from textual.binding import Binding

    from tui.screens.campaigns import SearchInput
    from tui.screens.confirm import ConfirmByTyping
    from tui.screens.new_campaign import NewCampaignDialog

    for cls in (
        ConsoleApp,
        CampaignListScreen,
        CampaignTable,
        SearchInput,
        HelpScreen,
        NewCampaignDialog,
        ConfirmByTyping,
    ):
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.id or binding.system, f"{cls.__name__}: {binding.key} has no id"
    assert {"app.quit", "app.help", "campaigns.new", "campaigns.open"} <= known_binding_ids()


def test_default_keys_are_safe_over_ssh_and_tmux() -> None:
    from textual.binding import Binding

    from tui.screens.campaigns import SearchInput

    unsafe = {"ctrl+enter", "ctrl+s", "ctrl+a", "ctrl+b", "ctrl+j", "ctrl+o"}
    for cls in (ConsoleApp, CampaignListScreen, CampaignTable, SearchInput, HelpScreen):
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding)
            keys = set(binding.key.split(","))
            assert not keys & unsafe, f"{cls.__name__}: {binding.key}"
    bindings = [b for b in ConsoleApp.BINDINGS if isinstance(b, Binding)]
    quit_keys = [b.key for b in bindings if b.action == "quit"]
    assert quit_keys == ["ctrl+q"]


def test_user_text_is_shown_literally() -> None:
    assert literal("[red]x[/red]") == "[red]x[/red]"
    assert literal("a\x1b[31mb") == "a␛[31mb"
    assert literal("line\nbreak\ttab") == "line⏎break→tab"
    assert literal("line\nbreak", multiline=True) == "line\nbreak"
    assert literal("bell\x07 c1\x9b") == "bell␇ c1\\x9b"


async def test_errors_keep_lcc_messages_as_they_are(data_dir: Path) -> None:
    app = console(world_services(data_dir))

    def fails() -> None:
        raise LccError("cannot launch a campaign that is Finished")

    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.run_worker(fails, thread=True, exit_on_error=False)
        await settle(pilot)
        assert "cannot launch a campaign that is Finished" in notifications(app)


async def test_the_cli_path_draws_first_then_opens_the_data_dir_and_prepares(
    data_dir: Path,
) -> None:
    services = world_services(data_dir)
    prepared: list[str] = []

    def prepare(given: Services) -> None:
        prepared.append(given.create_draft("made_by_prepare", workspace=WORKSPACE).id)

    app = ConsoleApp(open_services=lambda: services, prepare=prepare, scheduler_interval=None)
    async with app.run_test(size=(80, 24)) as pilot:

        def listed() -> bool:
            screen = app.screen
            return isinstance(screen, CampaignListScreen) and any(
                row.name == "made_by_prepare" for row in screen.query_one(CampaignTable).rows
            )

        await wait_until(pilot, listed, "the list with what prepare made")
        assert app.services is services and not app.preparing
        assert len(prepared) == 1


async def test_bad_settings_end_the_console_with_exit_code_2() -> None:
    def refuse() -> Services:
        raise InputError("expected 'sandbox' or an http(s) base URL", source="settings")

    app = ConsoleApp(open_services=refuse, scheduler_interval=None)
    async with app.run_test(size=(80, 24)):
        await until_stopped(app)
    assert app.return_code == 2
    assert app.startup_error == "lcc: settings: expected 'sandbox' or an http(s) base URL"


def test_lcc_and_lcc_demo_pass_no_mouse_and_the_config_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.cli import build_parser
    from tui.commands import console as console_command

    runs: list[dict[str, Any]] = []

    def fake_run(self: ConsoleApp, **options: Any) -> None:
        runs.append({"options": options, "config": self.config, "demo": self.demo})

    monkeypatch.setattr(ConsoleApp, "run", fake_run)
    config = tmp_path / "c.toml"
    config.write_text("mouse = true\n")
    monkeypatch.setenv("LCC_CONFIG_FILE", str(config))
    assert console_command.run(build_parser().parse_args(["demo", "--no-mouse"])) == 0
    assert console_command.run(build_parser().parse_args(["--no-mouse"])) == 0
    assert console_command.run(build_parser().parse_args([])) == 0
    config.write_text("mouse = false\n")
    assert console_command.run(build_parser().parse_args(["demo"])) == 0
    assert [run["options"]["mouse"] for run in runs] == [False, False, True, False]
    assert [run["demo"] for run in runs] == [True, False, False, True]
    assert runs[0]["config"].path == config


def test_serve_runs_the_same_console_per_browser(tmp_path: Path) -> None:
    from tui.cli import build_parser
    from tui.commands.serve import console_command

    given = build_parser().parse_args(
        ["serve", "--data-dir", str(tmp_path / "d"), "--line-api-base", "https://api.line.me"]
    )
    assert console_command(given) == [
        sys.executable,
        "-m",
        "tui",
        "--data-dir",
        str((tmp_path / "d").resolve()),
        "--line-api-base",
        "https://api.line.me",
        "--capi-base",
        "sandbox",
    ]
    demo = build_parser().parse_args(["serve", "--demo", "--port", "9000"])
    assert console_command(demo) == [sys.executable, "-m", "tui", "demo"]


async def test_confirm_by_typing_needs_the_exact_text(data_dir: Path) -> None:
    from textual.widgets import Button

    from tui.screens.confirm import ConfirmByTyping

    app = console(world_services(data_dir))
    results: list[bool | None] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        dialog = ConfirmByTyping(
            "Launch [b]spring[/b]?", "Sends to 3 people.", "Acme Official", confirm_label="Launch"
        )
        app.push_screen(dialog, results.append)
        await settle(pilot)
        assert "Launch [b]spring[/b]?" in str(dialog.query_one(".dialog-title").render())
        confirm = dialog.query_one("#confirm", Button)

        def can_confirm() -> bool:
            return not confirm.disabled

        await pilot.press(*"Acme Officia")
        await pilot.pause()
        assert not can_confirm()
        await pilot.press("enter")  # not yet: nothing happens
        await pilot.pause()
        assert results == [] and app.screen is dialog
        await pilot.press("l")
        await pilot.pause()
        assert can_confirm()
        await pilot.press("enter")
        await settle(pilot)
        assert results == [True]
        app.push_screen(ConfirmByTyping("Cancel?", "", "x"), results.append)
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert results == [True, False]
