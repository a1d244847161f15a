"""The outbox: frozen requests, stable retry keys, batching, dispatch marks, decisions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.audience import AudienceRow, ResolvedBatch, resolve
from core.compose import Composer
from core.models import CampaignSpec, Profile, SenderAccount, TextV2Message
from core.outbox import (
    KEY_SAFETY_MARGIN_S,
    KEY_WINDOW_S,
    DispatchMark,
    Outbox,
    first_attempt_bound,
    freeze,
    key_still_valid,
    reissued_key,
    request_key,
)

ACCOUNT = SenderAccount(id="oa", name="Acme Official", workspaces=["w"])
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def user(i: int) -> str:
    return f"U{i:032x}"


def rows(count: int, *, start: int = 0) -> list[AudienceRow]:
    return [
        AudienceRow(f"p{i}", user(i), {"first_name": f"N{i}"}) for i in range(start, start + count)
    ]


def as_batches(audience: list[AudienceRow], size: int = 300) -> list[ResolvedBatch]:
    """The audience resolved, in batches smaller than a multicast (batches never cut requests)."""
    batches = [ResolvedBatch(attributes=[])]
    for row, why in resolve(audience):
        batch = batches[-1]
        batch.rows += 1
        if why is not None:
            batch.excluded.append((row, why))
        else:
            assert row.line_user_id is not None and batch.attributes is not None
            batch.user_ids.append(row.line_user_id)
            batch.profile_ids.append(row.profile_id)
            batch.attributes.append(row.attributes)
        if batch.rows >= size:
            batches.append(ResolvedBatch(attributes=[]))
    return batches


def spec(text: str) -> CampaignSpec:
    return CampaignSpec(name="spring", messages=[TextV2Message(text=text)])


def frozen(directory: Path, text: str, audience: list[AudienceRow], **kw: Any) -> Outbox:
    campaign = spec(text)
    composer = Composer(campaign, campaign_id="cmp-1")
    outbox = Outbox(directory)
    freeze(
        outbox,
        campaign_id="cmp-1",
        spec=campaign,
        account=ACCOUNT,
        aggregation_unit="spring_1",
        batches=as_batches(audience),
        personalised="profile." in text,
        render=composer.bundle,
        frozen_at=NOW,
        **kw,
    )
    return outbox


def test_multicast_batches_of_500_with_exclusions_apart(tmp_path: Path) -> None:
    audience = rows(1203)
    audience.insert(10, AudienceRow("missing", None, {}))
    audience.insert(20, AudienceRow("bad", "U123", {}))
    audience.append(AudienceRow("dup", user(5), {}))
    outbox = frozen(tmp_path / "o", "Sale today https://example.com/sale", audience)
    manifest = outbox.manifest()
    assert manifest is not None and manifest.mode == "multicast"
    requests = list(outbox.iter_requests(manifest))
    assert [len(r.to) for r in requests] == [500, 500, 203]
    assert [r.number for r in requests] == [0, 1, 2]
    assert all(r.attributes is None for r in requests)
    assert requests[0].to[:2] == [user(0), user(1)] and requests[0].profile_ids[0] == "p0"
    assert manifest.bundle is not None
    assert "utm_source=line" in manifest.bundle[0]["text"]
    totals = manifest.totals
    assert (totals.segment, totals.unique, totals.requests, totals.excluded) == (1206, 1203, 3, 3)
    excluded = [p for part in outbox.iter_exclusion_parts(manifest) for p in part]
    assert [(p.profile_id, p.reason) for p in excluded] == [
        ("missing", "missing_recipient_id"),
        ("bad", "invalid_recipient_id"),
        ("dup", "duplicate_recipient_id"),
    ]


def test_personalised_content_is_one_push_per_profile_with_its_inputs(tmp_path: Path) -> None:
    audience = [
        AudienceRow(f"p{i}", user(i), {"first_name": f"N{i}", "email": "x@example.com"})
        for i in range(3)
    ]
    outbox = frozen(
        tmp_path / "o", "Hi {{ profile.first_name }}!", audience, attributes=["first_name"]
    )
    manifest = outbox.manifest()
    assert manifest is not None and manifest.mode == "push" and manifest.bundle is None
    assert manifest.attributes == ["first_name"]
    requests = list(outbox.iter_requests(manifest))
    assert [r.to for r in requests] == [[user(0)], [user(1)], [user(2)]]
    assert [r.attributes for r in requests] == [{"first_name": f"N{i}"} for i in range(3)]
    composer = Composer(manifest.spec, campaign_id="cmp-1")
    texts = [composer.bundle(r.profile())[0]["text"] for r in requests]
    assert texts == ["Hi N0!", "Hi N1!", "Hi N2!"]
    assert len({r.key for r in requests}) == 3


def test_a_push_key_follows_the_attributes_it_is_rendered_from(tmp_path: Path) -> None:
    text = "Hi {{ profile.first_name }}!"
    one = frozen(tmp_path / "a", text, [AudienceRow("p0", user(0), {"first_name": "Aiko"})])
    two = frozen(tmp_path / "b", text, [AudienceRow("p0", user(0), {"first_name": "Kenji"})])
    keys = [next(o.iter_requests(o.manifest())).key for o in (one, two)]  # type: ignore[arg-type]
    assert keys[0] != keys[1]


def test_keys_are_uuids_stable_across_a_second_freeze_and_follow_the_content(
    tmp_path: Path,
) -> None:
    first = frozen(tmp_path / "a", "Hi {{ profile.first_name }}", rows(5))
    again = frozen(tmp_path / "b", "Hi {{ profile.first_name }}", rows(5))
    other = frozen(tmp_path / "c", "Hello {{ profile.first_name }}", rows(5))
    keys = [[r.key for r in o.iter_requests(o.manifest())] for o in (first, again, other)]  # type: ignore[arg-type]
    assert keys[0] == keys[1]
    assert not set(keys[0]) & set(keys[2]), "different bytes never share a key"
    for key in keys[0]:
        assert uuid.UUID(key).version == 5
    assert request_key("cmp-1", 0, [user(1)], "d") != request_key("cmp-1", 1, [user(1)], "d")
    assert request_key("cmp-1", 0, [user(1)], "d") != request_key("cmp-2", 0, [user(1)], "d")
    assert reissued_key(keys[0][0], 0) == keys[0][0]
    assert reissued_key(keys[0][0], 1) not in (keys[0][0], reissued_key(keys[0][0], 2))


def test_an_interrupted_freeze_is_replaced_and_the_manifest_comes_last(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o")
    outbox.directory.mkdir()
    (outbox.directory / "requests-00000.json").write_bytes(b'{"requests": [[0, "x"]]}')
    assert outbox.manifest() is None
    frozen(tmp_path / "o", "Hi", rows(2))
    manifest = outbox.manifest()
    assert manifest is not None
    assert [r.to for r in outbox.iter_requests(manifest)] == [[user(0), user(1)]]
    stored = orjson.loads((outbox.directory / "manifest.json").read_bytes())
    assert stored["spec"]["messages"][0]["text"] == "Hi"
    assert stored["aggregation_unit"] == "spring_1"


def test_push_parts_start_small_and_hold_at_most_5000_requests(tmp_path: Path) -> None:
    outbox = frozen(tmp_path / "o", "{{ profile.first_name }}", rows(11_201))
    manifest = outbox.manifest()
    assert manifest is not None
    sizes = [len(outbox.part_requests(name)) for name in manifest.request_parts]
    assert sizes == [200, 1000, 5000, 5000, 1]
    assert [r.number for r in outbox.iter_requests(manifest)] == list(range(11_201))


def test_dispatch_marks_bound_the_first_attempt(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o")
    outbox.directory.mkdir()
    outbox.mark_dispatch(999, 1000.0)
    outbox.mark_dispatch(1999, 2000.0)
    with (outbox.directory / "dispatch.jsonl").open("ab") as handle:
        handle.write(b'{"t": 3000, "up')  # torn by a kill: those requests were never sent
    marks = outbox.dispatch_marks()
    assert marks == [DispatchMark(1000.0, 999), DispatchMark(2000.0, 1999)]
    assert first_attempt_bound(marks, 0) == 1000.0
    assert first_attempt_bound(marks, 999) == 1000.0
    assert first_attempt_bound(marks, 1000) == 2000.0
    assert first_attempt_bound(marks, 2000) is None


def test_key_window_keeps_a_safety_margin() -> None:
    limit = KEY_WINDOW_S - KEY_SAFETY_MARGIN_S
    assert key_still_valid(0.0, limit - 1)
    assert not key_still_valid(0.0, limit)
    assert not key_still_valid(0.0, KEY_WINDOW_S + 1)


def test_decisions_record_epochs_and_the_latest_wins(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o")
    outbox.directory.mkdir()
    assert outbox.record_decision([3, 1], resend=True, at=10.0, actor="op") == 1
    assert outbox.record_decision([1], resend=False, at=20.0, actor="op") == 2
    decisions = outbox.decisions()
    assert decisions.resend == {3: (1, 10.0)}
    assert decisions.abandoned == {1}
    assert [r["actor"] for r in decisions.records] == ["op", "op"]


def test_rendering_uses_the_blank_profile_only_for_shared_content(tmp_path: Path) -> None:
    seen: list[Profile | None] = []

    def render(profile: Profile | None) -> list[dict[str, Any]]:
        seen.append(profile)
        return [{"type": "textV2", "text": "same"}]

    freeze(
        Outbox(tmp_path / "o"),
        campaign_id="cmp-1",
        spec=spec("same"),
        account=ACCOUNT,
        aggregation_unit="u",
        batches=as_batches(rows(700)),
        personalised=False,
        render=render,
        frozen_at=NOW,
    )
    assert seen == [None]


def test_multicast_size_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        frozen(tmp_path / "o", "x", rows(1), multicast_size=501)
