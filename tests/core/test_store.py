"""The TinyDB store: crash safety, the lock between processes, schema versions, corrupt files."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import states
from core.errors import IllegalTransition, StoreCorrupt, StoreError, StoreLocked
from core.models import Campaign, CampaignState
from core.store import SCHEMA_VERSION, Store

NOW = datetime(2026, 11, 30, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def make_campaign(campaign_id: str = "cmp-1", name: str = "spring") -> Campaign:
    return Campaign(id=campaign_id, name=name, workspace="ws", created_at=NOW, updated_at=NOW)


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_round_trip_and_private_modes(data_dir: Path) -> None:
    store = Store(data_dir)
    store.campaigns.save(make_campaign())
    assert store.campaigns.get("cmp-1").name == "spring"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.glob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    store.delivery_log("cmp-1").append([{"event": "delivery"}])
    for path in (data_dir / "delivery").rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_schema_version_is_written_and_newer_refused(data_dir: Path) -> None:
    store = Store(data_dir)
    store.campaigns.save(make_campaign())
    data = json.loads((data_dir / "campaigns.json").read_text())
    assert data["_meta"]["1"]["schema_version"] == SCHEMA_VERSION
    data["_meta"]["1"]["schema_version"] = SCHEMA_VERSION + 1
    (data_dir / "campaigns.json").write_text(json.dumps(data))
    with pytest.raises(StoreError, match="newer lcc"):
        Store(data_dir).campaigns.all()


def test_migration_runs_on_open_and_keeps_a_backup(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.store as store_module

    Store(data_dir).campaigns.save(make_campaign())
    path = data_dir / "campaigns.json"
    before = json.loads(path.read_text())

    def rename_everything(data: dict[str, object]) -> dict[str, object]:
        table = data["campaigns"]
        assert isinstance(table, dict)
        for doc in table.values():
            doc["name"] = doc["name"].upper()
        return data

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module.MIGRATIONS, 1, rename_everything)
    assert Store(data_dir).campaigns.get("cmp-1").name == "SPRING"
    assert json.loads(path.read_text())["_meta"]["1"]["schema_version"] == 2
    assert json.loads((data_dir / "campaigns.json.v1.bak").read_text()) == before


def test_corrupt_file_is_named_and_never_overwritten(data_dir: Path) -> None:
    Store(data_dir).campaigns.save(make_campaign())
    path = data_dir / "campaigns.json"
    path.write_text('{"campaigns": {"1": {"id": ')
    with pytest.raises(StoreCorrupt) as caught:
        Store(data_dir).campaigns.save(make_campaign("cmp-2"))
    assert str(path) in str(caught.value)
    assert path.read_text() == '{"campaigns": {"1": {"id": '


def test_crash_between_temporary_write_and_rename_loses_nothing(data_dir: Path) -> None:
    Store(data_dir).campaigns.save(make_campaign("cmp-1", "before"))
    original = (data_dir / "campaigns.json").read_bytes()
    crash = run_python(
        """
        import os, signal, sys
        from datetime import UTC, datetime
        from core.models import Campaign
        from core.store import Store
        now = datetime(2026, 11, 30, tzinfo=UTC)
        store = Store(sys.argv[1])
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = die
        store.campaigns.save(Campaign(id="cmp-2", name="after", workspace="ws",
                                      created_at=now, updated_at=now))
        """,
        str(data_dir),
    )
    assert crash.returncode == -9, crash.stderr
    assert list(data_dir.glob(".campaigns.json.*.tmp")), "the temporary file was written"
    assert (data_dir / "campaigns.json").read_bytes() == original
    store = Store(data_dir)
    assert [c.name for c in store.campaigns.all()] == ["before"]
    store.campaigns.save(make_campaign("cmp-2", "after"))
    assert sorted(c.name for c in store.campaigns.all()) == ["after", "before"]


def test_second_writer_waits_for_the_lock(data_dir: Path) -> None:
    store = Store(data_dir)
    store.campaigns.save(make_campaign())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from core.store import Store
                store = Store(sys.argv[1])
                with store.transaction():
                    print("locked", flush=True)
                    time.sleep(1.0)
                    store.campaigns.update("cmp-1", lambda c: c.model_copy(update={"name": "A"}))
                """
            ),
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    patient = Store(data_dir, lock_timeout=10)
    patient.campaigns.update("cmp-1", lambda c: c.model_copy(update={"name": c.name + "B"}))
    assert time.monotonic() - started > 0.5, "the second writer must have waited"
    assert holder.wait(timeout=30) == 0
    assert Store(data_dir).campaigns.get("cmp-1").name == "AB", "no update may be lost"


def test_impatient_writer_gets_a_clear_message(data_dir: Path) -> None:
    Store(data_dir).campaigns.save(make_campaign())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom core.store import Store\n"
            "s = Store(sys.argv[1])\n"
            "with s.transaction():\n    print('locked', flush=True)\n    time.sleep(3)\n",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(StoreLocked) as caught:
        Store(data_dir, lock_timeout=0.3).campaigns.save(make_campaign("cmp-2"))
    message = str(caught.value)
    assert f"(pid {holder.pid})" in message and str(data_dir) in message
    holder.wait(timeout=30)


def test_two_processes_updating_concurrently_lose_nothing(data_dir: Path) -> None:
    store = Store(data_dir)
    store.campaigns.save(make_campaign("cmp-a", "n"))
    store.campaigns.save(make_campaign("cmp-b", "n"))
    code = """
        import sys
        from core.store import Store
        store = Store(sys.argv[1], lock_timeout=60)
        grow = lambda c: c.model_copy(update={"name": c.name + "x"})
        for i in range(25):
            store.campaigns.update(sys.argv[2], grow)
    """
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(data_dir), cid], cwd=REPO
        )
        for cid in ("cmp-a", "cmp-b")
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    final = Store(data_dir)
    assert final.campaigns.get("cmp-a").name == "n" + "x" * 25
    assert final.campaigns.get("cmp-b").name == "n" + "x" * 25


def test_transition_is_recorded_and_a_stale_second_launch_refused(data_dir: Path) -> None:
    first, second = Store(data_dir), Store(data_dir)
    first.campaigns.save(make_campaign())
    first.campaigns.transition("cmp-1", states.Action.LAUNCH, at=NOW, actor="alice")
    with pytest.raises(IllegalTransition):
        second.campaigns.transition("cmp-1", states.Action.LAUNCH, at=NOW, actor="bob")
    history = first.transitions.for_campaign("cmp-1")
    assert [(t.action, t.actor, t.to_state) for t in history] == [
        ("launch", "alice", CampaignState.ACTIVE)
    ]


def test_delivery_log_appends_parts_in_order(data_dir: Path) -> None:
    store = Store(data_dir, system_identifier="jp")
    log = store.delivery_log("cmp-1")
    log.append([{"n": i} for i in range(3)])
    log.append([{"n": i} for i in range(3, 5)])
    assert [row["n"] for row in log.rows()] == [0, 1, 2, 3, 4]
    part = json.loads(log.parts()[0].read_text())
    assert "delivery_line_jp" in part, "each part is a TinyDB file holding the contract's table"


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(StoreError, match="cannot create data dir"):
        Store(tmp_path / "plain-file" / "data")


def test_two_stores_on_one_data_dir_never_reuse_a_document_id(data_dir: Path) -> None:
    """Two processes (a console and a scheduler) each keep their own Store on one data dir."""
    first = Store(data_dir)
    second = Store(data_dir)
    first.table("notes", "notes").insert({"by": "first", "n": 1})
    second.table("notes", "notes").insert({"by": "second", "n": 1})
    first.table("notes", "notes").insert({"by": "first", "n": 2})
    second.table("notes", "notes").insert_multiple([{"by": "second", "n": 2}])
    rows = Store(data_dir).table("notes", "notes").all()
    assert sorted((row["by"], row["n"]) for row in rows) == [
        ("first", 1),
        ("first", 2),
        ("second", 1),
        ("second", 2),
    ]
