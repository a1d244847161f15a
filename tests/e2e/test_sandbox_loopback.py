"""The client against the sandbox served by uvicorn on a loopback port, fault by fault."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.line_client import LineClient
from core.models import ActivationPolicy
from core.retry import ErrorClass, SendResult, send_with_retries
from core.sandbox.app import SandboxState
from core.sandbox.faults import Fault, SandboxSpec
from core.sandbox.server import free_port, running_sandbox

REPO = Path(__file__).resolve().parents[2]
TEXT = [{"type": "textV2", "text": "Hello over loopback"}]
FAST = ActivationPolicy(max_attempts=6, initial_backoff_s=0.01, max_backoff_s=0.05)
RECIPIENTS = 60


def user(n: int) -> str:
    return f"U{n:032x}"


@pytest.fixture
def served() -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState()
    with running_sandbox(state) as base:
        yield base, state


async def send_all(base: str, count: int = RECIPIENTS) -> list[SendResult]:
    async with LineClient(base, timeout=2.0) as line:

        async def one(n: int) -> SendResult:
            retry_key = str(uuid.uuid4())
            return await send_with_retries(
                lambda: line.push(user(n), TEXT, retry_key=retry_key), FAST
            )

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def delivered_once(state: SandboxState, count: int = RECIPIENTS) -> bool:
    return state.delivery_counts() == {user(n): 1 for n in range(count)}


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="fail_first", count=5),
        Fault(kind="random_5xx", rate=0.3),
        Fault(kind="random_5xx", rate=0.3, status=503),
        Fault(kind="lost_answer", rate=0.3),
        Fault(kind="lost_answer", rate=0.3, status=500),
        Fault(kind="latency", ms=20, jitter_ms=10),
        Fault(kind="rate_limit", rate=0.2),
    ],
    ids=lambda fault: f"{fault.kind}-{fault.status or fault.rate or fault.count or fault.ms}",
)
async def test_transient_faults_end_in_exactly_one_delivery(
    served: tuple[str, SandboxState], fault: Fault
) -> None:
    base, state = served
    state.set_spec(SandboxSpec(faults=[fault], seed=11))
    results = await send_all(base)
    assert all(result.accepted for result in results), [r.error_code for r in results]
    assert delivered_once(state)
    if fault.kind != "latency":
        assert len(state.requests) > RECIPIENTS, "the fault struck and was retried"


async def test_lost_answers_are_seen_as_no_answer_then_409(
    served: tuple[str, SandboxState],
) -> None:
    base, state = served
    state.set_spec(SandboxSpec(faults=[Fault(kind="lost_answer", rate=1.0, endpoint="push")]))
    retry_key = str(uuid.uuid4())
    async with LineClient(base, timeout=2.0) as line:
        first = await line.push(user(1), TEXT, retry_key=retry_key)
        state.set_spec(SandboxSpec())
        second = await line.push(user(1), TEXT, retry_key=retry_key)
    assert first.status == 0 and first.error_class is ErrorClass.TRANSIENT
    assert first.error_code == "timeout"
    assert second.status == 409 and second.accepted
    assert second.accepted_request_id == state.requests[0]["request_id"]
    assert state.delivery_counts() == {user(1): 1}


@pytest.mark.parametrize(
    ("fault", "status", "error_class"),
    [
        (Fault(kind="permanent_400", users=[user(n) for n in range(RECIPIENTS)]), 400, "permanent"),
        (Fault(kind="monthly_limit"), 429, "fatal"),
        (Fault(kind="unauthorized"), 401, "fatal"),
        (Fault(kind="forbidden"), 403, "fatal"),
    ],
)
async def test_refusals_are_not_retried(
    served: tuple[str, SandboxState], fault: Fault, status: int, error_class: str
) -> None:
    base, state = served
    state.set_spec(SandboxSpec(faults=[fault]))
    results = await send_all(base, count=10)
    assert {(r.status, r.error_class) for r in results} == {(status, error_class)}
    assert len(state.requests) == 10, "one request each, no retries"
    assert state.deliveries == {}


async def test_reads_and_introspection_over_http(served: tuple[str, SandboxState]) -> None:
    base, _ = served
    await send_all(base, count=3)
    async with LineClient(base) as line:
        assert await line.consumption() == 3
        assert (await line.quota()).type == "none"
        assert (await line.validate(TEXT)).accepted
    async with httpx.AsyncClient(base_url=base) as http:
        counts = (await http.get("/_sandbox/deliveries", params={"detail": "false"})).json()
        assert counts["counts"] == {user(n): 1 for n in range(3)}
        replaced = await http.post("/_sandbox/faults", json=[{"kind": "forbidden"}])
        assert replaced.status_code == 200
    async with LineClient(base) as line:
        assert (await line.push(user(9), TEXT, retry_key=str(uuid.uuid4()))).status == 403


# --- `lcc sandbox` ------------------------------------------------------------------------


def lcc_sandbox(*flags: str, env_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "LCC_DATA_DIR": str(env_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    hint = process.stdout.readline().decode()
    assert first.startswith("LINE sandbox on http://127.0.0.1:"), first
    base = first.split()[-1]
    assert f"--line-api-base {base}" in hint
    for _ in range(200):
        try:
            httpx.get(f"{base}/_sandbox/state", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return process, base


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGINT) -> int:
    process.send_signal(how)
    return process.wait(timeout=15)


async def test_lcc_sandbox_serves_faults_and_keeps_state(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    port = str(free_port())
    flags = ("--port", port, "--random-5xx", "0.1", "--lost-answer", "0.15", "--seed", "5")
    process, base = lcc_sandbox(*flags, "--state", str(state_file), env_dir=tmp_path)
    try:
        results = await send_all(base, count=100)
        async with httpx.AsyncClient(base_url=base) as http:
            counts = (await http.get("/_sandbox/deliveries", params={"detail": "0"})).json()
            faults = {
                entry["fault"]
                for entry in (await http.get("/_sandbox/requests")).json()["requests"]
            }
    finally:
        code = stop(process)
    assert code == 0
    assert all(result.accepted for result in results)
    assert counts["counts"] == {user(n): 1 for n in range(100)}
    assert {"random_5xx", "lost_answer"} <= faults
    assert state_file.exists()

    process, base = lcc_sandbox("--port", port, "--state", str(state_file), env_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            summary = (await http.get("/_sandbox/state")).json()
    finally:
        assert stop(process, signal.SIGTERM) == 0
    assert summary["deliveries"] == 100 and summary["accepted_retry_keys"] == 100


def test_lcc_sandbox_refuses_a_remote_host_and_bad_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import main

    bad_file = tmp_path / "faults.json"
    bad_file.write_text('[{"kind": "lost_answer"}]')
    cases = [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--random-5xx", "1.5"], "--random-5xx"),
        (["--fail-first", "-1"], "--fail-first"),
        (["--faults", str(tmp_path / "missing.json")], "missing.json"),
        (["--faults", str(bad_file)], "rate"),
    ]
    for flags, named in cases:
        assert main(["sandbox", *flags]) == 2, flags
        stderr = capsys.readouterr().err
        assert named in stderr and "Traceback" not in stderr
