"""The walking skeleton from outside: `lcc replay`, `validate` and `log` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.delivery_log import COLUMNS, hash_user_id
from tests.conftest import FIXTURES

LCC = [sys.executable, "-m", "tui"]


def lcc(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir)}
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=env, timeout=120)


def test_replay_welcome_prints_the_contract_json_and_logs_rows(data_dir: Path) -> None:
    result = lcc("replay", str(FIXTURES / "welcome_text.json"), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    [campaign] = document["campaigns"]
    assert {k: campaign[k] for k in ("name", "state", "audience", "excluded", "delivered")} == {
        "name": "welcome_friends",
        "state": "Finished",
        "audience": 3,
        "excluded": 1,
        "delivered": 2,
    }
    assert campaign["failed"] == 1 and campaign["requests"] == 1  # one multicast of 2
    assert campaign["expectations_met"] is True and campaign["issues"] == []

    log = lcc("log", campaign["campaign_id"], data_dir=data_dir)
    assert log.returncode == 0, log.stderr
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert list(row)[: len(COLUMNS)] == list(COLUMNS)
        assert row["channel_type"] == "LINE" and row["line_channel_name"] == "Acme Official"
    by_status = sorted((r["status"], r["error_code"], r["line_user_id"]) for r in rows)
    assert by_status == sorted(
        [
            ("failed", "missing_recipient_id", ""),
            ("success", "", hash_user_id("U4af4980629aaaaaaaaaaaaaaaaaaaaa1")),
            ("success", "", hash_user_id("U4af4980629aaaaaaaaaaaaaaaaaaaaa2")),
        ]
    )
    assert "U4af4980629" not in log.stdout, "raw user ids never reach the log"

    as_csv = lcc("log", campaign["campaign_id"], "--format", "csv", data_dir=data_dir)
    table = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert table[0][: len(COLUMNS)] == list(COLUMNS)
    assert len(table) == 4 and {r[9] for r in table[1:]} == {"false"}


def test_failed_expectation_exits_1(tmp_path: Path, data_dir: Path) -> None:
    fixture = json.loads((FIXTURES / "welcome_text.json").read_text())
    fixture["expect"]["delivered"] = 3
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(fixture))
    result = lcc("replay", str(path), "--json", data_dir=data_dir)
    assert result.returncode == 1
    [campaign] = json.loads(result.stdout)["campaigns"]
    assert campaign["expectations_met"] is False


def test_the_summary_table_shows_a_name_with_brackets_as_written(
    tmp_path: Path, data_dir: Path
) -> None:
    fixture = json.loads((FIXTURES / "welcome_text.json").read_text())
    fixture["campaign"]["name"] = "[sale]hi"  # short: the table wraps longer names
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps(fixture))
    result = lcc("replay", str(path), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "│ [sale]hi " in result.stdout


def test_bad_input_exits_2_without_traceback(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"fixture_version": 1, "workspace": "w", "campaign": {"name": "x"}, "oops": 1}')
    for command in (["replay", str(bad), "--json"], ["validate", str(bad)]):
        result = lcc(*command, data_dir=data_dir)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert str(bad) in result.stderr and "oops" in result.stderr
        assert result.stdout == ""


def test_validate_reports_issues_with_exit_1(tmp_path: Path, data_dir: Path) -> None:
    fixture = json.loads((FIXTURES / "welcome_text.json").read_text())
    fixture["campaign"]["messages"] = []
    fixture["campaign"]["sender_account"] = None
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(fixture))
    result = lcc("validate", str(path), "--json", data_dir=data_dir)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    codes = {(i["tab"], i["field"], i["code"]) for i in document["issues"]}
    assert ("content", "messages", "messages_required") in codes
    assert ("content", "sender_account", "sender_account_required") in codes
    assert lcc("validate", str(FIXTURES / "welcome_text.json"), data_dir=data_dir).returncode == 0


def test_unknown_campaign_exits_2(data_dir: Path) -> None:
    result = lcc("log", "cmp-nope", data_dir=data_dir)
    assert result.returncode == 2 and "cmp-nope" in result.stderr


def test_console_script_is_installed() -> None:
    assert shutil.which("lcc") or Path(sys.executable).with_name("lcc").exists()


# --- lcc scheduler ----------------------------------------------------------------------------


def test_scheduler_once_with_nothing_due_exits_0(data_dir: Path) -> None:
    result = lcc("scheduler", "--once", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stderr and result.stdout == ""


def test_scheduler_once_exits_1_when_a_due_campaign_fails(data_dir: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from core.fixture import load_fixture
    from core.models import CampaignState, ScheduledSchedule
    from core.service import Services
    from core.settings import load_settings
    from core.store import Store

    services = Services.open(load_settings(data_dir=data_dir))
    campaign = services.import_fixture(load_fixture(FIXTURES / "welcome_text.json").fixture)
    at = datetime.now(UTC) + timedelta(seconds=10)
    services.update_draft(
        campaign.id, lambda spec: spec.model_copy(update={"schedule": ScheduledSchedule(at=at)})
    )
    assert services.launch(campaign.id, actor="op").state is CampaignState.PLANNED
    account = services.store.directory.account("acme_oa")
    assert account is not None
    services.store.directory.save_account(account.model_copy(update={"workspaces": []}))
    early = lcc("scheduler", "--once", data_dir=data_dir)
    if early.returncode == 1:  # so busy a machine that lcc started after the time had come
        result = early
    else:
        assert early.returncode == 0 and "nothing to do" in early.stderr, early.stderr
        while datetime.now(UTC) < at:
            time.sleep(0.1)
        result = lcc("scheduler", "--once", data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    assert f"suspended {campaign.id}" in result.stderr
    stored = Store(data_dir).campaigns.get(campaign.id)
    assert stored.state is CampaignState.SUSPENDED
    assert "not started at its scheduled time" in (stored.suspend_reason or "")


def test_scheduler_daemon_stops_cleanly_on_sigterm(data_dir: Path) -> None:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir), "LCC_SCHEDULER_INTERVAL_S": "0.2"}
    daemon = subprocess.Popen(
        [*LCC, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (data_dir / "campaigns.json").exists():
            time.sleep(0.1)
        time.sleep(1.0)
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err
    assert "running every 0.2 s" in err and "stopped" in err
    assert "Traceback" not in err and out == ""


def test_a_broken_profiles_file_is_unreadable_input(tmp_path: Path, data_dir: Path) -> None:
    fixture = json.loads((FIXTURES / "large_csv_audience.json").read_text())
    fixture["segments"][0]["profiles_file"] = "members.csv"
    (tmp_path / "members.csv").write_text(
        "profile_id,line_user_id,first_name\nc1,U" + "a" * 32 + ",Aiko\nc2,oops\n"
    )
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(fixture))
    result = lcc("replay", str(path), "--json", data_dir=data_dir)
    assert result.returncode == 2, result.stderr
    assert "members.csv" in result.stderr and "line 3" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
