"""The delivery engine against the in-process sandbox: exactly once, whatever happens."""

from __future__ import annotations

import contextlib
import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.clock import SimulatedClock
from core.compose import Composer
from core.delivery import (
    YOUNG_COLLECTION_THRESHOLD,
    DeliveryControl,
    DeliveryProgress,
    DeliverySummary,
    fewer_young_collections,
)
from core.delivery_log import COLUMNS, hash_user_id
from core.fixture import Fixture
from core.models import CampaignState
from core.sandbox.faults import Fault, SandboxSpec
from core.sandbox.state import SandboxState
from core.service import UNKNOWN_OUTCOMES, Services
from core.settings import load_settings

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PERSONAL = "{{ profile.first_name | default: 'there' }}さん、セール開催中 https://example.com/sale"
SHARED = "セール開催中 https://example.com/sale"


def user(i: int) -> str:
    return f"U{i:032x}"


def world(
    count: int, *, text: str = PERSONAL, extra: list[dict[str, Any]] | None = None
) -> Fixture:
    profiles: list[dict[str, Any]] = [
        {"profile_id": f"p{i:05d}", "line_user_id": user(i), "attributes": {"first_name": f"N{i}"}}
        for i in range(count)
    ]
    profiles += extra or []
    return Fixture.model_validate(
        {
            "fixture_version": 1,
            "workspace": "w",
            "sender_accounts": [
                {"id": "oa", "name": "Acme", "channel_id": "1", "workspaces": ["w"]}
            ],
            "segments": [{"parent_segment": "All", "segment": "S", "profiles": profiles}],
            "campaign": {
                "name": "sale",
                "sender_account": "oa",
                "audience": {"parent_segment": "All", "segment": "S"},
                "messages": [{"type": "textV2", "text": text}],
                "activation": {"max_attempts": 6, "initial_backoff_s": 0.01, "max_backoff_s": 0.05},
            },
        }
    )


def services_for(
    data_dir: Path,
    *,
    faults: list[Fault] | None = None,
    quota: int | None = None,
    concurrency: int = 64,
    clock: SimulatedClock | None = None,
    sandbox: SandboxState | None = None,
) -> Services:
    clock = clock or SimulatedClock(START)
    settings = load_settings(data_dir=data_dir, delivery_concurrency=concurrency)
    if sandbox is None:
        sandbox = SandboxState(
            spec=SandboxSpec(faults=faults or [], monthly_quota=quota),
            clock=lambda: clock.now().timestamp(),
        )
    return Services.open(settings, clock=clock, sandbox=sandbox)


def delivered_counts(services: Services) -> dict[str, int]:
    return {user_id: len(entries) for user_id, entries in services.sandbox.deliveries.items()}


async def launched(services: Services, fixture: Fixture) -> str:
    campaign = services.import_fixture(fixture)
    await services.launch_async(campaign.id, actor="op")
    return campaign.id


async def test_push_per_profile_logs_a_row_per_message_and_finishes(data_dir: Path) -> None:
    services = services_for(data_dir)
    fixture = world(30, extra=[{"profile_id": "nobody", "line_user_id": None}])
    campaign_id = await launched(services, fixture)
    seen: list[DeliveryProgress] = []
    summary = await services.deliver(campaign_id, actor="op", progress=seen.append)
    assert (summary.requests, summary.delivered, summary.failed) == (30, 30, 1)
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.FINISHED
    assert delivered_counts(services) == {user(i): 1 for i in range(30)}
    deliveries = services.sandbox.deliveries[user(7)]
    assert deliveries[0]["messages"][0]["text"].startswith("N7さん")
    assert deliveries[0]["unit"] == campaign.aggregation_unit is not None
    rows = list(services.store.delivery_log(campaign_id).rows())
    assert len(rows) == 31
    for row in rows:
        assert list(row)[: len(COLUMNS)] == list(COLUMNS)
    missing = [r for r in rows if r["profile_id"] == "nobody"]
    assert missing[0]["error_code"] == "missing_recipient_id" and missing[0]["line_user_id"] == ""
    row7 = next(r for r in rows if r["profile_id"] == "p00007")
    assert row7["line_user_id"] == hash_user_id(user(7)) and row7["status"] == "success"
    # stamped by the campaign's clock (a replay's is simulated), not the machine's
    assert {abs(row["time"] - START.timestamp()) < 60 for row in rows} == {True}
    assert seen[-1].final and seen[-1].sent == 30 and seen[-1].failed == 1
    assert seen[-1].remaining == 0 and seen[-1].requests_done == 30


async def test_shared_content_goes_by_multicast_of_500(data_dir: Path) -> None:
    services = services_for(data_dir)
    campaign_id = await launched(services, world(1234, text=SHARED))
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.requests == 3 and summary.delivered == 1234
    sends = [r for r in services.sandbox.requests if r["endpoint"] == "multicast"]
    assert sorted(r["recipients"] for r in sends) == [234, 500, 500]
    assert delivered_counts(services) == {user(i): 1 for i in range(1234)}
    counts = services.counts(campaign_id)
    assert (counts.delivered, counts.failed, counts.rows) == (1234, 0, 1234)


async def test_a_request_already_accepted_answers_409_and_counts_as_delivered(
    data_dir: Path,
) -> None:
    services = services_for(data_dir)
    campaign_id = await launched(services, world(5))
    outbox = services.outbox(campaign_id)
    manifest = outbox.manifest()
    assert manifest is not None
    first = next(outbox.iter_requests(manifest))
    client = services.line_client(manifest.account)
    messages = Composer(manifest.spec, campaign_id=campaign_id).bundle(first.profile())
    result = await client.push(first.to[0], messages, retry_key=first.key)
    await client.aclose()
    assert result.status == 200
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.delivered == 5
    statuses = [r["status"] for r in services.sandbox.requests if r["retry_key"] == first.key]
    assert statuses == [200, 409]
    assert delivered_counts(services)[first.to[0]] == 1
    assert services.counts(campaign_id).delivered == 5


async def test_transient_faults_deliver_everyone_exactly_once(data_dir: Path) -> None:
    faults = [
        Fault(kind="random_5xx", rate=0.1, seed=3),
        Fault(kind="lost_answer", rate=0.15, seed=4),
    ]
    services = services_for(data_dir, faults=faults)
    campaign_id = await launched(services, world(400))
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.delivered == 400 and summary.requests == 400
    assert delivered_counts(services) == {user(i): 1 for i in range(400)}
    statuses = [r["status"] for r in services.sandbox.requests]
    assert 409 in statuses and 500 in statuses, "the faults did strike"
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


async def test_monthly_limit_suspends_at_once_and_resume_sends_only_the_rest(
    data_dir: Path,
) -> None:
    services = services_for(data_dir, faults=[Fault(kind="monthly_limit", count=6)], concurrency=1)
    campaign_id = await launched(services, world(10))
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.fatal is not None and summary.fatal.monthly_limit
    assert summary.delivered == 6 and summary.pending == 4
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.SUSPENDED
    assert "monthly message limit" in (campaign.suspend_reason or "")
    refusals = [r for r in services.sandbox.requests if r["status"] == 429]
    assert len(refusals) == 1, "no retries, no further requests after the refusal"
    assert services.counts(campaign_id).delivered == 6
    assert len(list(services.store.delivery_log(campaign_id).rows())) == 6

    services.sandbox.set_spec(SandboxSpec())
    resumed = await services.resume(campaign_id, actor="op")
    assert resumed.requests == 4 and resumed.delivered == 4
    assert delivered_counts(services) == {user(i): 1 for i in range(10)}
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
    assert len(list(services.store.delivery_log(campaign_id).rows())) == 10


@pytest.mark.parametrize(("kind", "status"), [("unauthorized", 401), ("forbidden", 403)])
async def test_401_and_403_suspend_and_the_quota_check_is_skipped_with_a_notice(
    data_dir: Path, kind: str, status: int
) -> None:
    services = services_for(data_dir, faults=[Fault(kind=kind)])
    campaign_id = await launched(services, world(20))
    assert any("quota pre-flight skipped" in notice for notice in services.notices)
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.delivered == 0 and summary.fatal is not None
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.SUSPENDED and f"({status}" in (
        campaign.suspend_reason or ""
    )
    assert services.sandbox.deliveries == {}
    assert list(services.store.delivery_log(campaign_id).rows()) == []


async def test_kill_switch_stops_a_running_delivery_promptly(data_dir: Path) -> None:
    services = services_for(data_dir, faults=[Fault(kind="latency", ms=20)], concurrency=4)
    campaign_id = await launched(services, world(400))
    pulled: list[int] = []

    def progress(event: DeliveryProgress) -> None:
        if event.sent >= 20 and not pulled:
            pulled.append(event.sent)
            services.kill_switch("oa", actor="op", reason="wrong price in the copy")

    summary = await services.deliver(campaign_id, actor="op", progress=progress)
    assert pulled and summary.stopped is not None
    assert summary.delivered < 100, "stopped within a few requests of the switch"
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.SUSPENDED
    assert "wrong price" in (campaign.suspend_reason or "")
    assert services.counts(campaign_id).delivered == summary.delivered
    assert sum(delivered_counts(services).values()) == summary.delivered


async def test_another_process_suspending_is_noticed(data_dir: Path) -> None:
    services = services_for(data_dir, faults=[Fault(kind="latency", ms=20)], concurrency=4)
    other = services_for(data_dir)
    campaign_id = await launched(services, world(400))
    done: list[int] = []

    def progress(event: DeliveryProgress) -> None:
        if event.sent >= 10 and not done:
            done.append(1)
            from core import states

            other.store.campaigns.transition(
                campaign_id, states.Action.SUSPEND, at=START, actor="op2", reason="hold"
            )

    summary = await services.deliver(campaign_id, actor="op", progress=progress)
    assert summary.stopped is not None and summary.delivered < 400
    assert services.store.campaigns.get(campaign_id).suspend_reason == "hold"


async def deliver_stopping_at(
    services: Services, campaign_id: str, *, sent: int
) -> DeliverySummary:
    """A delivery stopped ("shutting down") once `sent` profiles are delivered."""
    control = DeliveryControl()

    def progress(event: DeliveryProgress) -> None:
        if event.sent >= sent:
            control.stop("shutting down")

    return await services.deliver(campaign_id, actor="op", progress=progress, control=control)


async def test_stopping_leaves_pending_requests_that_the_next_run_sends_once(
    data_dir: Path,
) -> None:
    services = services_for(data_dir, faults=[Fault(kind="latency", ms=20)], concurrency=4)
    campaign_id = await launched(services, world(300))
    first = await deliver_stopping_at(services, campaign_id, sent=50)
    assert first.stopped == "shutting down" and first.pending > 0
    assert services.store.campaigns.get(campaign_id).state is CampaignState.ACTIVE
    second = await services.deliver(campaign_id, actor="op")
    assert second.requests == first.pending
    assert delivered_counts(services) == {user(i): 1 for i in range(300)}
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


async def test_keys_older_than_the_window_are_not_resent_until_the_operator_decides(
    data_dir: Path,
) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = await launched(services, world(6))
    outbox = services.outbox(campaign_id)
    # An earlier run dispatched requests 0..3 and died before recording anything.
    outbox.mark_dispatch(3, START.timestamp())
    clock.advance_to(START + timedelta(hours=23, minutes=30))
    summary = await services.deliver(campaign_id, actor="op")
    assert sorted(summary.unknown) == [0, 1, 2, 3]
    assert summary.delivered == 2, "requests never sent before go out normally"
    campaign = services.store.campaigns.get(campaign_id)
    assert campaign.state is CampaignState.SUSPENDED
    assert "23 hours" in (campaign.suspend_reason or "")
    flag = services.store.flags.get(campaign_id, UNKNOWN_OUTCOMES)
    assert flag is not None and flag.data["requests"] == [0, 1, 2, 3]
    from core import states
    from core.errors import IllegalTransition

    with pytest.raises(IllegalTransition, match="resolve_unknown"):
        services.act(campaign_id, states.Action.RESUME, actor="op")

    services.resolve_unknown(campaign_id, resend=False, actor="op")
    final = await services.deliver(campaign_id, actor="op")
    assert final.requests == 0
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED
    counts = services.counts(campaign_id)
    assert counts.delivered == 2 and counts.errors == {"outcome_unknown": 4}
    assert set(delivered_counts(services)) == {user(4), user(5)}


async def test_resend_decision_sends_under_new_keys(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = await launched(services, world(3))
    outbox = services.outbox(campaign_id)
    manifest = outbox.manifest()
    assert manifest is not None
    old_keys = {r.key for r in outbox.iter_requests(manifest)}
    outbox.mark_dispatch(2, START.timestamp())
    clock.advance_to(START + timedelta(hours=30))
    await services.deliver(campaign_id, actor="op")
    services.resolve_unknown(campaign_id, resend=True, actor="op")
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.delivered == 3
    sent_keys = {r["retry_key"] for r in services.sandbox.requests if r["endpoint"] == "push"}
    assert sent_keys.isdisjoint(old_keys)
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


async def test_keys_within_the_window_are_resent_and_answer_409(data_dir: Path) -> None:
    clock = SimulatedClock(START)
    services = services_for(data_dir, clock=clock)
    campaign_id = await launched(services, world(4))
    outbox = services.outbox(campaign_id)
    manifest = outbox.manifest()
    assert manifest is not None
    client = services.line_client(manifest.account)
    for request in outbox.iter_requests(manifest):
        messages = Composer(manifest.spec, campaign_id=campaign_id).bundle(request.profile())
        await client.push(request.to[0], messages, retry_key=request.key)
    await client.aclose()
    outbox.mark_dispatch(3, START.timestamp())
    clock.advance_to(START + timedelta(hours=20))
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.unknown == [] and summary.delivered == 4
    assert delivered_counts(services) == {user(i): 1 for i in range(4)}


async def test_a_push_that_cannot_render_for_its_profile_fails_alone(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation renders for every profile first; should a value still break its template at
    send time (the file changed), that one profile fails and the campaign carries on."""
    services = services_for(data_dir)
    monkeypatch.setattr(services, "validate", lambda campaign: [])
    text = "1人あたり {{ profile.total | divided_by: profile.people }} 円"
    fixture = world(3, text=text)
    for number, profile in enumerate(fixture.segments[0].profiles or []):
        profile.attributes.update({"total": 3000, "people": number})
    campaign_id = await launched(services, fixture)
    summary = await services.deliver(campaign_id, actor="op")
    assert (summary.delivered, summary.failed) == (2, 1)
    counts = services.counts(campaign_id)
    assert counts.errors == {"template_error": 1}
    assert user(0) not in services.sandbox.deliveries
    assert services.sandbox.deliveries[user(2)][0]["messages"][0]["text"] == "1人あたり 1500 円"
    assert services.store.campaigns.get(campaign_id).state is CampaignState.FINISHED


def test_encoded_rows_are_the_contract_rows_in_tinydbs_own_format(tmp_path: Path) -> None:
    """The engine writes rows as JSON text straight from templates: the same rows `make_row`
    builds, in a part file TinyDB reads, names with quotes and percent signs included."""
    from tinydb import TinyDB

    from core.delivery_log import LogWriter, RowFactory
    from core.store import DeliveryLog

    factory = RowFactory(
        campaign_id="cmp-1", channel_name='Acme 100% "公式"', message_types=["textV2", "imagemap"]
    )
    log = DeliveryLog(tmp_path / "log", "delivery_line_default")
    writer = LogWriter(log)
    expected: list[dict[str, Any]] = []
    for success, code in ((True, ""), (False, "500"), (False, "timeout")):
        factory.extend(
            expected,
            time=1_700_000_000,
            line_user_id=user(1),
            profile_id='p"1',
            success=success,
            error_code=code,
            request_id="r-1" if success else None,
            request_index=7,
        )
        factory.encode_request(
            writer,
            time=1_700_000_000,
            line_user_ids=[user(1)],
            profile_ids=['p"1'],
            success=success,
            error_code=code,
            request_id="r-1" if success else None,
            request_index=7,
        )
    writer.flush()
    rows = list(log.rows())
    assert rows == expected and len(rows) == 6
    assert [list(row)[: len(COLUMNS)] for row in rows] == [list(COLUMNS)] * 6
    assert rows[0]["line_user_id"] == hash_user_id(user(1))
    assert [(r["status"], r["error_code"]) for r in rows[::2]] == [
        ("success", ""),
        ("failed", "500"),
        ("failed", "timeout"),
    ]
    table = TinyDB(log.parts()[0]).table("delivery_line_default")
    assert len(table) == 6 and table.get(doc_id=3) == expected[2]


@pytest.mark.parametrize("kinds", [["textV2"], ["textV2", "imagemap", "textV2"]])
def test_encoded_rows_of_a_many_recipient_request_are_the_rows_make_row_builds(
    tmp_path: Path, kinds: list[str]
) -> None:
    from core.delivery_log import LogWriter, RowFactory
    from core.store import DeliveryLog

    factory = RowFactory(campaign_id="c%d", channel_name="%s 100%", message_types=kinds)
    log = DeliveryLog(tmp_path / "log", "delivery_line_default")
    writer = LogWriter(log)
    users = [user(i) for i in range(5)]
    profiles = ["p%d", 'p"1', "p\\2", "名前", ""]
    expected: list[dict[str, Any]] = []
    for request, success in enumerate((True, False)):
        outcome: dict[str, Any] = {
            "time": 1_700_000_000 + request,
            "success": success,
            "error_code": "" if success else "400",
            "request_id": "r%b" if success else None,
            "request_index": request,
        }
        for user_id, profile_id in zip(users, profiles, strict=True):
            factory.extend(expected, line_user_id=user_id, profile_id=profile_id, **outcome)
        factory.encode_request(writer, line_user_ids=users, profile_ids=profiles, **outcome)
    writer.flush()
    assert list(log.rows()) == expected and len(expected) == 10 * len(kinds)


_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    campaign_id=_texts,
    channel=_texts,
    kinds=st.lists(st.sampled_from(["textV2", "imagemap"]), min_size=1, max_size=5),
    profiles=st.lists(_texts, min_size=1, max_size=4),
    request_id=st.none() | _texts,
    already=st.integers(0, 50),
    when=st.integers(0, 2**40),
    request_index=st.integers(0, 10**7),
)
def test_rows_built_before_the_answer_are_the_rows_encode_request_writes(
    campaign_id: str,
    channel: str,
    kinds: list[str],
    profiles: list[str],
    request_id: str | None,
    already: int,
    when: int,
    request_index: int,
) -> None:
    """The rendering child builds an accepted push's rows ahead (`accepted_rows`) and the
    engine fills in LINE's answer (`encode_accepted`): byte for byte what `encode_request`
    writes, whatever the names hold (percent signs, quotes, NULs, any script)."""
    from core.delivery_log import LogWriter, RowFactory

    class Sink:
        def append_encoded(self, body: bytes, rows: int) -> None:
            raise AssertionError("not flushed in this test")

    factory = RowFactory(campaign_id=campaign_id, channel_name=channel, message_types=kinds)
    users = [user(n) for n in range(len(profiles))]
    written, ahead = LogWriter(Sink()), LogWriter(Sink())
    for writer in (written, ahead):
        writer.add(b"", already)
    factory.encode_request(
        written,
        time=when,
        line_user_ids=users,
        profile_ids=profiles,
        success=True,
        request_id=request_id,
        request_index=request_index,
    )
    rows = factory.accepted_rows(users, profiles, request_index)
    factory.encode_accepted(ahead, rows, len(users), time=when, request_id=request_id)
    assert ahead.pending == written.pending and ahead.pending_rows == written.pending_rows


def test_background_log_writes_keep_order_and_report_a_failure() -> None:
    from core.delivery_log import LogWriter

    class Sink:
        def __init__(self) -> None:
            self.parts: list[tuple[bytes, int]] = []

        def append_encoded(self, body: bytes, rows: int) -> None:
            if body == b"boom":
                raise OSError(28, "No space left on device")
            self.parts.append((body, rows))

    sink = Sink()
    writer = LogWriter(sink, flush_rows=1, background=True)
    for number in range(50):
        writer.add(b"%d" % number, 1)
        writer.maybe_flush()
    writer.close()
    assert [body for body, _ in sink.parts] == [b"%d" % n for n in range(50)]
    failing = LogWriter(Sink(), flush_rows=1, background=True)
    failing.add(b"boom", 1)
    failing.flush()
    with pytest.raises(OSError, match="No space left"):
        failing.close()


async def test_a_delivery_collects_the_young_generation_less_often_and_puts_it_back(
    data_dir: Path,
) -> None:
    clock = SimulatedClock(START)
    thresholds_seen_by_line: list[int] = []

    def sandbox_clock() -> float:  # read by the sandbox as it accepts each push
        thresholds_seen_by_line.append(gc.get_threshold()[0])
        return clock.now().timestamp()

    sandbox = SandboxState(spec=SandboxSpec(), clock=sandbox_clock)
    services = services_for(data_dir, clock=clock, sandbox=sandbox)
    campaign_id = await launched(services, world(5))
    before = gc.get_threshold()
    assert 0 < before[0] < YOUNG_COLLECTION_THRESHOLD
    thresholds_seen_by_line.clear()
    summary = await services.deliver(campaign_id, actor="op")
    assert summary.delivered == 5
    assert thresholds_seen_by_line and set(thresholds_seen_by_line) == {YOUNG_COLLECTION_THRESHOLD}
    assert gc.get_threshold() == before


def test_overlapping_runs_put_the_threshold_back_once_the_last_ends() -> None:
    before = gc.get_threshold()
    with contextlib.ExitStack() as first:
        first.enter_context(fewer_young_collections())
        with fewer_young_collections():
            assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD  # the first still runs
    assert gc.get_threshold() == before


def test_a_threshold_already_higher_or_off_is_left_alone() -> None:
    before = gc.get_threshold()
    try:
        for threshold in (0, YOUNG_COLLECTION_THRESHOLD * 5):
            gc.set_threshold(threshold, 10, 10)
            with pytest.raises(RuntimeError), fewer_young_collections():
                assert gc.get_threshold()[0] == threshold
                raise RuntimeError("the run failed")
            assert gc.get_threshold() == (threshold, 10, 10)
    finally:
        gc.set_threshold(*before)
