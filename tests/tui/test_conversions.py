"""Pilot tests of the Conversions screen: saved export jobs, their runs and next run times.

Jobs are saved with `ExportJobs(store).add(...)` in a temporary data dir and run against the
in-process sandbox (`capi_base = sandbox`), on a frozen clock. The helpers at the top build the
fixed world the snapshots use too.
"""

from __future__ import annotations

import csv
import os
import shlex
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.binding import Binding
from textual.widgets import Input, Static

from core import cron
from core.export_jobs import Claim, ExportJob, ExportJobs, JobRun
from core.service import Services
from core.settings import load_settings
from tests.tui.test_app import FrozenClock, console, notifications, settle
from tui.app import ConsoleApp, known_binding_ids
from tui.cli import build_parser
from tui.screens.confirm import ConfirmByTyping
from tui.screens.conversions import (
    ADD_EXAMPLE,
    ADD_USAGE,
    COLUMNS,
    ConversionsScreen,
    JobTable,
    schedule_words,
)
from tui.screens.help import HelpScreen
from tui.widgets import SandboxBadge

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
TAG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CREATED = NOW - timedelta(days=30)
SNAPSHOT_FILES = Path("/tmp/lcc-conversions-snapshot")
"""A fixed folder for the snapshot world's files: their paths are drawn on screen."""


def conversions_file(path: Path, count: int = 3, *, at: datetime = NOW) -> Path:
    """A CSV of `count` valid conversion events at `at`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # written aside and renamed: parallel test workers share the snapshot folder, and a reader
    # must never see the file missing or half written
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["deduplication_key", "event_type", "source_type", "event_timestamp", "email"]
        )
        for row in range(count):
            writer.writerow([f"k{row}", "conversion", "web", int(at.timestamp()), f"u{row}@e.com"])
    os.replace(partial, path)
    return path


def job(name: str, file: Path | str, **fields: object) -> ExportJob:
    values: dict[str, object] = {
        "name": name,
        "file": str(file),
        "tag_id": TAG,
        "schedule": "@hourly",
        "created_at": CREATED,
        "baseline": CREATED,
    }
    values.update(fields)
    return ExportJob.model_validate(values)


def record_run(jobs: ExportJobs, name: str, run: JobRun) -> None:
    """Record a finished run with fixed times, claimed as a scheduler (or `jobs run`) would."""
    claim, _ = jobs.claim(name, run.started_at, trigger=run.trigger)
    assert claim is not None, f"{name} is not due at {run.started_at}"
    run = run.model_copy(update={"due": claim.due})
    jobs.finish(name, claim, run, now=run.finished_at or run.started_at)


def a_run(
    started: datetime,
    outcome: Any = "ok",
    *,
    sent: int = 0,
    invalid: int = 0,
    failed: int = 0,
    message: str | None = None,
    trigger: Any = "schedule",
    took: float = 2.4,
) -> JobRun:
    return JobRun(
        trigger=trigger,
        started_at=started,
        finished_at=started + timedelta(seconds=took),
        outcome=outcome,
        sent=sent,
        skipped_invalid=invalid,
        failed=failed,
        batches=1 if sent or failed else 0,
        message=message,
    )


def open_services(data_dir: Path, **settings: Any) -> Services:
    services = Services.open(load_settings(data_dir=data_dir, **settings), clock=FrozenClock(NOW))
    services.sandbox.capi.clock = lambda: NOW
    return services


def fixed_jobs(services: Services, files: Path = SNAPSHOT_FILES) -> None:
    """Four jobs: daily and hourly with history, one disabled after failures, one by hand."""
    jobs = ExportJobs(services.store)
    nightly = conversions_file(files / "nightly.csv")
    web = conversions_file(files / "web-events.csv")
    jobs.add(
        job(
            "nightly",
            nightly,
            schedule="0 3 * * *",
            timezone="Asia/Tokyo",
            delay_s=900,
            token_env="LINE_CAPI_TOKEN",
        )
    )
    jobs.add(job("hourly-web", web, schedule="@hourly", batch_size=5000))
    jobs.add(
        job(
            "weekly-mon",
            files / "gone" / "weekly.jsonl",
            schedule="0 0 1 * 1",
            timezone="America/New_York",
        )
    )
    jobs.add(job("backfill", files / "backfill.csv", schedule=""))
    day = timedelta(days=1)
    for days_ago in (2, 1):
        started = datetime(2026, 11, 30, 18, 15, tzinfo=UTC) - days_ago * day
        record_run(jobs, "nightly", a_run(started, sent=990, invalid=10, took=3.2))
    record_run(jobs, "hourly-web", a_run(datetime(2026, 11, 30, 8, tzinfo=UTC), sent=1200))
    record_run(
        jobs,
        "hourly-web",
        a_run(
            datetime(2026, 11, 30, 9, tzinfo=UTC),
            "failed",
            sent=1000,
            failed=200,
            message="batch 2 (rows 1001-1200): 400 Bad Request; LINE discarded all 200 events",
        ),
    )
    for weeks_ago in (3, 2, 1):
        started = datetime(2026, 11, 30, 5, 0, tzinfo=UTC) - weeks_ago * 7 * day
        record_run(
            jobs,
            "weekly-mon",
            a_run(
                started,
                "failed",
                message=f"{files / 'gone' / 'weekly.jsonl'}: cannot open the file",
                took=0.1,
            ),
        )


def world(data_dir: Path, **settings: Any) -> Services:
    services = open_services(data_dir, **settings)
    fixed_jobs(services)
    return services


async def open_screen(app: ConsoleApp, pilot: Any) -> ConversionsScreen:
    await settle(pilot)
    app.push_screen(ConversionsScreen())
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, ConversionsScreen)
    return screen


def row_texts(screen: ConversionsScreen) -> dict[str, dict[str, str]]:
    """Each job's row as {column key: plain text}."""
    table = screen.query_one(JobTable)
    rows: dict[str, dict[str, str]] = {}
    for row_key in table.rows:
        cells = table.get_row(row_key)
        assert row_key.value is not None
        keys = [key for key, _label in COLUMNS]
        rows[row_key.value] = {key: str(cell) for key, cell in zip(keys, cells, strict=True)}
    return rows


def plain(renderable: Any) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def shown(screen: ConversionsScreen, selector: str) -> str:
    return plain(screen.query_one(selector, Static).content)


def detail_text(screen: ConversionsScreen) -> str:
    return "\n".join(shown(screen, box) for box in ("#job-facts", "#job-next", "#job-runs"))


def front(app: ConsoleApp) -> object:
    """The screen in front (a function, so type checkers do not narrow `app.screen`)."""
    return app.screen


def select(screen: ConversionsScreen, name: str) -> None:
    table = screen.query_one(JobTable)
    table.move_cursor(row=table.get_row_index(name), animate=False)


# --- the list -------------------------------------------------------------------------------


async def test_lists_jobs_with_schedule_next_and_last_run_and_outcome(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    fixed_jobs(services, tmp_path / "files")
    app = console(services)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_screen(app, pilot)
        rows = row_texts(screen)
        assert list(rows) == ["backfill", "hourly-web", "nightly", "weekly-mon"]
        nightly = rows["nightly"]
        assert nightly["schedule"] == "daily at 03:00"
        assert nightly["cron"] == "0 3 * * *" and nightly["zone"] == "Asia/Tokyo"
        # 03:00 JST on 12-01 is 18:00 UTC on 11-30; the 15-minute delay is included
        assert nightly["next"] == "12-01 03:15 JST"
        assert nightly["last"] == "11-30 03:15 JST"
        assert nightly["outcome"] == "✓ ok"
        assert (nightly["sent"], nightly["invalid"], nightly["failed"]) == ("990", "10", "0")
        assert nightly["on"] == "on" and nightly["failures"] == "0/3"
        assert nightly["file"] == "nightly.csv" and nightly["tag"] == "0f1e2d3c…"

        web = rows["hourly-web"]
        assert web["schedule"] == "hourly at :00" and web["next"] == "11-30 10:00 UTC"
        assert web["outcome"] == "✗ failed" and web["failures"] == "1/3"
        assert (web["sent"], web["failed"]) == ("1,000", "200")

        weekly = rows["weekly-mon"]
        # Treasure Data's rule: day-of-week fires more often, so the 1st is ignored
        assert weekly["schedule"] == "Mondays at 00:00"
        assert weekly["on"] == "off" and weekly["next"] == "—"
        assert weekly["failures"] == "3/3"
        assert weekly["notice"].startswith("disabled at ")

        backfill = rows["backfill"]
        assert backfill["next"] == "by hand" and backfill["outcome"] == "never run"
        assert backfill["sent"] == "—" and backfill["cron"] == "—"

        status = shown(screen, "#conversions-status")
        assert "4 jobs" in status and "1 disabled" in status and "sending to" not in status
        assert screen.query(SandboxBadge)


async def test_the_status_line_names_a_real_conversion_api(data_dir: Path) -> None:
    real = "https://conversion-api.tr.line.me"
    app = console(open_services(data_dir, capi_base=real, line_api_base="https://api.line.me"))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        assert f"sending to {real}" in shown(screen, "#conversions-status")
        assert not screen.query(SandboxBadge)


async def test_detail_shows_the_job_its_next_five_times_and_its_runs(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    fixed_jobs(services, tmp_path / "files")
    app = console(services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        select(screen, "nightly")
        await settle(pilot)
        text = detail_text(screen)
        assert str(tmp_path / "files" / "nightly.csv") in text
        assert TAG in text and "$LINE_CAPI_TOKEN" in text
        assert "starts 15m after each time" in text
        assert "2026-12-01 03:15 JST (in 8h 45m)" in text
        expected = cron.next_runs("0 3 * * *", NOW, 5, "Asia/Tokyo")
        assert len(expected) == 5
        for moment in expected:
            assert f"{moment:%a %Y-%m-%d %H:%M} JST" in text
        assert "Recent runs (2, newest first)" in text
        assert text.count("✓ ok") == 2 and "3.2s" in text

        select(screen, "weekly-mon")
        await settle(pilot)
        text = detail_text(screen)
        assert "○ disabled" in text and "lcc capi jobs enable weekly-mon" in text
        assert "day-of-month is ignored" in text  # Schedule.explain(), from core
        assert "(not there now)" in text
        assert "3 in a row; disabled after 3" in text
        assert text.count("✗ failed") == 3


async def test_a_job_being_run_elsewhere_shows_as_running_and_is_not_started_twice(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    jobs = ExportJobs(services.store)
    jobs.add(job("hourly", conversions_file(tmp_path / "c.csv")))
    live = Claim(token="t", host=socket.gethostname(), pid=os.getpid(), at=NOW, trigger="schedule")
    stored = jobs.get("hourly").model_copy(update={"claim": live})
    table = services.store.table("capi_jobs", "jobs")
    table.truncate()
    table.insert(stored.model_dump(mode="json"))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        assert row_texts(screen)["hourly"]["outcome"] == "▶ running"
        assert "▶ running since" in detail_text(screen)
        await pilot.press("r")
        await settle(pilot)
        assert any("is already running" in text for text in notifications(app))
        assert services.sandbox.capi.request_count == 0


# --- actions --------------------------------------------------------------------------------


async def test_run_now_exports_in_a_worker_and_shows_the_outcome(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    ExportJobs(services.store).add(job("hourly", conversions_file(tmp_path / "c.csv", 3)))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        assert row_texts(screen)["hourly"]["outcome"] == "never run"
        await pilot.press("r")
        await settle(pilot)
        await settle(pilot)
        row = row_texts(screen)["hourly"]
        assert row["outcome"] == "✓ ok" and row["sent"] == "3" and row["last"] == "11-30 09:30 UTC"
        assert services.sandbox.capi.accepted_events == 3
        assert any("export job hourly: ok, 3 events sent" in n for n in notifications(app))
        saved = ExportJobs(services.store).get("hourly")
        assert [run.trigger for run in saved.runs] == ["manual"] and saved.claim is None
        assert "by" in detail_text(screen) and "hand" in detail_text(screen)


async def test_a_run_carries_on_after_leaving_the_screen(data_dir: Path, tmp_path: Path) -> None:
    services = open_services(data_dir)
    ExportJobs(services.store).add(job("hourly", conversions_file(tmp_path / "c.csv", 5)))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        before = app.screen
        await open_screen(app, pilot)
        await pilot.press("r", "escape")
        await settle(pilot)
        assert app.screen is before
        assert services.sandbox.capi.accepted_events == 5
        assert any("export job hourly: ok, 5 events sent" in n for n in notifications(app))
        assert ExportJobs(services.store).get("hourly").runs[-1].sent == 5


async def test_a_failed_run_is_an_error_notification_and_counts_a_failure(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    ExportJobs(services.store).add(job("broken", tmp_path / "missing.csv", max_failures=2))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("r")
        await settle(pilot)
        await settle(pilot)
        row = row_texts(screen)["broken"]
        assert row["outcome"] == "✗ failed" and row["failures"] == "1/2" and row["on"] == "on"
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "FAILED" in errors[-1].message
        assert "missing.csv" in errors[-1].message

        await pilot.press("r")  # the second failure disables it, with core's notice
        await settle(pilot)
        await settle(pilot)
        row = row_texts(screen)["broken"]
        assert row["on"] == "off" and row["failures"] == "2/2"
        assert "lcc capi jobs enable broken" in notifications(app)[-1]
        assert "disabled at" in row["notice"]


async def test_toggle_disables_and_enables_a_job(data_dir: Path, tmp_path: Path) -> None:
    services = open_services(data_dir)
    jobs = ExportJobs(services.store)
    jobs.add(job("hourly", conversions_file(tmp_path / "c.csv")))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("e")
        await settle(pilot)
        assert not jobs.get("hourly").enabled
        row = row_texts(screen)["hourly"]
        assert row["on"] == "off" and row["next"] == "—"
        assert "is disabled" in notifications(app)[-1]
        await pilot.press("e")
        await settle(pilot)
        saved = jobs.get("hourly")
        assert saved.enabled and saved.baseline == NOW
        assert row_texts(screen)["hourly"]["next"] == "11-30 10:00 UTC"
        assert "is enabled; next run: 2026-11-30 10:00 UTC (in 30m)" in notifications(app)[-1]


async def test_enabling_a_job_disabled_after_failures_clears_its_notice(data_dir: Path) -> None:
    services = world(data_dir)
    app = console(services)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        select(screen, "weekly-mon")
        await pilot.press("e")
        await settle(pilot)
        saved = ExportJobs(services.store).get("weekly-mon")
        assert saved.enabled and saved.notice is None and saved.consecutive_failures == 0
        row = row_texts(screen)["weekly-mon"]
        assert row["on"] == "on" and row["notice"] == "" and row["failures"] == "0/3"
        assert row["next"] == "12-07 00:00 EST"  # missed times are not run


async def test_remove_asks_for_the_name_first(data_dir: Path, tmp_path: Path) -> None:
    services = open_services(data_dir)
    jobs = ExportJobs(services.store)
    jobs.add(job("first", conversions_file(tmp_path / "c.csv")))
    jobs.add(job("second", conversions_file(tmp_path / "c.csv")))
    app = console(services)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(front(app), ConfirmByTyping)
        await pilot.press("escape")
        await settle(pilot)
        assert front(app) is screen and [j.name for j in jobs.all()] == ["first", "second"]

        await pilot.press("d")
        await settle(pilot)
        await pilot.press("enter")  # nothing typed yet: refused
        await settle(pilot)
        assert isinstance(front(app), ConfirmByTyping)
        dialog = front(app)
        assert isinstance(dialog, ConfirmByTyping)
        dialog.query_one(Input).value = "first"
        await pilot.press("enter")
        await settle(pilot)
        assert front(app) is screen
        assert [j.name for j in jobs.all()] == ["second"]
        assert list(row_texts(screen)) == ["second"]
        assert "Removed export job first." in notifications(app)


async def test_refresh_and_polling_show_changes_made_elsewhere(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    app = console(services)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        assert not screen.query_one(JobTable).display
        # another process (`lcc capi jobs add`) saves a job
        ExportJobs(services.store).add(job("nightly", conversions_file(tmp_path / "c.csv")))
        await pilot.press("f5")
        await settle(pilot)
        assert list(row_texts(screen)) == ["nightly"]
        assert screen.query_one(JobTable).display
        record_run(ExportJobs(services.store), "nightly", a_run(NOW, sent=7))
        screen._poll()
        await settle(pilot)
        assert row_texts(screen)["nightly"]["sent"] == "7"


async def test_the_screen_reads_again_when_a_shown_next_run_arrives(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    saved = job("hourly", conversions_file(tmp_path / "c.csv"), created_at=NOW, baseline=NOW)
    ExportJobs(services.store).add(saved)
    app = console(services)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        assert "(in 30m)" in detail_text(screen)
        screen._poll()  # nothing changed and nothing arrived: not read again
        assert not [w for w in screen.workers if w.group == "conversions-load"]
        clock.moment = NOW + timedelta(minutes=31)
        screen._poll()
        await settle(pilot)
        # 10:00 has passed and no scheduler has claimed it yet: core says it is due
        assert "2026-11-30 10:00 UTC: due now" in detail_text(screen)


async def test_escape_goes_back(data_dir: Path) -> None:
    app = console(world(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = app.screen
        await open_screen(app, pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is before


async def test_actions_on_no_job_are_greyed_out_and_harmless(data_dir: Path) -> None:
    app = console(open_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot)
        for action in ("run", "toggle_enabled", "remove"):
            assert screen.check_action(action, ()) is None
        await pilot.press("r", "e", "d")
        await settle(pilot)
        assert app.screen is screen


# --- empty state, errors, ids ---------------------------------------------------------------


async def test_the_empty_state_says_how_to_add_a_job(data_dir: Path) -> None:
    app = console(open_services(data_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_screen(app, pilot)
        text = shown(screen, "#jobs-empty-text")
        assert "No conversion export jobs yet." in text
        assert "lcc capi jobs add NAME FILE --tag-id TAG_ID" in text
        assert "lcc capi jobs add nightly /data/conversions.csv" in text
        assert not screen.query_one("#job-detail").display


def test_the_commands_shown_are_ones_the_cli_accepts() -> None:
    example = ADD_EXAMPLE.replace("\\\n", " ").split("lcc ", 1)[1]
    args = build_parser().parse_args(shlex.split(example))
    assert (args.jobs_command, args.name, args.schedule, args.tz) == (
        "add",
        "nightly",
        "0 3 * * *",
        "Asia/Tokyo",
    )
    usage = ADD_USAGE.replace("[", " ").replace("]", " ").split("lcc ", 1)[1]
    words = [w for w in shlex.split(usage) if w != "..."]
    filled = {
        "NAME": "n",
        "FILE": "f.csv",
        "TAG_ID": TAG,
        "VAR": "V",
        "ID": "1",
        "CRON": "@daily",
        "ZONE": "UTC",
        "N": "3",
    }
    args = build_parser().parse_args([filled.get(w, w) for w in words])
    assert args.disabled and args.delay == "15m" and args.channel_id == "1"


async def test_an_unreadable_jobs_file_is_a_notification_not_a_crash(data_dir: Path) -> None:
    services = open_services(data_dir)
    services.store.table("capi_jobs", "jobs").insert({"name": "x", "file": 3})
    app = console(services)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        assert app.screen is screen
        [note] = [n for n in app._notifications if n.title == "Cannot read the export jobs"]
        assert "capi_jobs.json" in note.message and "nothing was changed" in note.message
        assert "cannot read" in shown(screen, "#conversions-status")
        await pilot.press("f5")  # the same problem is not notified again
        await settle(pilot)
        assert len([n for n in app._notifications if n.title == note.title]) == 1


async def test_a_schedule_core_no_longer_accepts_is_shown_not_raised(
    data_dir: Path, tmp_path: Path
) -> None:
    services = open_services(data_dir)
    ExportJobs(services.store).add(job("odd", conversions_file(tmp_path / "c.csv")))
    table = services.store.table("capi_jobs", "jobs")
    doc = table.all()[0]
    table.update({"schedule": "0 0 * * 7"}, doc_ids=[doc.doc_id])
    app = console(services)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        assert row_texts(screen)["odd"]["next"] == "schedule error"
        assert "Sunday is 0" in detail_text(screen)


async def test_help_lists_the_screens_keys_with_their_ids(data_dir: Path) -> None:
    app = console(world(data_dir))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_screen(app, pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(front(app), HelpScreen)
        text = plain(app.screen.query_one("#help-keys", Static).content)
        assert "Conversions" in text
        for binding_id in ("conversions.run", "conversions.toggle", "conversions.remove"):
            assert binding_id in text
        assert "conversions.refresh" in text and "Run now" in text


async def test_file_paths_and_messages_are_drawn_literally(data_dir: Path, tmp_path: Path) -> None:
    services = open_services(data_dir)
    jobs = ExportJobs(services.store)
    jobs.add(job("odd", tmp_path / "[red]x[red]\x1b[31m.csv"))
    record_run(jobs, "odd", a_run(NOW, "failed", trigger="manual", message="[b]no[/b] \x07"))
    app = console(services)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_screen(app, pilot)
        assert row_texts(screen)["odd"]["file"] == "[red]x[red]␛[31m.csv"
        text = detail_text(screen)
        assert "[red]x[red]␛[31m.csv" in text and "[b]no[/b] ␇" in text
        assert "\x1b" not in text and "\x07" not in text


def test_every_key_has_an_id_and_is_safe_over_ssh() -> None:
    unsafe = {"ctrl+enter", "ctrl+s", "ctrl+a", "ctrl+b", "ctrl+j", "ctrl+o"}
    for binding in ConversionsScreen.BINDINGS:
        assert isinstance(binding, Binding) and binding.id
        assert not set(binding.key.split(",")) & unsafe, binding.key


def test_binding_ids_are_known_to_the_keymap() -> None:
    ids = {"conversions.run", "conversions.toggle", "conversions.remove", "conversions.refresh"}
    assert ids | {"conversions.back"} <= known_binding_ids()


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", "by hand only"),
        ("@hourly", "hourly at :00"),
        ("@daily", "daily at 00:00"),
        ("@weekly", "Sundays at 00:00"),
        ("@monthly", "monthly on the 1st at 00:00"),
        ("@yearly", "on the 1st of Jan at 00:00"),
        ("*/15 * * * *", "every 15 minutes"),
        ("* * * * *", "every minute"),
        ("5,35 * * * *", "hourly at :05, :35"),
        ("30 9 * * mon-fri", "Mon-Fri at 09:30"),
        ("0 9,18 * * *", "daily at 09:00, 18:00"),
        ("0 9-17 * * 1-5", "at :00 past hours 9-17 on Mon-Fri"),
        ("0 */6 * * *", "daily at 00:00, 06:00, 12:00, 18:00"),
        ("0 */2 * * *", "every 2 hours at :00"),
        ("0 0 1 * 1", "Mondays at 00:00"),  # Treasure Data's day rule, applied by core
        ("0 0 1,15 * *", "monthly on the 1st, 15th at 00:00"),
        ("0 3 * jan-mar *", "daily at 03:00 in Jan-Mar"),
        ("*/10 * 1-10 * *", "every 10 minutes, monthly on the days 1-10"),
    ],
)
def test_schedules_in_words(expression: str, words: str) -> None:
    assert schedule_words(cron.parse(expression)) == words
