"""Conversion events: every column rule at its boundary, hashing vectors, reading, batching."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.capi import (
    ALL_COLUMNS,
    BOUNDS,
    MAX_EVENTS_PER_REQUEST,
    SEED_COLUMNS,
    Batcher,
    BuiltEvent,
    EventBuilder,
    ExportObserver,
    ExportOptions,
    ExportSummary,
    InputFile,
    InvalidRows,
    PhoneNormaliser,
    _built_csv_events,
    _csv_batches,
    _slow_e164,
    _stream_batches,
    check_wire_event,
    hash_email,
    hash_phone,
    prepare_batches,
)
from core.errors import InputError
from tests.conftest import FIXTURES

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
TAG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
BASE: dict[str, Any] = {
    "deduplication_key": "order-1",
    "event_type": "conversion",
    "source_type": "web",
    "event_timestamp": str(TS),
    "click_id": "abc123",
}
PHONE_VECTOR = "d41e0ad70dddfeb68f149ad6fc61574b9c5780ab7bcb2fba5517771ffbb2409c"
EMAIL_VECTOR = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


def outcome(
    record: Mapping[str, Any], *, channel_id: str | None = None
) -> dict[str, Any] | list[tuple[str, str]]:
    """Build through both paths (generic and the compiled CSV row) and insist they agree."""
    builder = EventBuilder(now=NOW, channel_id=channel_id)
    generic = builder.build(record)
    columns = list(record)
    compiled = builder.row_function(columns)([str(record[c]) for c in columns])
    if isinstance(compiled, bytes):
        compiled = BuiltEvent(compiled, False)
    if isinstance(generic, BuiltEvent):
        assert isinstance(compiled, BuiltEvent), compiled
        assert compiled.payload == generic.payload
        assert compiled.line_uid == generic.line_uid
        document: dict[str, Any] = orjson.loads(generic.payload)
        return document
    assert not isinstance(compiled, BuiltEvent), compiled.payload
    assert sorted(compiled) == sorted(generic)
    return generic


def accepted(**changes: Any) -> dict[str, Any]:
    result = outcome({**BASE, **changes})
    assert isinstance(result, dict), result
    return result


def refused(column: str, **changes: Any) -> str:
    result = outcome({**BASE, **changes})
    assert isinstance(result, list), f"expected a problem with {column}, got {result}"
    reasons = [reason for where, reason in result if where == column]
    assert reasons, result
    return reasons[0]


# --- hashing ----------------------------------------------------------------------------------


def test_phone_vector_in_e164_and_in_japanese_national_form() -> None:
    assert hash_phone("+818000001234") == PHONE_VECTOR
    assert hash_phone("080-0000-1234", "JP") == PHONE_VECTOR
    assert hash_phone(" 080 0000 1234 ") == PHONE_VECTOR
    assert hash_phone("(080) 0000-1234") == PHONE_VECTOR
    assert hash_phone("+818012345678") == (
        "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
    )


def test_email_vector_is_trimmed_and_lowercased() -> None:
    assert hash_email("  John_Smith@Gmail.com ") == EMAIL_VECTOR
    assert hash_email("john_smith@gmail.com") == EMAIL_VECTOR


def test_a_value_already_hashed_is_lowercased_not_hashed_again() -> None:
    assert hash_email(EMAIL_VECTOR.upper()) == EMAIL_VECTOR
    assert hash_phone(PHONE_VECTOR.upper()) == PHONE_VECTOR
    event = accepted(email=EMAIL_VECTOR.upper(), phone=PHONE_VECTOR)
    assert event["user"]["email"] == EMAIL_VECTOR
    assert event["user"]["phone"] == PHONE_VECTOR


def test_other_user_ids_are_sent_as_they_are() -> None:
    uid = "U" + "0123456789abcdef" * 2
    ifa = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
    browser = "550e8400-e29b-41d4-a716-446655440000"
    event = outcome(
        {**BASE, "line_uid": uid, "ifa": ifa, "browser_id": browser, "external_id": "crm_42"},
        channel_id="1234567",
    )
    assert isinstance(event, dict)
    assert event["user"] == {
        "click_id": "abc123",
        "line_uid": uid,
        "ifa": ifa,
        "browser_id": browser,
        "external_id": "crm_42",
    }


def test_phone_region_decides_national_numbers() -> None:
    us = "+12025550123"
    assert hash_phone("(202) 555-0123", "US") == hashlib.sha256(us.encode()).hexdigest()
    assert PhoneNormaliser("TW").e164("0912 345 678") == "+886912345678"


PHONE_SHAPES = st.one_of(
    st.builds(
        lambda prefix, digits, sep: prefix + sep.join([digits[:3], digits[3:7], digits[7:]]),
        st.sampled_from(
            ["0", "+81", "+810", "+886", "+66", "+44", "+1", "+49", "010", "00", "", "+0", "+03"]
        ),
        st.text("0123456789", min_size=6, max_size=12),
        st.sampled_from(["", "-", " ", "."]),
    ),
    st.text("0123456789+- ()", min_size=1, max_size=16),
)


@settings(max_examples=2000, deadline=None)
@example("+031100000000", "JP")  # "+0...": no country code starts with 0 (found in CI)
@example("+0081312345678", "JP")
@given(PHONE_SHAPES, st.sampled_from(["JP", "TW", "TH", "US", "DE"]))
def test_fast_phone_path_agrees_with_phonenumbers(raw: str, region: str) -> None:
    """Whatever the fast path accepts, phonenumbers accepts with the same E.164 form."""
    try:
        fast: str | None = PhoneNormaliser(region).e164(raw)
    except Exception:
        fast = None
    try:
        number = phonenumbers.parse(raw.strip(), region)
        valid = phonenumbers.is_valid_number(number)
        slow = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        valid, slow = False, None
    assert fast == (slow if valid else None)


def test_slow_path_is_used_for_unusual_shapes() -> None:
    _slow_e164.cache_clear()
    assert PhoneNormaliser("JP").e164("０８０-００００-１２３４") == "+818000001234"
    assert _slow_e164.cache_info().misses == 1


# --- columns at their boundaries --------------------------------------------------------------


def test_a_minimal_row_maps_to_event_and_user() -> None:
    assert accepted() == {
        "event": {
            "deduplication_key": "order-1",
            "event_type": "conversion",
            "source_type": "web",
            "event_timestamp": TS,
        },
        "user": {"click_id": "abc123"},
    }


def test_deduplication_key() -> None:
    accepted(deduplication_key="k" * 256)
    assert "1-256" in refused("deduplication_key", deduplication_key="k" * 257)
    assert "not allowed: '!'" in refused("deduplication_key", deduplication_key="a!")
    assert "undefined" in refused("deduplication_key", deduplication_key="undefined")
    assert "required" in refused("deduplication_key", deduplication_key="")
    accepted(deduplication_key="A-z_0-9")


def test_event_type_and_source_type() -> None:
    accepted(event_type="page_view")
    assert "page_view" in refused("event_type", event_type="Conversion")
    assert "required" in refused("event_type", event_type="")
    assert "'web'" in refused("source_type", source_type="app")
    assert "required" in refused("source_type", source_type="")


def test_event_timestamp_window_is_inclusive_and_one_second_beyond_fails() -> None:
    earliest = int((NOW - timedelta(days=90)).timestamp())
    latest = int((NOW + timedelta(hours=24)).timestamp())
    assert accepted(event_timestamp=str(earliest))["event"]["event_timestamp"] == earliest
    accepted(event_timestamp=str(latest))
    assert "90 days before" in refused("event_timestamp", event_timestamp=str(earliest - 1))
    assert "24 hours after" in refused("event_timestamp", event_timestamp=str(latest + 1))
    assert "milliseconds" in refused("event_timestamp", event_timestamp=str(TS * 1000))
    assert "positive" in refused("event_timestamp", event_timestamp="0")
    assert "positive" in refused("event_timestamp", event_timestamp="-5")
    assert "whole seconds" in refused("event_timestamp", event_timestamp="1796000000.5")
    assert "whole seconds" in refused("event_timestamp", event_timestamp="yesterday")
    accepted(event_timestamp=f" {TS} ")


def test_event_name() -> None:
    accepted(event_name="E" * 20)
    assert "1-20" in refused("event_name", event_name="E" * 21)
    assert "1-20" in refused("event_name", event_name="Add To Cart")
    accepted(event_name="Add-To_Cart9")


def test_purchase_needs_a_value() -> None:
    assert "Purchase" in refused("value", event_name="Purchase")
    assert accepted(event_name="Purchase", value="0")["custom"] == {"value": 0}


def test_test_flag() -> None:
    assert accepted(test_flag="true")["event"]["test_flag"] is True
    assert accepted(test_flag="FALSE")["event"]["test_flag"] is False
    assert "true or false" in refused("test_flag", test_flag="maybe")


def test_line_uid_and_the_channel_it_needs() -> None:
    uid = "U" + "a" * 32
    event = outcome({**BASE, "line_uid": uid}, channel_id="2000000001")
    assert isinstance(event, dict) and event["user"]["line_uid"] == uid
    assert "--channel-id" in refused("line_uid", line_uid=uid)
    result = outcome({**BASE, "line_uid": "U" + "a" * 31}, channel_id="1")
    assert isinstance(result, list) and result[0][0] == "line_uid"
    result = outcome({**BASE, "line_uid": "U" + "A" * 32}, channel_id="1")
    assert isinstance(result, list) and "lowercase" in result[0][1]


def test_click_id() -> None:
    accepted(click_id="a-B_9" * 50)
    assert "ldtag_cl" in refused("click_id", click_id="a b")


@pytest.mark.parametrize("column", ["ifa", "browser_id"])
def test_uuid_columns(column: str) -> None:
    good = "550e8400-e29b-41d4-a716-446655440000"
    assert accepted(**{column: good})["user"][column] == good
    assert accepted(**{column: good.upper()})["user"][column] == good.upper()
    assert "UUID" in refused(column, **{column: good[:-1]})
    assert "UUID" in refused(column, **{column: good + "0"})


def test_external_id() -> None:
    accepted(external_id="x" * 512)
    assert "1-512" in refused("external_id", external_id="x" * 513)
    assert "undefined" in refused("external_id", external_id="undefined")


def test_email_rules() -> None:
    assert accepted(email="  John_Smith@Gmail.com ")["user"]["email"] == EMAIL_VECTOR
    accepted(email="o'brien+tag@example.co.jp")
    reason = refused("email", email="john.smith.example.com")
    assert "email address" in reason and "john" not in reason, "never echo personal data"
    refused("email", email="a@b@c")


def test_phone_rules() -> None:
    assert accepted(phone="080-0000-1234")["user"]["phone"] == PHONE_VECTOR
    reason = refused("phone", phone="090-1234")
    assert "phone number" in reason and "1234" not in reason
    refused("phone", phone="call me")


def test_url_referrer_title_category_lengths() -> None:
    url = "https://e.com/" + "a" * (2048 - 14)
    assert len(url) == 2048
    accepted(url=url)
    assert "2048" in refused("url", url=url + "a")
    assert "http" in refused("url", url="ftp://example.com/")
    assert "http" in refused("url", url="https://")
    accepted(referrer="r" * 2048)
    assert "2048" in refused("referrer", referrer="r" * 2049)
    accepted(title="t" * 1024)
    assert "1024" in refused("title", title="t" * 1025)
    accepted(category="c" * 300)
    assert "300" in refused("category", category="c" * 301)
    accepted(user_agent="u" * 10_000)


def test_web_fields_map_to_web() -> None:
    event = accepted(url="https://e.com/", referrer="https://e.com/cart", title="T", user_agent="M")
    assert event["web"] == {
        "url": "https://e.com/",
        "referrer": "https://e.com/cart",
        "title": "T",
        "user_agent": "M",
    }


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "255.255.255.255", "203.0.113.10", "::1", "2001:db8::8a2e:370:7334"]
)
def test_ip_addresses_accepted(address: str) -> None:
    assert accepted(ip_address=address)["web"]["ip_address"] == address


@pytest.mark.parametrize("address", ["256.0.0.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "::g", "host"])
def test_ip_addresses_refused(address: str) -> None:
    assert "IPv4 or IPv6" in refused("ip_address", ip_address=address)


def test_custom_value_and_quantity_bounds() -> None:
    assert accepted(value="0")["custom"]["value"] == 0
    assert accepted(value="2147483647")["custom"]["value"] == 2147483647
    assert accepted(value="12.5")["custom"]["value"] == 12.5
    assert "2147483647" in refused("value", value="2147483648")
    assert "between" in refused("value", value="-1")
    assert "finite" in refused("value", value="nan")
    assert "number" in refused("value", value="lots")
    assert accepted(quantity="2147483647")["custom"]["quantity"] == 2147483647
    assert "2147483647" in refused("quantity", quantity="2147483648")
    assert "whole number" in refused("quantity", quantity="1.5")


def test_currency() -> None:
    assert accepted(currency="JPY")["custom"]["currency"] == "JPY"
    refused("currency", currency="jpy")
    refused("currency", currency="JPYY")


@pytest.mark.parametrize(("column", "limit"), [("item_ids", 100), ("keywords", 10)])
def test_lists_at_their_limit(column: str, limit: int) -> None:
    items = [f"i{n}" for n in range(limit)]
    assert accepted(**{column: orjson.dumps(items).decode()})["custom"][column] == items
    assert accepted(**{column: ",".join(items)})["custom"][column] == items
    too_many = orjson.dumps([*items, "one more"]).decode()
    assert str(limit) in refused(column, **{column: too_many})
    assert "JSON array" in refused(column, **{column: "[not json"})
    assert "non-empty" in refused(column, **{column: "a,,b"})


def test_a_row_needs_a_user_field() -> None:
    assert "at least one of" in refused("user", click_id="")


def test_every_problem_of_a_row_is_reported() -> None:
    result = outcome(
        {**BASE, "event_type": "x", "source_type": "y", "email": "nope", "event_timestamp": "z"}
    )
    assert isinstance(result, list)
    assert sorted(c for c, _ in result) == ["email", "event_timestamp", "event_type", "source_type"]


# --- the wire format the sandbox checks ------------------------------------------------------


def test_wire_events_must_be_hashed_and_typed() -> None:
    builder = EventBuilder(now=NOW, channel_id=None, wire=True)
    good: dict[str, Any] = {
        "event": {
            "deduplication_key": "k",
            "event_type": "conversion",
            "source_type": "web",
            "event_timestamp": TS,
        },
        "user": {"email": EMAIL_VECTOR},
    }
    assert check_wire_event(good, builder) == []
    raw_email = {**good, "user": {"email": "john@example.com"}}
    assert check_wire_event(raw_email, builder, prefix="[3].")[0][0] == "[3].user.email"
    upper = {**good, "user": {"email": EMAIL_VECTOR.upper()}}
    assert check_wire_event(upper, builder)
    as_text = {**good, "event": {**good["event"], "event_timestamp": str(TS)}}
    assert check_wire_event(as_text, builder)[0][0] == "event.event_timestamp"
    misplaced = {**good, "web": {"email": EMAIL_VECTOR}}
    assert check_wire_event(misplaced, builder)[0] == ("web.email", "is not a field of web")
    assert check_wire_event({"user": good["user"]}, builder) == [("event", "is required")]
    assert check_wire_event([], builder)[0][1] == "must be a JSON object"


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BOUNDS))
def test_each_option_at_its_bounds(name: str) -> None:
    bound = BOUNDS[name]
    for good in (bound.low, bound.high):
        options: dict[str, Any] = {name: good}
        ExportOptions(tag_id=TAG, **options).check(sandbox=True)
    for bad in (bound.low - 1, bound.high + 1):
        options = {name: bad}
        with pytest.raises(InputError) as caught:
            ExportOptions(tag_id=TAG, **options).check(sandbox=True)
        assert caught.value.source == bound.option
        assert f"between {bound.low} and {bound.high}" in caught.value.message


def test_token_env_is_required_off_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="required unless capi_base is 'sandbox'"):
        ExportOptions(tag_id=TAG).check(sandbox=False)
    monkeypatch.delenv("CAPI_TOKEN_TEST", raising=False)
    with pytest.raises(InputError, match="CAPI_TOKEN_TEST is not set"):
        ExportOptions(tag_id=TAG, token_env="CAPI_TOKEN_TEST").check(sandbox=False)
    monkeypatch.setenv("CAPI_TOKEN_TEST", "secret-token")
    ExportOptions(tag_id=TAG, token_env="CAPI_TOKEN_TEST").check(sandbox=False)
    ExportOptions(tag_id=TAG).check(sandbox=False, need_token=False)


def test_tag_channel_and_region_are_checked() -> None:
    with pytest.raises(InputError, match="LINE Tag ID"):
        ExportOptions(tag_id="../../etc").check(sandbox=True)
    with pytest.raises(InputError, match="digits only"):
        ExportOptions(tag_id=TAG, channel_id="12ab").check(sandbox=True)
    with pytest.raises(InputError, match="region"):
        ExportOptions(tag_id=TAG, phone_region="XX").check(sandbox=True)


# --- reading ----------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_seed_columns_are_all_known() -> None:
    assert set(SEED_COLUMNS) <= set(ALL_COLUMNS)


def test_unknown_csv_columns_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    header = "deduplication_key,event_type,source_type,event_timestamp,emial,colour\n"
    with pytest.raises(InputError) as caught:
        InputFile(write(tmp_path / "e.csv", header))
    message = caught.value.message
    assert "'emial' (did you mean 'email'?)" in message and "'colour'" in message


def test_csv_header_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="more than once"):
        InputFile(write(tmp_path / "a.csv", "deduplication_key,email,email\n"))
    with pytest.raises(InputError, match="required column"):
        InputFile(write(tmp_path / "b.csv", "deduplication_key,email\n"))
    with pytest.raises(InputError, match="no user column"):
        InputFile(
            write(tmp_path / "c.csv", "deduplication_key,event_type,source_type,event_timestamp\n")
        )
    with pytest.raises(InputError, match="empty"):
        InputFile(write(tmp_path / "d.csv", ""))
    with pytest.raises(InputError, match="no such file"):
        InputFile(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="no such file"):
        InputFile(tmp_path)
    locked = write(tmp_path / "locked.csv", "deduplication_key\n")
    locked.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(InputError, match="cannot be read"):
            InputFile(locked)


def test_csv_rows_are_numbered_from_the_first_data_row(tmp_path: Path) -> None:
    text = (
        "deduplication_key,event_type,source_type,event_timestamp,email\n"
        f"k1,conversion,web,{TS},a@example.com\n"
        "\n"
        f"k2,conversion,web,{TS},a@example.com,extra\n"
        f'k3,conversion,web,{TS},"a@example.com"\n'
    )
    source = InputFile(write(tmp_path / "e.csv", text))
    records = list(source.records())
    assert [(r.row, r.line) for r in records] == [(1, 2), (2, 4), (3, 5)]
    assert records[1].data is None and "5 columns" in (records[1].problem or "")


def test_a_quote_left_open_is_refused_on_its_row_not_read_as_one_value(tmp_path: Path) -> None:
    text = (
        "deduplication_key,event_type,source_type,event_timestamp,email\n"
        f"k1,conversion,web,{TS},a@example.com\n"
        f'k2,conversion,web,{TS},"b@example.com\n'
        f"k3,conversion,web,{TS},c@example.com\n"
    )
    source = InputFile(write(tmp_path / "e.csv", text))
    with pytest.raises(InputError) as caught:
        list(source.records())
    assert caught.value.location == "line 3" and "never closed" in caught.value.message


def test_jsonl_flat_and_nested_rows(tmp_path: Path) -> None:
    source = InputFile(FIXTURES / "conversions" / "sample.jsonl")
    assert source.format == "jsonl"
    records = list(source.records())
    assert records[1].data is not None and records[1].data["click_id"] == "xyz789"
    bad = write(tmp_path / "b.jsonl", '{"deduplication_key": 1, "emial": "x"}\n[1]\nnot json\n')
    source = InputFile(bad)
    assert source.unknown_jsonl_columns() == {"emial": 1}
    problems = [r.problem for r in source.records()]
    assert problems[1] == "must be a JSON object" and "not valid JSON" in (problems[2] or "")


def test_the_sample_files_at_their_reference_time() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    options = ExportOptions(tag_id=TAG)
    batches = list(prepare_batches(FIXTURES / "conversions" / "sample.csv", options, now=now))
    events = [orjson.loads(p) for b in batches for p in b.payloads]
    assert len(events) == 4
    first = events[0]
    assert first["user"] == {"email": EMAIL_VECTOR, "phone": PHONE_VECTOR}
    assert first["custom"] == {
        "value": 4980,
        "currency": "JPY",
        "quantity": 2,
        "item_ids": ["sku-1", "sku-2"],
        "category": "shoes",
    }
    assert first["web"]["ip_address"] == "203.0.113.10"


# --- batching ---------------------------------------------------------------------------------


def test_batches_hold_batch_size_events_and_a_json_array_body() -> None:
    batcher = Batcher(3)
    made = []
    for row in range(1, 8):
        done = batcher.add(row, BuiltEvent(b'{"n":%d}' % row, row == 5))
        if done:
            made.append(done)
    last = batcher.flush()
    assert last is not None
    made.append(last)
    assert [b.count for b in made] == [3, 3, 1]
    assert [(b.first_row, b.last_row) for b in made] == [(1, 3), (4, 6), (7, 7)]
    assert [b.line_uid for b in made] == [False, True, False]
    assert orjson.loads(made[1].body()) == [{"n": 4}, {"n": 5}, {"n": 6}]


def test_batches_never_exceed_the_byte_cap_or_line_s_count() -> None:
    batcher = Batcher(10, max_bytes=25)
    sizes = []
    for row in range(6):
        done = batcher.add(row, BuiltEvent(b"x" * 10, False))
        if done:
            sizes.append(len(done.body()))
    assert sizes and all(size <= 25 for size in sizes)
    assert Batcher(10**7).size == MAX_EVENTS_PER_REQUEST


def test_the_hot_loop_batches_exactly_as_the_plain_pipeline(tmp_path: Path) -> None:
    lines = ["deduplication_key,event_type,source_type,event_timestamp,email,line_uid,value"]
    for row in range(1, 2601):
        email = "bad" if row % 97 == 0 else f"u{row}@example.com"
        uid = "U" + f"{row:032x}" if row % 250 == 0 else ""
        lines.append(f"k{row},conversion,web,{TS},{email},{uid},{row % 7}")
        if row % 500 == 0:
            lines.append("")
            lines.append("k,conversion,web")
    path = write(tmp_path / "mixed.csv", "\n".join(lines) + "\n")
    source = InputFile(path)

    def run(fast: bool) -> tuple[list[tuple[int, int, int, bool, bytes]], list[Any], int]:
        builder = EventBuilder(now=NOW, channel_id="1657000000")
        summary = ExportSummary()
        if fast:
            batches = _csv_batches(source, builder, summary, ExportObserver(), 1000)
        else:
            events = _built_csv_events(source, builder, summary, ExportObserver())
            batches = _stream_batches(events, 1000)
        made = [(b.number, b.first_row, b.last_row, b.line_uid, b.body()) for b in batches]
        return made, [p.as_dict() for p in summary.invalid], summary.rows

    fast, slow = run(True), run(False)
    assert fast == slow
    assert fast[2] == 2605 and len(fast[1]) == 31
    assert [b[3] for b in fast[0]] == [True, True, True]


def test_invalid_rows_spill_to_disk_and_stream_back_in_order() -> None:
    invalid = InvalidRows(keep_in_memory=3)
    for row in range(1, 11):
        invalid.add_row(row, [("email", f"bad {row}"), ("phone", "bad")])
    assert invalid.rows == 10 and invalid.problems == 20
    rows = [p.row for p in invalid]
    assert rows == sorted(rows) and len(rows) == 20
    assert len(invalid.first(100)) == 3
    assert invalid.by_column == {"email": 10, "phone": 10}
    invalid.close()
