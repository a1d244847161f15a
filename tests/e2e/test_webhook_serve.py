"""`lcc webhook serve` over real HTTP, and `lcc webhook import`, as an operator runs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from core.store import Store
from core.webhook import WebhookEventStore
from tests.conftest import FIXTURES

LCC = [sys.executable, "-m", "tui"]
SECRET = "5f0c1e2d3b4a69788796a5b4c3d2e1f0"
WEBHOOKS = FIXTURES / "webhooks"


def sign(body: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lcc(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "LCC_DATA_DIR": str(data_dir), **env}
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=full_env, timeout=120)


def wait_until_up(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("lcc webhook serve did not come up")


def test_serve_checks_signatures_answers_and_stores_over_http(data_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir), "ACME_CHANNEL_SECRET": SECRET}
    process = subprocess.Popen(
        [*LCC, "webhook", "serve", "--port", str(port), "--channel-secret-env",
         "ACME_CHANNEL_SECRET", "--account", "acme_oa"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        follow = (WEBHOOKS / "follow.json").read_bytes()
        with httpx.Client(base_url=base, timeout=5) as client:
            started = time.monotonic()
            ok = client.post("/webhook", content=follow, headers={"X-Line-Signature": sign(follow)})
            assert ok.status_code == 200 and time.monotonic() - started < 2
            assert client.post("/webhook", content=follow).status_code == 401
            wrong = client.post(
                "/webhook", content=follow, headers={"x-line-signature": sign(follow, "nope")}
            )
            assert wrong.status_code == 401
            bad = b'{"events": "not a list"}'
            assert client.post(
                "/webhook", content=bad, headers={"x-line-signature": sign(bad)}
            ).status_code == 400  # fmt: skip
            for line in (WEBHOOKS / "welcome_friends_day.jsonl").read_bytes().splitlines():
                answer = client.post(
                    "/webhook", content=line, headers={"x-line-signature": sign(line)}
                )
                assert answer.status_code == 200
            assert client.get("/healthz").json()["received"] == 8
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert SECRET not in out + err, "the channel secret is never printed"
    assert "Traceback" not in err
    docs = list(WebhookEventStore(Store(data_dir)).iter_events())
    assert len(docs) == 6, "every acknowledged event was written by shutdown, each once"
    assert {d["account"] for d in docs} == {"acme_oa"}
    assert "U4af4980629" not in json.dumps(docs)


def test_serve_without_the_secret_variable_exits_2(data_dir: Path) -> None:
    result = lcc("webhook", "serve", "--port", str(free_port()),
                 "--channel-secret-env", "NO_SUCH_SECRET_VAR", data_dir=data_dir)  # fmt: skip
    assert result.returncode == 2
    assert "NO_SUCH_SECRET_VAR" in result.stderr and "Traceback" not in result.stderr


def test_import_json_and_jsonl(data_dir: Path) -> None:
    first = lcc("webhook", "import", str(WEBHOOKS / "welcome_friends_day.jsonl"), "--json",
                data_dir=data_dir)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"bodies": 6, "events": 7, "stored": 6, "duplicates": 1}
    second = lcc("webhook", "import", str(WEBHOOKS / "follow.json"), data_dir=data_dir)
    assert second.returncode == 0 and "0 stored" in second.stdout
    third = lcc("webhook", "import", str(WEBHOOKS / "unknown_type.json"), "--json",
                data_dir=data_dir)  # fmt: skip
    assert json.loads(third.stdout)["stored"] == 1


def test_import_bad_input_exits_2_with_the_line(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = orjson.dumps({"events": []})
    path.write_bytes(good + b"\n" + good + b"\n{broken\n")
    result = lcc("webhook", "import", str(path), data_dir=data_dir)
    assert result.returncode == 2
    assert "line 3" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
