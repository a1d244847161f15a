"""SIGKILL in the middle of a delivery, then `lcc scheduler --once`: exactly once, log complete.

The sandbox runs as its own server (`lcc sandbox`), so it outlives the killed replay and
remembers the retry keys it accepted: the resumed delivery re-sends the requests whose outcome
the killed process never recorded, LINE (the sandbox) answers 409 for those it had accepted, and
every recipient gets the campaign exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.models import CampaignState
from core.sandbox.server import free_port
from core.store import Store

LCC = [sys.executable, "-m", "tui"]
PROFILES = 3000


def fixture(path: Path) -> None:
    profiles = [
        {
            "profile_id": f"km-{i:05d}",
            "line_user_id": f"U{(i * 7919 + 12345):032x}",
            "attributes": {"last_name": ["佐藤", "鈴木", "高橋"][i % 3]},
        }
        for i in range(PROFILES)
    ]
    document = {
        "fixture_version": 1,
        "workspace": "marketing-jp",
        "sender_accounts": [
            {"id": "oa", "name": "さくらマート公式", "workspaces": ["marketing-jp"]}
        ],
        "segments": [{"parent_segment": "All", "segment": "Members", "profiles": profiles}],
        "campaign": {
            "name": "kill_test_sale",
            "sender_account": "oa",
            "audience": {"parent_segment": "All", "segment": "Members"},
            "messages": [
                {
                    "type": "textV2",
                    "text": "{{ profile.last_name }}様、本日限りのタイムセール https://example.com/sale",
                },
                {
                    "type": "imagemap",
                    "baseUrl": "https://example.com/img/sale",
                    "altText": "タイムセール",
                    "baseSize": {"width": 1040, "height": 1040},
                    "actions": [
                        {
                            "type": "uri",
                            "linkUri": "https://example.com/sale?ref=banner",
                            "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
                        }
                    ],
                },
            ],
            "activation": {"max_attempts": 5, "initial_backoff_s": 0.2, "max_backoff_s": 2.0},
        },
    }
    path.write_text(json.dumps(document, ensure_ascii=False))


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_sigkill_mid_delivery_then_scheduler_once_delivers_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "LCC_DATA_DIR": str(data_dir),
        "LCC_DELIVERY_CONCURRENCY": "16",
    }
    fixture_path = tmp_path / "kill.json"
    fixture(fixture_path)
    sandbox = subprocess.Popen(
        [*LCC, "sandbox", "--port", str(port), "--latency-ms", "15"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        http = httpx.Client(base_url=base, timeout=5)

        def up() -> bool:
            try:
                return http.get("/_sandbox/state").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "the sandbox to serve")

        def delivered() -> int:
            body = http.get("/_sandbox/deliveries", params={"detail": "false"}).json()
            return int(body["recipients"])

        replay = subprocess.Popen(
            [*LCC, "replay", str(fixture_path), "--line-api-base", base, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: delivered() >= 600 or replay.poll() is not None, 120, "deliveries")
            assert replay.poll() is None, "the replay ended before it could be killed"
            replay.send_signal(signal.SIGKILL)
            replay.wait(10)
        finally:
            if replay.poll() is None:
                replay.kill()
        at_kill = delivered()
        assert 0 < at_kill < PROFILES, at_kill

        store = Store(data_dir)
        [campaign] = store.campaigns.all()
        assert campaign.state is CampaignState.ACTIVE
        logged_before = store.delivery_log(campaign.id).count()
        assert logged_before < 2 * at_kill + 2 * 16, "the unrecorded tail is small"

        resumed = subprocess.run(
            [*LCC, "scheduler", "--once", "--line-api-base", base],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert f"resumed {campaign.id}" in resumed.stderr

        body = http.get("/_sandbox/deliveries", params={"detail": "false"}).json()
        counts: dict[str, int] = body["counts"]
        assert len(counts) == PROFILES
        assert set(counts.values()) == {1}, "every recipient exactly once"
        requests = http.get("/_sandbox/requests").json()["requests"]
        assert any(entry["status"] == 409 for entry in requests), "the tail went again: 409"

        assert store.campaigns.get(campaign.id).state is CampaignState.FINISHED
        log = subprocess.run(
            [*LCC, "log", campaign.id, "--format", "jsonl"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        rows = [json.loads(line) for line in log.stdout.splitlines()]
        assert len(rows) == 2 * PROFILES
        outcomes = Counter((row["profile_id"], row["message_type"]) for row in rows)
        assert set(outcomes.values()) == {1}, "one outcome per profile and message"
        assert {row["status"] for row in rows} == {"success"}
        assert {row["message_type"] for row in rows} == {"textV2", "imagemap"}
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
