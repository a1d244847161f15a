"""`lcc report` and `lcc insights fetch` as an operator runs them, after a replay."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.insights import CallLedger
from core.store import Store
from tests.conftest import FIXTURES

LCC = [sys.executable, "-m", "tui"]
TOKEN = "tok-e2e-4b1d-never-shown"


def lcc(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "LCC_DATA_DIR": str(data_dir), "COLUMNS": "160", **env}
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=full, timeout=120)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One replay of the welcome fixture; each test works on its own copy of the data dir."""
    folder = tmp_path_factory.mktemp("replayed") / "data"
    result = lcc("replay", str(FIXTURES / "welcome_text.json"), "--json", data_dir=folder)
    assert result.returncode == 0, result.stderr
    return folder, str(json.loads(result.stdout)["campaigns"][0]["campaign_id"])


@pytest.fixture
def campaign_id(data_dir: Path, replayed: tuple[Path, str]) -> str:
    shutil.copytree(replayed[0], data_dir)
    (data_dir / ".lcc.lock").unlink(missing_ok=True)
    return replayed[1]


def test_report_json_holds_the_contract_keys(data_dir: Path, campaign_id: str) -> None:
    result = lcc("report", campaign_id, "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("campaign_id", "name", "state")} == {
        "campaign_id": campaign_id,
        "name": "welcome_friends",
        "state": "Finished",
    }
    assert (document["audience"], document["excluded"]) == (3, 1)
    assert (document["delivered"], document["failed"]) == (2, 1)
    assert document["errors"] == {"missing_recipient_id": 1}
    assert document["links"][0]["message"] == 0
    assert "utm_source=line" in document["links"][0]["url"]
    assert document["insights"] is None
    assert document["webhook"]["follow"] == 0 and document["webhook"]["unfollow"] == 0


def test_report_for_people_has_charts_and_whole_links(data_dir: Path, campaign_id: str) -> None:
    lcc("webhook", "import", str(FIXTURES / "webhooks" / "welcome_friends_day.jsonl"),
        data_dir=data_dir)  # fmt: skip
    result = lcc("report", campaign_id, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Audience funnel", "Outcome", "Failures by error code", "Sends over time",
                    "Links, in their final form", "Webhook events"):  # fmt: skip
        assert heading in out, heading
    assert "█" in out and "missing_recipient_id" in out
    link = json.loads(lcc("report", campaign_id, "--json", data_dir=data_dir).stdout)["links"][0]
    assert any(line.strip() == link["url"] for line in out.splitlines()), "one unbroken line"
    assert "message 1 text" in out, "messages are numbered from 1 for people, from 0 in JSON"
    assert "50.0%" in out, "block rate: one of the two recipients unfollowed"


def test_report_csv_export(tmp_path: Path, data_dir: Path, campaign_id: str) -> None:
    target = tmp_path / "report.csv"
    result = lcc("report", campaign_id, "--csv", str(target), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(target.read_text())))
    assert table[0] == ["section", "key", "value", "detail"]
    assert ["summary", "delivered", "2", ""] in table
    to_stdout = lcc("report", campaign_id, "--csv", "-", data_dir=data_dir)
    assert to_stdout.stdout.startswith("section,key,value,detail\n")
    bad = lcc("report", campaign_id, "--csv", str(tmp_path / "no" / "such" / "dir.csv"),
              data_dir=data_dir)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_unknown_campaigns_exit_2(data_dir: Path) -> None:
    for command in (["report", "cmp-nope"], ["report", "cmp-nope", "--json"],
                    ["insights", "fetch", "cmp-nope"]):  # fmt: skip
        result = lcc(*command, data_dir=data_dir)
        assert result.returncode == 2, command
        assert "cmp-nope" in result.stderr and result.stdout == ""


def test_insights_fetch_against_the_sandbox_keeps_nulls(data_dir: Path, campaign_id: str) -> None:
    fetched = lcc("insights", "fetch", campaign_id, "--json", data_dir=data_dir)
    assert fetched.returncode == 0, fetched.stderr
    document = json.loads(fetched.stdout)
    assert document["fetched"] is True
    insights = document["insights"]
    assert insights["uniqueImpression"] is None and insights["open_rate"] is None
    assert document["insight_calls"]["used_last_hour"] >= 1
    report = json.loads(lcc("report", campaign_id, "--json", data_dir=data_dir).stdout)
    assert report["insights"]["uniqueClick"] is None, "withheld, never 0"
    assert report["insights"]["fetched_at"]
    people = lcc("report", campaign_id, data_dir=data_dir).stdout
    assert "fewer than 20" in people
    assert "Our log beside LINE's day counts" in people


def test_an_exhausted_hour_exits_1_and_says_when(data_dir: Path, campaign_id: str) -> None:
    CallLedger(Store(data_dir)).reserve("1656000001", datetime.now(UTC), "other", count=60)
    result = lcc("insights", "fetch", campaign_id, data_dir=data_dir)
    assert result.returncode == 1
    assert "next one is possible at" in result.stderr and "Traceback" not in result.stderr


def test_line_not_answering_exits_1_without_the_token(data_dir: Path, campaign_id: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    result = lcc("insights", "fetch", campaign_id, "--line-api-base", f"http://127.0.0.1:{port}",
                 data_dir=data_dir, ACME_LINE_TOKEN=TOKEN)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
