"""`lcc capi export` and `lcc capi jobs` as an operator runs them, in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from core.capi import BOUNDS
from core.sandbox.app import SandboxState, create_app
from core.sandbox.faults import Fault, SandboxSpec

LCC = [sys.executable, "-m", "tui"]
TAG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
SECRET = "tag-access-token-s3cr3t"
EMAIL_VECTOR = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


def lcc(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LCC_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [*LCC, *args], capture_output=True, text=True, env=environment, timeout=120
    )


def conversions(path: Path, count: int = 3, *, bad: tuple[int, ...] = ()) -> Path:
    now = int(time.time())
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["deduplication_key", "event_type", "source_type", "event_timestamp", "email"]
        )
        for row in range(1, count + 1):
            email = (
                "nope"
                if row in bad
                else ("  John_Smith@Gmail.com " if row == 1 else f"u{row}@e.com")
            )
            writer.writerow([f"key-{row}", "conversion", "web", now, email])
    return path


def export(
    path: Path, *extra: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return lcc("capi", "export", str(path), "--tag-id", TAG, *extra, data_dir=data_dir, env=env)


@pytest.mark.parametrize("name", list(BOUNDS))
def test_each_option_out_of_bounds_is_refused_naming_the_bound(
    name: str, tmp_path: Path, data_dir: Path
) -> None:
    bound = BOUNDS[name]
    path = conversions(tmp_path / "c.csv")
    for bad in (bound.low - 1, bound.high + 1):
        result = export(path, bound.option, str(bad), "--json", data_dir=data_dir)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert f"{bound.option}: must be between {bound.low} and {bound.high}" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_non_number_option_is_refused(tmp_path: Path, data_dir: Path) -> None:
    result = export(conversions(tmp_path / "c.csv"), "--max-retry", "lots", data_dir=data_dir)
    assert result.returncode == 2 and "--max-retry" in result.stderr


def test_json_output_is_exactly_the_contract_document(tmp_path: Path, data_dir: Path) -> None:
    result = export(conversions(tmp_path / "c.csv", 5, bad=(4,)), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {
        "sent": 4,
        "skipped_invalid": 1,
        "failed": 0,
        "batches": 1,
        "invalid": [
            {
                "row": 4,
                "column": "email",
                "reason": "is neither an email address nor a SHA-256 hex digest",
            }
        ],
    }
    assert result.stdout.count("\n") == 1


def test_people_get_a_summary(tmp_path: Path, data_dir: Path) -> None:
    result = export(conversions(tmp_path / "c.csv", 5, bad=(2,)), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "sent" in result.stdout and "row 2" in result.stdout
    assert "1-based data row" in result.stdout


def test_a_quote_left_open_stops_the_export_on_its_row(tmp_path: Path, data_dir: Path) -> None:
    path = conversions(tmp_path / "c.csv", 4)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("u2@e.com", '"u2@e.com')  # line 3: the rest would be one value
    path.write_text("".join(lines))
    result = export(path, data_dir=data_dir)
    assert result.returncode == 2
    assert "line 3: a quoted field" in " ".join(result.stdout.split())
    assert "no data rows" not in result.stdout


def test_no_ignore_invalid_records_sends_nothing(tmp_path: Path, data_dir: Path) -> None:
    path = conversions(tmp_path / "c.csv", 5, bad=(5,))
    result = export(path, "--no-ignore-invalid-records", "--json", data_dir=data_dir)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["sent"] == 0 and document["invalid"][0]["row"] == 5
    people = export(path, "--no-ignore-invalid-records", data_dir=data_dir)
    assert "nothing was sent" in people.stdout


def test_unknown_columns_are_refused(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("deduplication_key,event_type,source_type,event_timestamp,emial\n")
    result = export(path, "--json", data_dir=data_dir)
    assert result.returncode == 2 and result.stdout == ""
    assert "'emial' (did you mean 'email'?)" in result.stderr


def test_dry_run_prints_requests_hashed_without_the_token(tmp_path: Path, data_dir: Path) -> None:
    path = conversions(tmp_path / "c.csv", 3)
    env = {"ACME_CAPI_TOKEN": SECRET}
    result = export(
        path,
        "--dry-run",
        "--token-env",
        "ACME_CAPI_TOKEN",
        "--capi-base",
        "https://conversion-api.tr.line.me",
        data_dir=data_dir,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    request = json.loads(line)
    assert request["url"] == f"https://conversion-api.tr.line.me/v1/{TAG}/events"
    assert request["body"][0]["user"]["email"] == EMAIL_VECTOR
    assert SECRET not in result.stdout + result.stderr
    assert "would send" in result.stderr
    with_json = export(path, "--dry-run", "--json", data_dir=data_dir)
    assert json.loads(with_json.stdout)["batches"] == 1


def test_token_env_is_required_off_the_sandbox(tmp_path: Path, data_dir: Path) -> None:
    path = conversions(tmp_path / "c.csv")
    result = export(path, "--capi-base", "https://conversion-api.tr.line.me", data_dir=data_dir)
    assert result.returncode == 2 and "--token-env" in result.stderr
    unset = export(
        path,
        "--capi-base",
        "https://conversion-api.tr.line.me",
        "--token-env",
        "NOT_SET_ANYWHERE",
        data_dir=data_dir,
    )
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE is not set" in unset.stderr


# --- over HTTP, against the sandbox served on loopback ----------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the sandbox did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(timeout=10)


def test_export_over_http_reaches_the_sandbox(
    served: tuple[str, SandboxState], tmp_path: Path, data_dir: Path
) -> None:
    base, state = served
    path = conversions(tmp_path / "c.csv", 2500)
    env = {"ACME_CAPI_TOKEN": SECRET}
    args = ("--capi-base", base, "--token-env", "ACME_CAPI_TOKEN", "--json")
    result = export(path, *args, data_dir=data_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 2500
    assert state.capi.accepted_events == 2500 and len(state.capi.batches) == 3
    assert state.capi.events[0]["user"]["email"] == EMAIL_VECTOR
    assert all(r["content_length"] > 0 for r in state.capi.requests)


def test_a_401_stops_with_exit_1_and_no_token(
    served: tuple[str, SandboxState], tmp_path: Path, data_dir: Path
) -> None:
    base, state = served
    state.set_spec(SandboxSpec(faults=[Fault(kind="unauthorized", endpoint="capi")]))
    path = conversions(tmp_path / "c.csv", 1500)
    env = {"ACME_CAPI_TOKEN": SECRET}
    args = ("--capi-base", base, "--token-env", "ACME_CAPI_TOKEN")
    result = export(path, *args, "--json", data_dir=data_dir, env=env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["failed"] == 1500
    assert state.capi.request_count == 1
    people = export(path, *args, data_dir=data_dir, env=env)
    assert "401" in people.stdout and "stopped" in people.stdout
    assert SECRET not in people.stdout + people.stderr + result.stderr


# --- saved jobs -------------------------------------------------------------------------------


def test_jobs_add_list_show_run_and_remove(tmp_path: Path, data_dir: Path) -> None:
    path = conversions(tmp_path / "c.csv", 4)
    added = lcc(
        "capi",
        "jobs",
        "add",
        "nightly",
        str(path),
        "--tag-id",
        TAG,
        "--schedule",
        "0 3 * * *",
        "--tz",
        "Asia/Tokyo",
        "--delay",
        "15m",
        "--json",
        data_dir=data_dir,
    )
    assert added.returncode == 0, added.stderr
    job = json.loads(added.stdout)
    assert job["delay_s"] == 900 and job["next_run"].endswith("03:15:00+09:00")
    listed = json.loads(lcc("capi", "jobs", "list", "--json", data_dir=data_dir).stdout)
    assert [j["name"] for j in listed["jobs"]] == ["nightly"]
    table = lcc("capi", "jobs", "list", data_dir=data_dir)
    assert "nightly" in table.stdout and "0 3 * * *" in table.stdout

    ran = lcc("capi", "jobs", "run", "nightly", "--json", data_dir=data_dir)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["sent"] == 4
    shown = lcc("capi", "jobs", "show", "nightly", data_dir=data_dir)
    assert "manual" in shown.stdout and "Asia/Tokyo" in shown.stdout

    duplicate = lcc("capi", "jobs", "add", "nightly", str(path), "--tag-id", TAG, data_dir=data_dir)
    assert duplicate.returncode == 2 and "exists" in duplicate.stderr
    bad = lcc(
        "capi",
        "jobs",
        "add",
        "bad",
        str(path),
        "--tag-id",
        TAG,
        "--schedule",
        "0 0 1 * 8",
        data_dir=data_dir,
    )
    assert bad.returncode == 2 and "day-of-week" in bad.stderr
    assert lcc("capi", "jobs", "disable", "nightly", data_dir=data_dir).returncode == 0
    assert not json.loads(
        lcc("capi", "jobs", "show", "nightly", "--json", data_dir=data_dir).stdout
    )["enabled"]
    assert lcc("capi", "jobs", "remove", "nightly", data_dir=data_dir).returncode == 0
    missing = lcc("capi", "jobs", "run", "nightly", data_dir=data_dir)
    assert missing.returncode == 2 and "no export job" in missing.stderr


def test_a_failing_manual_run_exits_non_zero(tmp_path: Path, data_dir: Path) -> None:
    added = lcc(
        "capi",
        "jobs",
        "add",
        "gone",
        str(tmp_path / "missing.csv"),
        "--tag-id",
        TAG,
        data_dir=data_dir,
    )
    assert added.returncode == 0 and "does not exist yet" in added.stderr
    ran = lcc("capi", "jobs", "run", "gone", data_dir=data_dir)
    assert ran.returncode == 2 and "no such file" in ran.stdout
