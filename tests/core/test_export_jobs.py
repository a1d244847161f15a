"""Saved export jobs: due times, one run per due time across schedulers, failures and disabling."""

from __future__ import annotations

import asyncio
import csv
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core.errors import InputError, NotFound
from core.export_jobs import (
    Claim,
    ExportJob,
    ExportJobs,
    parse_delay,
    run_due_exports,
    run_job,
)
from core.sandbox.app import SandboxState
from core.settings import Settings
from core.store import Store

TAG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CREATED = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def conversions(path: Path, count: int = 3, *, at: datetime = CREATED) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["deduplication_key", "event_type", "source_type", "event_timestamp", "email"]
        )
        for row in range(count):
            writer.writerow([f"k{row}", "conversion", "web", int(at.timestamp()), f"u{row}@e.com"])
    return path


def job(name: str, file: Path, **fields: object) -> ExportJob:
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


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings.data_dir)


def at(hour: int, minute: int = 0) -> datetime:
    return CREATED.replace(hour=hour, minute=minute)


async def test_a_job_is_due_at_its_next_scheduled_time_not_before(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    jobs = ExportJobs(store)
    jobs.add(job("hourly", conversions(tmp_path / "c.csv")))
    assert jobs.get("hourly").next_run(at(10, 45)) == at(11)
    sandbox = SandboxState()
    assert await run_due_exports(store, settings, at(10, 59), sandbox=sandbox) == []
    [run] = await run_due_exports(store, settings, at(11, 0), sandbox=sandbox)
    assert run.outcome == "ok" and run.sent == 3 and run.due == at(11)
    assert "ok, 3 events sent" in run.describe()
    assert await run_due_exports(store, settings, at(11, 30), sandbox=sandbox) == []
    saved = jobs.get("hourly")
    assert saved.last_due == at(11) and saved.claim is None
    assert saved.runs[-1].sent == 3 and saved.next_run(at(11, 30)) == at(12)
    assert sandbox.capi.accepted_events == 3


async def test_a_run_is_timed_by_the_clock_it_was_given(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A run at a given `now` (a test clock, a replay) finishes just after that `now`."""
    ExportJobs(store).add(job("hourly", conversions(tmp_path / "c.csv")))
    await run_due_exports(store, settings, at(11, 0), sandbox=SandboxState())
    [run] = ExportJobs(store).get("hourly").runs
    assert run.started_at == at(11)
    assert run.finished_at is not None
    assert at(11) <= run.finished_at < at(11) + timedelta(minutes=1)


async def test_missed_times_run_once_for_the_latest(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    ExportJobs(store).add(job("hourly", conversions(tmp_path / "c.csv")))
    runs = await run_due_exports(store, settings, at(16, 20), sandbox=SandboxState())
    assert [r.due for r in runs] == [at(16)]


async def test_a_delay_postpones_the_run(store: Store, settings: Settings, tmp_path: Path) -> None:
    jobs = ExportJobs(store)
    jobs.add(job("late", conversions(tmp_path / "c.csv"), delay_s=900))
    assert jobs.get("late").next_run(at(10, 45)) == at(11, 15)
    assert await run_due_exports(store, settings, at(11, 14), sandbox=SandboxState()) == []
    [run] = await run_due_exports(store, settings, at(11, 15), sandbox=SandboxState())
    assert run.due == at(11)


async def test_two_schedulers_run_a_due_job_once(settings: Settings, tmp_path: Path) -> None:
    first, second = Store(settings.data_dir), Store(settings.data_dir)
    ExportJobs(first).add(job("hourly", conversions(tmp_path / "c.csv")))
    sandbox = SandboxState()
    results = await asyncio.gather(
        run_due_exports(first, settings, at(11, 1), sandbox=sandbox),
        run_due_exports(second, settings, at(11, 1), sandbox=sandbox),
    )
    assert sorted(len(runs) for runs in results) == [0, 1]
    assert sandbox.capi.request_count == 1
    assert len(ExportJobs(first).get("hourly").runs) == 1


async def test_a_live_claim_blocks_and_a_dead_one_is_recorded_as_interrupted(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    jobs = ExportJobs(store)
    jobs.add(job("hourly", conversions(tmp_path / "c.csv")))
    live = Claim(
        token="t", host=socket.gethostname(), pid=os.getpid(), at=at(11), trigger="schedule"
    )
    stored = jobs.get("hourly").model_copy(update={"claim": live})
    store.table("capi_jobs", "jobs").truncate()
    store.table("capi_jobs", "jobs").insert(stored.model_dump(mode="json"))
    assert await run_due_exports(store, settings, at(12, 1), sandbox=SandboxState()) == []
    with pytest.raises(InputError, match="already running"):
        await run_job(store, settings, "hourly", at(12, 2), sandbox=SandboxState())

    dead = live.model_copy(update={"pid": 2**22 + 12345})
    store.table("capi_jobs", "jobs").truncate()
    store.table("capi_jobs", "jobs").insert(
        stored.model_copy(update={"claim": dead}).model_dump(mode="json")
    )
    runs = await run_due_exports(store, settings, at(12, 5), sandbox=SandboxState())
    assert [r.outcome for r in runs] == ["interrupted", "ok"]
    saved = jobs.get("hourly")
    assert [r.outcome for r in saved.runs] == ["interrupted", "ok"]
    assert saved.consecutive_failures == 0


async def test_a_job_that_keeps_failing_is_disabled_with_a_notice(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    jobs = ExportJobs(store)
    jobs.add(job("broken", tmp_path / "missing.csv", max_failures=3))
    reports = []
    for hour in (11, 12, 13):
        [run] = await run_due_exports(store, settings, at(hour, 1), sandbox=SandboxState())
        reports.append(run)
    assert [r.outcome for r in reports] == ["failed"] * 3
    assert "no such file" in (reports[0].message or "")
    assert not reports[1].disabled and reports[2].disabled
    assert "disabled" in reports[2].describe() and "lcc capi jobs enable broken" in (
        reports[2].notice or ""
    )
    saved = jobs.get("broken")
    assert not saved.enabled and saved.consecutive_failures == 3 and saved.notice
    assert await run_due_exports(store, settings, at(14, 1), sandbox=SandboxState()) == []
    assert saved.next_run(at(14, 1)) is None

    conversions(tmp_path / "missing.csv")
    enabled = jobs.set_enabled("broken", True, now=at(14, 30))
    assert enabled.enabled and enabled.consecutive_failures == 0 and enabled.notice is None
    assert await run_due_exports(store, settings, at(14, 31), sandbox=SandboxState()) == []
    [run] = await run_due_exports(store, settings, at(15, 1), sandbox=SandboxState())
    assert run.outcome == "ok"


async def test_a_success_resets_the_failure_count(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    jobs = ExportJobs(store)
    path = tmp_path / "c.csv"
    jobs.add(job("flaky", path))
    await run_due_exports(store, settings, at(11, 1), sandbox=SandboxState())
    assert jobs.get("flaky").consecutive_failures == 1
    conversions(path)
    await run_due_exports(store, settings, at(12, 1), sandbox=SandboxState())
    assert jobs.get("flaky").consecutive_failures == 0


async def test_a_refused_batch_makes_the_run_fail(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from core.sandbox.faults import Fault, SandboxSpec

    jobs = ExportJobs(store)
    jobs.add(job("refused", conversions(tmp_path / "c.csv"), max_retry=1))
    sandbox = SandboxState(spec=SandboxSpec(faults=[Fault(kind="fail_first", count=1, status=400)]))
    [run] = await run_due_exports(store, settings, at(11, 1), sandbox=sandbox)
    assert run.outcome == "failed" and run.failed == 3
    assert "every event in it was discarded" in (run.message or "")


async def test_manual_runs_ignore_the_schedule_and_keep_due_times(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    jobs = ExportJobs(store)
    jobs.add(job("adhoc", conversions(tmp_path / "c.csv"), schedule=""))
    assert await run_due_exports(store, settings, at(23), sandbox=SandboxState()) == []
    run = await run_job(store, settings, "adhoc", at(12), sandbox=SandboxState())
    assert run.trigger == "manual" and run.outcome == "ok" and run.due is None
    assert jobs.get("adhoc").last_due is None and jobs.get("adhoc").next_run(at(12)) is None
    with pytest.raises(NotFound):
        await run_job(store, settings, "nope", at(12))


def test_jobs_are_checked_when_saved(store: Store, tmp_path: Path) -> None:
    jobs = ExportJobs(store)
    path = tmp_path / "c.csv"
    with pytest.raises(InputError, match="day-of-month"):
        jobs.add(job("bad-cron", path, schedule="0 0 32 * *"))
    with pytest.raises(InputError, match="abbreviations"):
        jobs.add(job("bad-zone", path, timezone="JST"))
    with pytest.raises(InputError, match="--batch-size"):
        jobs.add(job("bad-batch", path, batch_size=10))
    with pytest.raises(InputError, match="job name"):
        jobs.add(job("bad name!", path))
    jobs.add(job("ok", path))
    with pytest.raises(InputError, match="exists"):
        jobs.add(job("ok", path))
    jobs.add(job("ok", path, schedule="@daily"), replace=True)
    assert [j.schedule for j in jobs.all()] == ["@daily"]
    jobs.remove("ok")
    assert jobs.all() == []
    with pytest.raises(NotFound):
        jobs.remove("ok")


def test_the_token_is_never_stored(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_CAPI_TOKEN", "very-secret-tag-token")
    ExportJobs(store).add(job("real", tmp_path / "c.csv", token_env="ACME_CAPI_TOKEN"))
    raw = (store.data_dir / "capi_jobs.json").read_bytes()
    assert b"ACME_CAPI_TOKEN" in raw and b"very-secret-tag-token" not in raw
    assert orjson.loads(raw)["jobs"]["1"]["token_env"] == "ACME_CAPI_TOKEN"


def test_runs_kept_are_bounded(store: Store, tmp_path: Path) -> None:
    from core.export_jobs import KEEP_RUNS, JobRun

    jobs = ExportJobs(store)
    jobs.add(job("busy", tmp_path / "c.csv", max_failures=100))
    for n in range(KEEP_RUNS + 5):
        claim, _ = jobs.claim("busy", at(11) + timedelta(minutes=n), trigger="manual")
        assert claim is not None
        run = JobRun(trigger="manual", started_at=at(11), outcome="ok", sent=n)
        jobs.finish("busy", claim, run, now=at(11))
    saved = jobs.get("busy")
    assert len(saved.runs) == KEEP_RUNS and saved.runs[-1].sent == KEEP_RUNS + 4


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("24h", 86400)],
)
def test_delays(text: str, seconds: int) -> None:
    assert parse_delay(text) == seconds


@pytest.mark.parametrize("text", ["25h", "soon", "-5m", "1d"])
def test_bad_delays(text: str) -> None:
    with pytest.raises(InputError, match="--delay"):
        parse_delay(text)


def test_time_zones_and_dst_in_due_times(store: Store, tmp_path: Path) -> None:
    jobs = ExportJobs(store)
    created = datetime(2024, 3, 9, 12, tzinfo=UTC)
    saved = jobs.add(
        job(
            "ny",
            tmp_path / "c.csv",
            schedule="30 2 * * *",
            timezone="America/New_York",
            created_at=created,
            baseline=created,
        )
    )
    nxt = saved.next_run(created)
    assert nxt is not None and nxt.isoformat() == "2024-03-10T03:30:00-04:00"
