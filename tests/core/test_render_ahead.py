"""A push campaign rendered by a forked child sends exactly what the engine renders itself."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core import forking, render_ahead
from core import outbox as outbox_module
from core.compose import Composer
from core.models import CampaignState
from core.render_ahead import RenderAhead
from core.sandbox.faults import Fault
from core.service import Services
from tests.core.test_delivery import (
    PERSONAL,
    deliver_stopping_at,
    delivered_counts,
    launched,
    services_for,
    user,
    world,
)
from tests.core.test_streamed_launch import PROFILES as STREAMED_PROFILES
from tests.core.test_streamed_launch import REACHABLE, streamed_campaign

PROFILES = 600

pytestmark = pytest.mark.skipif(
    not forking.fork_is_safe(), reason="pushes are rendered ahead only where fork is safe (Linux)"
)


def rendering_ahead(services: Services) -> Services:
    services.render_ahead_min_requests = 0
    return services


def render_children(
    monkeypatch: pytest.MonkeyPatch, then: Callable[[RenderAhead], None] | None = None
) -> list[RenderAhead]:
    """Every RenderAhead the engine starts from now on (each passed to `then` once started)."""
    started: list[RenderAhead] = []
    original = RenderAhead.__init__

    def spy(self: RenderAhead, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        started.append(self)
        if then is not None:
            then(self)

    monkeypatch.setattr(RenderAhead, "__init__", spy)
    return started


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[RenderAhead]:
    """`render_children`, with small batches so that there are several."""
    monkeypatch.setattr(render_ahead, "BATCH_REQUESTS", 16)
    return render_children(monkeypatch)


def sent_and_logged(services: Services, campaign_id: str) -> tuple[Any, ...]:
    sent = {
        user_id: [d["messages"] for d in entries]
        for user_id, entries in services.sandbox.deliveries.items()
    }
    rows = sorted(
        (r["profile_id"], r["line_user_id"], r["status"], r["error_code"], r["request_index"])
        for r in services.store.delivery_log(campaign_id).rows()
    )
    return sent, rows


async def test_pushes_rendered_ahead_are_the_pushes_rendered_in_process(
    tmp_path: Path, children: list[RenderAhead]
) -> None:
    fixture = world(PROFILES, extra=[{"profile_id": "nobody", "line_user_id": None}])
    results = []
    for name, ahead in (("here", False), ("ahead", True)):
        services = services_for(tmp_path / name)
        if ahead:
            rendering_ahead(services)
        campaign_id = await launched(services, fixture)
        summary = await services.deliver(campaign_id, actor="op")
        assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
        assert (summary.requests, summary.delivered, summary.failed) == (PROFILES, PROFILES, 1)
        results.append(sent_and_logged(services, campaign_id))
        assert len(children) == int(ahead)
        manifest = services.manifest(campaign_id)
        assert manifest is not None
        for request in services.outbox(campaign_id).iter_requests(manifest):
            [delivery] = services.sandbox.deliveries[request.to[0]]
            assert delivery["retry_key"] == request.key  # the key frozen for it
    assert results[0] == results[1]  # the same messages, the same log
    assert delivered_counts(services) == {user(i): 1 for i in range(PROFILES)}
    first = services.sandbox.deliveries[user(7)][0]["messages"][0]["text"]
    assert first.startswith("N7さん") and "utm_" in first


async def test_a_push_that_cannot_render_fails_alone_when_rendered_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[RenderAhead]
) -> None:
    services = rendering_ahead(services_for(tmp_path))
    monkeypatch.setattr(services, "validate", lambda campaign: [])
    fixture = world(40, text="1人あたり {{ profile.total | divided_by: profile.people }} 円")
    for number, profile in enumerate(fixture.segments[0].profiles or []):
        profile.attributes.update({"total": 3000, "people": number})
    campaign_id = await launched(services, fixture)
    summary = await services.deliver(campaign_id, actor="op")
    assert children
    assert (summary.delivered, summary.failed) == (39, 1)
    assert services.counts(campaign_id).errors == {"template_error": 1}
    assert user(0) not in services.sandbox.deliveries
    assert services.sandbox.deliveries[user(2)][0]["messages"][0]["text"] == "1人あたり 1500 円"


async def test_a_killed_rendering_process_leaves_the_rest_to_the_engine(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[RenderAhead],
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = os.getpid()
    rendered = 0
    original = Composer.bundle

    def dies_in_the_child(self: Composer, profile: Any) -> Any:
        nonlocal rendered
        rendered += 1
        if os.getpid() != engine and rendered == 100:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, profile)

    monkeypatch.setattr(Composer, "bundle", dies_in_the_child)
    services = rendering_ahead(services_for(tmp_path))
    campaign_id = await launched(services, world(PROFILES))
    with caplog.at_level(logging.WARNING, logger="core.delivery"):
        summary = await services.deliver(campaign_id, actor="op")
    assert children
    assert "the rendering process stopped" in caplog.text
    assert 0 < rendered < PROFILES  # the engine rendered only what the child had not handed over
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
    assert summary.delivered == PROFILES
    assert delivered_counts(services) == {user(i): 1 for i in range(PROFILES)}
    logged = [r["request_index"] for r in services.store.delivery_log(campaign_id).rows()]
    assert sorted(logged) == list(range(PROFILES))


async def test_a_stuck_rendering_process_is_killed_and_the_engine_renders_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(render_ahead, "STALL_S", 0.3)

    def stopped_at_once(child: RenderAhead) -> None:
        assert child._process.pid is not None
        os.kill(child._process.pid, signal.SIGSTOP)  # alive, holding its pipe, never answering

    children = render_children(monkeypatch, then=stopped_at_once)
    services = rendering_ahead(services_for(tmp_path))
    campaign_id = await launched(services, world(PROFILES))
    with caplog.at_level(logging.WARNING, logger="core.delivery"):
        summary = await services.deliver(campaign_id, actor="op")
    assert children
    assert "stopped answering for 0.3 s and was killed; rendering from request 0 on" in (
        caplog.text
    )
    assert not children[0]._process.is_alive()
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
    assert summary.delivered == PROFILES
    assert delivered_counts(services) == {user(i): 1 for i in range(PROFILES)}


async def test_an_idle_rendering_process_is_not_taken_for_a_stuck_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[RenderAhead],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Waiting for the freeze's next part, the child owes nothing: its silence is no stall."""
    monkeypatch.setattr(render_ahead, "STALL_S", 1.0)
    original = outbox_module.LiveFreeze.wait

    def slow_parts(self: outbox_module.LiveFreeze, index: int) -> Any:
        got = original(self, index)
        if index in (1, 2):
            time.sleep(1.5)  # longer than STALL_S between two parts
        return got

    monkeypatch.setattr(outbox_module.LiveFreeze, "wait", slow_parts)
    monkeypatch.setattr(outbox_module, "PUSH_PART_REQUESTS", 200)
    services, campaign, _csv = streamed_campaign(tmp_path, PERSONAL)
    rendering_ahead(services)
    await services.launch_async(campaign.id, actor="op")
    with caplog.at_level(logging.WARNING, logger="core.delivery"):
        summary = await services.deliver(campaign.id, actor="op")
    assert children and children[0]._process.exitcode == 0  # it ended when told, not killed
    assert "rendering process" not in caplog.text
    assert summary.complete
    assert delivered_counts(services) == REACHABLE


async def test_a_stopped_push_campaign_renders_only_what_is_left_on_the_next_run(
    tmp_path: Path, children: list[RenderAhead]
) -> None:
    services = services_for(tmp_path, faults=[Fault(kind="latency", ms=20)], concurrency=4)
    rendering_ahead(services)
    campaign_id = await launched(services, world(300))
    first = await deliver_stopping_at(services, campaign_id, sent=50)
    assert first.stopped == "shutting down" and first.pending > 0
    second = await services.deliver(campaign_id, actor="op")
    assert second.requests == first.pending
    assert len(children) == 2
    assert delivered_counts(services) == {user(i): 1 for i in range(300)}
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


async def test_a_streamed_push_campaign_is_rendered_ahead_part_by_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[RenderAhead]
) -> None:
    monkeypatch.setattr(outbox_module, "PUSH_PART_REQUESTS", 200)
    services, campaign, _csv = streamed_campaign(tmp_path, PERSONAL)
    rendering_ahead(services)
    await services.launch_async(campaign.id, actor="op")
    assert campaign.id in services._live_freezes  # sending while the rest is frozen
    summary = await services.deliver(campaign.id, actor="op")
    assert children
    assert services.store.campaigns.get(campaign.id).state is CampaignState.FINISHED
    assert summary.complete
    assert delivered_counts(services) == REACHABLE
    assert len(list(services.store.delivery_log(campaign.id).rows())) == STREAMED_PROFILES
