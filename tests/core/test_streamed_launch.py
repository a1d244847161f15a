"""A large profiles file starts sending while it is still being frozen, and still exactly once.

The sizes from which a launch streams (`Services.stream_min_bytes`, `push_stream_min_bytes`) are
lowered to 0 here, and the outbox parts made small, so a few hundred profiles make several parts.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core import forking, states
from core import outbox as outbox_module
from core.errors import IllegalTransition, InputError, LccError
from core.fixture import Fixture
from core.models import Campaign, CampaignState
from core.personalize import TemplateError
from core.service import LaunchRefused, Services
from tests.core.test_delivery import (
    PERSONAL,
    SHARED,
    delivered_counts,
    services_for,
    user,
    world,
)

PROFILES = 1_300


def write_audience(path: Path, count: int = PROFILES, *, bad_line: int | None = None) -> None:
    """`count` profiles, with a missing, an invalid and a duplicate id among them."""
    lines = ["profile_id,line_user_id,first_name"]
    for i in range(count):
        user_id = user(i)
        if i == 5:
            user_id = ""
        elif i == 6:
            user_id = "not-a-line-id"
        elif i == 7:
            user_id = user(3)
        lines.append(f"p{i:05d},{user_id},N{i}")
    if bad_line is not None:
        lines.insert(bad_line - 1, "p-bad,U0,too,many,columns")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def csv_world(csv: Path, *, text: str) -> Fixture:
    """`test_delivery.world`'s campaign, its audience read from `csv`."""
    fixture = world(0, text=text)
    segment = fixture.segments[0].model_copy(update={"profiles": None, "profiles_file": str(csv)})
    return fixture.model_copy(update={"segments": [segment]})


def streamed_campaign(
    tmp_path: Path, text: str, *, quota: int | None = None, **audience: Any
) -> tuple[Services, Campaign, Path]:
    """A campaign on a profiles file (`write_audience(**audience)`), launched streamed."""
    csv = tmp_path / "members.csv"
    write_audience(csv, **audience)
    services = streaming(services_for(tmp_path / "data", quota=quota))
    return services, services.import_fixture(csv_world(csv, text=text)), csv


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "PUSH_PART_REQUESTS", 200)
    monkeypatch.setattr(outbox_module, "MULTICAST_PART_REQUESTS", 1)


def streaming(services: Services) -> Services:
    services.stream_min_bytes = services.push_stream_min_bytes = 0
    return services


REACHABLE = {user(i): 1 for i in range(PROFILES) if i not in (5, 6, 7)}


def outcome_rows(services: Services, campaign_id: str) -> list[tuple[Any, ...]]:
    """The log as it would be compared between two runs (times and request ids differ)."""
    rows = services.store.delivery_log(campaign_id).rows()
    return sorted(
        (r["profile_id"], r["line_user_id"], r["status"], r["error_code"], r["message_index"])
        for r in rows
    )


@pytest.mark.parametrize("freezer", ["process", "thread"])
@pytest.mark.parametrize("text", [PERSONAL, SHARED], ids=["push", "multicast"])
async def test_a_streamed_launch_sends_and_logs_what_a_whole_freeze_does(
    tmp_path: Path, text: str, freezer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if freezer == "thread":  # where fork is not safe (macOS)
        monkeypatch.setattr(forking, "fork_is_safe", lambda: False)
    elif not forking.fork_is_safe():
        pytest.skip("the freeze runs in a process only where fork is safe (Linux)")
    csv = tmp_path / "members.csv"
    write_audience(csv)
    whole = services_for(tmp_path / "whole")
    streamed = streaming(services_for(tmp_path / "streamed"))
    results = []
    for services in (whole, streamed):
        campaign = services.import_fixture(csv_world(csv, text=text))
        await services.launch_async(campaign.id, actor="op")
        live = services._live_freezes.get(campaign.id)
        assert (live is not None) is (services is streamed)
        if live is not None:
            assert (live._child is not None) is (freezer == "process")
        summary = await services.deliver(campaign.id, actor="op")
        assert services.store.campaigns.get(campaign.id).state is CampaignState.FINISHED
        assert delivered_counts(services) == REACHABLE
        assert summary.complete and summary.pending == 0
        results.append(
            (
                summary.requests,
                summary.delivered,
                summary.failed,
                summary.excluded,
                outcome_rows(services, campaign.id),
            )
        )
        assert not services._live_freezes
    assert results[0] == results[1]
    assert results[0][1:4] == (len(REACHABLE), 3, 3)


def fail_after_first_part(
    services: Services, *, kill: bool = False, stop: bool = False
) -> Callable[[], None]:
    """The next freeze of `services` fails after writing its first requests part (as a process
    killed there would leave it: some requests sent, no manifest), or with `kill` its process
    is SIGKILLed there, or with `stop` SIGSTOPped (alive, silent). Returns an undo."""
    original = services._freeze

    def freeze_then_fail(*args: Any, **kwargs: Any) -> Any:
        published = kwargs.get("part_written")
        if published is None:
            return original(*args, **kwargs)

        def first_only(name: str) -> None:
            published(name)
            if kill or stop:
                os.kill(os.getpid(), signal.SIGKILL if kill else signal.SIGSTOP)
            raise OSError(5, "Input/output error")

        kwargs["part_written"] = first_only
        return original(*args, **kwargs)

    services._freeze = freeze_then_fail  # type: ignore[method-assign]
    return lambda: setattr(services, "_freeze", original)


async def interrupted(
    tmp_path: Path, text: str, *, kill: bool = False, stop: bool = False
) -> tuple[Services, str, Path]:
    """A streamed launch whose freeze failed (or whose freeze's process was killed, or stuck)
    after its first part, delivered as far as it got."""
    services, campaign, csv = streamed_campaign(tmp_path, text)
    fail_after_first_part(services, kill=kill, stop=stop)
    await services.launch_async(campaign.id, actor="op")
    summary = await services.deliver(campaign.id, actor="op")
    said = (
        "stopped before the end (its process exited with code -9)"
        if kill
        else f"made no progress for {outbox_module.FREEZE_STALL_S:g} s and its process was stopped"
        if stop
        else "Input/output"
    )
    assert summary.audience_error is not None and said in summary.audience_error
    stored = services.store.campaigns.get(campaign.id)
    assert stored.state is CampaignState.SUSPENDED
    assert stored.suspend_reason and said in stored.suspend_reason
    assert ("resume to freeze it again" in stored.suspend_reason) is (kill or stop)
    assert services.manifest(campaign.id) is None
    sent = delivered_counts(services)
    assert sent and len(sent) < len(REACHABLE) and set(sent.values()) == {1}
    return services, campaign.id, csv


def reopened(services: Services, data_dir: Path) -> Services:
    """A new process on the same data dir, talking to the same LINE (which keeps its keys)."""
    return streaming(
        Services.open(services.settings, clock=services.clock, sandbox=services.sandbox)
    )


@pytest.mark.parametrize("failure", ["error", "killed", "stuck"])
@pytest.mark.parametrize("text", [PERSONAL, SHARED], ids=["push", "multicast"])
async def test_an_interrupted_streamed_launch_resumes_exactly_once(
    tmp_path: Path, text: str, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if failure != "error" and not forking.fork_is_safe():
        pytest.skip("the freeze has a process of its own only where fork is safe (Linux)")
    monkeypatch.setattr(outbox_module, "FREEZE_STALL_S", 1.0)  # a child under load is slower
    services, campaign_id, _csv = await interrupted(
        tmp_path, text, kill=failure == "killed", stop=failure == "stuck"
    )
    first = dict(delivered_counts(services))
    first_marks = services.outbox(campaign_id).dispatch_marks()
    again = reopened(services, tmp_path / "data")
    again.act(campaign_id, states.Action.RESUME, actor="op")
    summary = await again.deliver(campaign_id, actor="op")
    assert again.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
    assert summary.complete
    assert delivered_counts(again) == REACHABLE  # nobody twice, nobody missed
    assert len(first) < len(REACHABLE)
    rows = outcome_rows(again, campaign_id)
    assert len(rows) == PROFILES
    assert {r[0] for r in rows} == {f"p{i:05d}" for i in range(PROFILES)}
    # the first run's dispatch marks are kept: they date the keys LINE remembers for 24 hours
    marks = again.outbox(campaign_id).dispatch_marks()
    assert first_marks and marks[: len(first_marks)] == first_marks


@pytest.mark.skipif(not forking.fork_is_safe(), reason="a freeze process only where fork is safe")
async def test_a_freeze_waiting_for_a_slow_launch_is_not_taken_for_a_stuck_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its first part the freeze waits for the launch to be recorded: that silence is the
    launch's, however long it takes."""
    monkeypatch.setattr(outbox_module, "FREEZE_STALL_S", 1.0)
    go_on = outbox_module.LiveFreeze.go_on

    def slow_launch(self: outbox_module.LiveFreeze) -> None:
        time.sleep(1.5)
        go_on(self)

    monkeypatch.setattr(outbox_module.LiveFreeze, "go_on", slow_launch)
    services, campaign, _csv = streamed_campaign(tmp_path, SHARED)
    await services.launch_async(campaign.id, actor="op")
    summary = await services.deliver(campaign.id, actor="op")
    assert summary.audience_error is None
    assert services.store.campaigns.get(campaign.id).state is CampaignState.FINISHED
    assert delivered_counts(services) == REACHABLE


async def test_a_changed_audience_after_an_interrupted_launch_sends_nothing_more(
    tmp_path: Path,
) -> None:
    services, campaign_id, csv = await interrupted(tmp_path, SHARED)
    first = dict(delivered_counts(services))
    lines = csv.read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    random.Random(4).shuffle(body)
    csv.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    again = reopened(services, tmp_path / "data")
    again.act(campaign_id, states.Action.RESUME, actor="op")
    summary = await again.deliver(campaign_id, actor="op")
    stored = again.store.campaigns.get(campaign_id)
    assert stored.state is CampaignState.SUSPENDED
    assert stored.suspend_reason and "no longer the one" in stored.suspend_reason
    assert summary.stopped == stored.suspend_reason
    assert delivered_counts(again) == first
    assert again.manifest(campaign_id) is None
    assert not list(again.outbox(campaign_id).directory.parent.glob("*.refreeze"))


async def test_a_broken_row_late_in_a_streamed_file_suspends_with_its_line(
    tmp_path: Path,
) -> None:
    # past the first 5,000 rows, read before anything is sent
    services, campaign, _csv = streamed_campaign(tmp_path, SHARED, count=6_000, bad_line=5_600)
    await services.launch_async(campaign.id, actor="op")
    summary = await services.deliver(campaign.id, actor="op")
    stored = services.store.campaigns.get(campaign.id)
    assert stored.state is CampaignState.SUSPENDED
    assert summary.audience_error and "line 5600" in summary.audience_error
    assert "5 columns where the header has 3" in summary.audience_error
    sent = delivered_counts(services)
    assert sent and set(sent.values()) == {1}
    logged = {r[0] for r in outcome_rows(services, campaign.id)}
    assert len(logged) == sum(sent.values())  # what went out is recorded


async def test_a_broken_row_among_the_first_rows_refuses_the_launch_before_sending(
    tmp_path: Path,
) -> None:
    services, campaign, _csv = streamed_campaign(tmp_path, SHARED, bad_line=1_200)
    with pytest.raises(InputError, match="line 1200: 5 columns"):
        await services.launch_async(campaign.id, actor="op")
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.sandbox.deliveries == {}
    assert not services.claimed(campaign.id)


async def test_a_quota_below_the_files_line_count_counts_the_audience_first(
    tmp_path: Path,
) -> None:
    # 37 reachable of 41 lines
    services, campaign, csv = streamed_campaign(tmp_path, SHARED, quota=38, count=40)
    await services.launch_async(campaign.id, actor="op")
    assert campaign.id not in services._live_freezes  # the whole audience was counted first
    assert services.manifest(campaign.id) is not None
    short = streaming(services_for(tmp_path / "short", quota=30))
    refused = short.import_fixture(csv_world(csv, text=SHARED))
    with pytest.raises(LaunchRefused, match="37 messages"):
        await short.launch_async(refused.id, actor="op")
    assert short.store.campaigns.get(refused.id).state is CampaignState.DRAFT
    assert short.sandbox.deliveries == {}


async def test_a_streamed_multicast_that_cannot_render_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    broken = "{{ campaign.name | divided_by: 0 }} hi"  # valid Liquid that fails as it renders
    services, campaign, _csv = streamed_campaign(tmp_path, broken, count=30)
    with pytest.raises(LaunchRefused) as caught:
        await services.launch_async(campaign.id, actor="op")
    assert [issue.code for issue in caught.value.issues] == ["template_error"]
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.sandbox.deliveries == {}


async def test_a_launch_failing_after_the_first_part_ends_its_freeze_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, campaign, _csv = streamed_campaign(tmp_path, SHARED)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services.store.campaigns, "transition", refuse)
    with pytest.raises(OSError, match="No space left"):
        await services.launch_async(campaign.id, actor="op")
    assert not services._live_freezes and not services.claimed(campaign.id)
    assert not services.outbox(campaign.id).directory.exists()
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.sandbox.deliveries == {}
    monkeypatch.undo()
    await services.launch_async(campaign.id, actor="op")
    await services.deliver(campaign.id, actor="op")
    assert delivered_counts(services) == REACHABLE


CHILD_OF_A_KILLED_PARENT = """
import os, sys, time
from core.outbox import LiveFreeze

def run(part_written):
    print(os.getpid(), flush=True)
    time.sleep(120)

LiveFreeze(provisional=None, estimate=0).start(run)
time.sleep(120)
"""


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie nobody has reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def test_a_freeze_process_dies_with_the_process_that_launched_it() -> None:
    # otherwise it could go on writing the outbox while a resume freezes it again
    if not forking.fork_is_safe():
        pytest.skip("the freeze has a process of its own only where fork is safe (Linux)")
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD_OF_A_KILLED_PARENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not gone(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


def test_a_freezes_errors_cross_the_pipe_with_their_details() -> None:
    bad_row = InputError("5 columns where the header has 3", source="a.csv", location="line 9")
    crossed = forking.portable(bad_row)
    assert crossed is bad_row
    again = pickle.loads(pickle.dumps(bad_row))
    assert (again.message, again.source, again.location) == (
        "5 columns where the header has 3",
        "a.csv",
        "line 9",
    )
    template = TemplateError("unknown filter", line=2, column=4, field="messages[0].text")
    again_template = pickle.loads(pickle.dumps(template))
    assert again_template.describe() == template.describe()
    assert (again_template.line, again_template.field) == (2, "messages[0].text")
    # one that cannot be rebuilt from its args is told in its own words
    odd = IllegalTransition("Finished", "launch")
    told = forking.portable(odd)
    assert type(told) is LccError and str(told) == str(odd)


MID_SIZE_PROFILES = 8_000
"""About 360 KB: from the size at which a personalised campaign streams, below a shared one's."""


def test_a_mid_size_file_streams_for_pushes_and_is_frozen_whole_for_multicasts(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "members.csv"
    write_audience(csv, MID_SIZE_PROFILES)
    services = services_for(tmp_path / "data")
    assert services.push_stream_min_bytes <= csv.stat().st_size < services.stream_min_bytes
    segment = csv_world(csv, text=SHARED).segments[0]
    assert services._stream_estimate(segment, personalised=True) == MID_SIZE_PROFILES + 2
    assert services._stream_estimate(segment, personalised=False) is None


@pytest.mark.parametrize("text", [SHARED, PERSONAL], ids=["multicast", "push"])
async def test_a_broken_row_late_in_a_mid_size_file_refuses_the_launch_before_sending(
    tmp_path: Path, text: str
) -> None:
    # the multicast's whole freeze finds it; the personalised campaign's validation read it first
    csv = tmp_path / "members.csv"
    write_audience(csv, MID_SIZE_PROFILES, bad_line=7_000)
    services = services_for(tmp_path / "data")
    campaign = services.import_fixture(csv_world(csv, text=text))
    with pytest.raises(LccError, match="line 7000"):
        await services.launch_async(campaign.id, actor="op")
    assert services.store.campaigns.get(campaign.id).state is CampaignState.DRAFT
    assert services.sandbox.deliveries == {}
    assert not services.claimed(campaign.id)
