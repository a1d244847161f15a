"""Every fixture replays with its expectations met, and each scenario proves its point at the
sandbox (what LINE received), not only in our own figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.delivery_log import COLUMNS, hash_user_id
from core.fixture import load_fixture
from core.models import CampaignState
from core.replay import ReplayResult, replay
from core.sandbox.state import SandboxState
from core.service import Services
from core.settings import Settings
from tests.conftest import FIXTURES

SCENARIOS = sorted(path.name for path in FIXTURES.glob("*.json"))


async def replayed(name: str, settings: Settings) -> tuple[ReplayResult, SandboxState]:
    sandbox = SandboxState()
    result = await replay(load_fixture(FIXTURES / name), settings, sandbox=sandbox)
    return result, sandbox


def test_there_are_at_least_eight_scenarios() -> None:
    assert len(SCENARIOS) >= 8
    for needed in (
        "welcome_text.json",
        "imagemap_sale.json",
        "personalised_push.json",
        "large_csv_audience.json",
        "missing_invalid_ids.json",
        "scheduled_campaign.json",
        "transient_faults.json",
        "monthly_limit.json",
    ):
        assert needed in SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
async def test_each_fixture_meets_its_expectations(name: str, settings: Settings) -> None:
    result, _ = await replayed(name, settings)
    assert result.expected, f"{name} has no expectations"
    assert result.mismatches == []


async def test_imagemap_sale_delivers_the_seeds_exact_url(settings: Settings) -> None:
    result, sandbox = await replayed("imagemap_sale.json", settings)
    assert result.state is CampaignState.FINISHED and result.requests == 1
    final = (
        "https://example.com/product?ref=banner"
        "&utm_source=line&utm_medium=social&utm_campaign=spring_sale_2026"
    )
    for entries in sandbox.deliveries.values():
        [delivery] = entries
        imagemap = delivery["messages"][1]
        assert imagemap["type"] == "imagemap"
        assert imagemap["actions"][0]["linkUri"] == final
        assert imagemap["baseUrl"] == "https://example.com/img/spring", "assets keep their URL"
        assert "https://example.com/sale?utm_source=line" in delivery["messages"][0]["text"]
    assert len(sandbox.deliveries) == 7


async def test_personalised_push_renders_each_profile(settings: Settings) -> None:
    result, sandbox = await replayed("personalised_push.json", settings)
    assert result.requests == 12, "one push per profile"
    texts = sorted(entries[0]["messages"][0]["text"] for entries in sandbox.deliveries.values())
    assert sum(text.startswith("お客様様") for text in texts) == 1, (
        "a missing name uses the default"
    )
    assert any("保有ポイントは 27150 pt" in text for text in texts)
    assert any("保有ポイントは 0 pt" in text for text in texts)
    assert all("utm_content=points_reminder" in text for text in texts)


async def test_large_csv_audience_goes_by_multicast(settings: Settings) -> None:
    result, sandbox = await replayed("large_csv_audience.json", settings)
    assert result.requests == 6  # 2,948 unique recipients in multicasts of 500
    assert len(sandbox.deliveries) == 2948
    assert {len(entries) for entries in sandbox.deliveries.values()} == {1}
    links = [
        action["linkUri"]
        for action in next(iter(sandbox.deliveries.values()))[0]["messages"][1]["actions"]
    ]
    assert "utm_content=m2-a1" in links[0] and "utm_content=m2-a2" in links[1]


async def test_missing_and_invalid_ids_are_logged_with_their_reason(settings: Settings) -> None:
    result, sandbox = await replayed("missing_invalid_ids.json", settings)
    services = Services.open(settings)
    counts = services.counts(result.campaign_id)
    assert counts.errors == Counter(
        {"missing_recipient_id": 2, "invalid_recipient_id": 2, "duplicate_recipient_id": 2}
    )
    assert len(sandbox.deliveries) == 4
    rows = list(services.store.delivery_log(result.campaign_id).rows())
    for row in rows:
        assert list(row)[: len(COLUMNS)] == list(COLUMNS)
        assert row["is_test"] is False and row["channel_type"] == "LINE"
        assert row["line_channel_name"] == "KAZE Apparel"
    missing = [r for r in rows if r["error_code"] == "missing_recipient_id"]
    assert [r["line_user_id"] for r in missing] == ["", ""]
    fixture = json.loads((FIXTURES / "missing_invalid_ids.json").read_text())
    invalid_id = fixture["segments"][0]["profiles"][3]["line_user_id"]
    invalid = next(r for r in rows if r["profile_id"] == "sb-0004")
    assert invalid["line_user_id"] == hash_user_id(invalid_id)


async def test_scheduled_campaign_waits_for_the_simulated_clock(settings: Settings) -> None:
    result, sandbox = await replayed("scheduled_campaign.json", settings)
    services = Services.open(settings)
    history = services.store.transitions.for_campaign(result.campaign_id)
    assert [t.action for t in history] == ["schedule", "start", "finish"]
    start = history[1]
    assert start.at.isoformat() >= "2026-12-26T01:00:00+00:00", "started at 10:00 JST"
    assert start.actor == "scheduler"
    assert all(entry[0]["at"] >= start.at.timestamp() - 1 for entry in sandbox.deliveries.values())


async def test_transient_faults_deliver_every_recipient_exactly_once(settings: Settings) -> None:
    result, sandbox = await replayed("transient_faults.json", settings)
    assert result.state is CampaignState.FINISHED
    assert len(sandbox.deliveries) == 240
    assert {len(entries) for entries in sandbox.deliveries.values()} == {1}
    statuses = Counter(entry["status"] for entry in sandbox.requests)
    assert statuses[500] > 0 and statuses[409] > 0, statuses
    assert result.requests == 240, "requests counts logical pushes, not attempts"


async def test_monthly_limit_suspends_after_one_refusal(settings: Settings) -> None:
    result, sandbox = await replayed("monthly_limit.json", settings)
    assert result.state is CampaignState.SUSPENDED
    assert "monthly" in (result.suspend_reason or "")
    refusals = [entry for entry in sandbox.requests if entry["status"] == 429]
    assert len(refusals) == 1
    assert len(sandbox.deliveries) == 1000


async def test_quota_exceeded_refuses_the_launch_with_an_activation_issue(
    settings: Settings,
) -> None:
    result, sandbox = await replayed("quota_exceeded.json", settings)
    assert result.state is CampaignState.DRAFT
    [issue] = result.issues
    assert (issue.tab.value, issue.code) == ("activation", "quota_exceeded")
    assert sandbox.deliveries == {}


def test_lcc_replay_of_every_fixture_exits_0(data_dir: Path) -> None:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir)}
    paths = [str(FIXTURES / name) for name in SCENARIOS]
    done = subprocess.run(
        [sys.executable, "-m", "tui", "replay", *paths, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [c["expectations_met"] for c in document["campaigns"]] == [True] * len(SCENARIOS)
    assert "Traceback" not in done.stderr
