"""Pre-launch validation: every problem at once, each on its tab and field (contract section 8)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import audience, rules, validation
from core.fixture import Fixture, load_fixture
from core.models import ActivationPolicy, Campaign, CampaignSpec
from core.validation import (
    RETRY_KEY_LIFETIME_S,
    Issue,
    Tab,
    ValidationContext,
    longest_retry_wait_s,
    summarise_profiles,
    validate_campaign,
    validate_fixture,
)
from tests.conftest import FIXTURES

Json = dict[str, Any]
USER = "U4af4980629aaaaaaaaaaaaaaaaaaaaa{}"
LCC = [sys.executable, "-m", "tui"]


def welcome() -> Json:
    data: Json = json.loads((FIXTURES / "welcome_text.json").read_text())
    return data


def issues_of(data: Json) -> list[Issue]:
    return validate_fixture(Fixture.model_validate(data))


def found(data: Json) -> set[tuple[str, str, str]]:
    return {(issue.tab.value, issue.field, issue.code) for issue in issues_of(data)}


def with_messages(*messages: Json) -> Json:
    data = welcome()
    data["campaign"]["messages"] = list(messages)
    return data


def text(body: str) -> Json:
    return {"type": "textV2", "text": body}


def imagemap_with_link(link: str) -> Json:
    return {
        "type": "imagemap",
        "baseUrl": "https://example.com/img/spring",
        "altText": "Spring sale",
        "baseSize": {"width": 1040, "height": 1040},
        "actions": [
            {
                "type": "uri",
                "linkUri": link,
                "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
            }
        ],
    }


def set_profiles(data: Json, *profiles: Json) -> Json:
    data["segments"][0]["profiles"] = list(profiles)
    return data


def profile(number: int, user: str | None = "valid", **attributes: Any) -> Json:
    line_user_id = USER.format(number % 10) if user == "valid" else user
    return {"profile_id": f"c-{number}", "line_user_id": line_user_id, "attributes": attributes}


# --- the fixtures ---------------------------------------------------------------------------


def test_the_welcome_fixture_is_valid() -> None:
    assert validate_fixture(load_fixture(FIXTURES / "welcome_text.json").fixture) == []


def test_many_problems_reports_every_problem_at_once_on_its_tab() -> None:
    issues = validate_fixture(load_fixture(FIXTURES / "many_problems.json").fixture)
    assert {issue.tab for issue in issues} == set(Tab)
    assert {(i.tab.value, i.field, i.code) for i in issues} >= {
        ("audience", "audience.segment", "no_reachable_profiles"),
        ("content", "sender_account", "sender_account_not_in_workspace"),
        ("content", "messages[0].text", "text_too_long"),
        ("content", "messages[1].text", "template_syntax"),
        ("content", "messages[2].text", "placeholder_undefined"),
        ("content", "messages[2].substitution.friend", "mention_not_allowed"),
        ("content", "messages[3].baseUrl", "url_not_https"),
        ("content", "messages[3].baseUrl", "base_url_has_extension"),
        ("content", "messages[3].baseSize.width", "base_width_not_1040"),
        ("content", "messages[3].actions[0].linkUri", "uri_too_long"),
        ("content", "messages[3].actions[1].area.y", "area_negative"),
        ("content", "messages[3].actions[1].area.width", "area_outside_image"),
        ("content", "messages[3].actions[2].linkUri", "uri_scheme_not_allowed"),
        ("content", "messages[4].type", "unsupported_message_type"),
        ("schedule", "schedule.at", "schedule_in_past"),
        ("schedule", "schedule.timezone", "timezone_unknown"),
        ("activation", "activation.max_attempts", "max_attempts_out_of_range"),
        ("activation", "activation.max_backoff_s", "max_backoff_out_of_range"),
        ("utm", "utm.utm_source", "required_empty"),
        ("utm", "utm.utm_campaign", "unknown_variable"),
    }
    [long_text] = [i for i in issues if i.code == "text_too_long"]
    assert long_text.message.startswith("for the profile with the longest first_name, text is ")
    assert long_text.message.endswith("characters; LINE allows 5000")


def test_many_problems_issues_come_in_tab_order() -> None:
    issues = validate_fixture(load_fixture(FIXTURES / "many_problems.json").fixture)
    order = list(Tab)
    positions = [order.index(issue.tab) for issue in issues]
    assert positions == sorted(positions)


# --- Target Audience --------------------------------------------------------------------------


def test_segment_required_and_unknown() -> None:
    data = welcome()
    data["campaign"]["audience"] = None
    assert ("audience", "audience.segment", "segment_required") in found(data)
    data["campaign"]["audience"] = {"parent_segment": "All Customers", "segment": "Nobody"}
    assert ("audience", "audience.segment", "segment_unknown") in found(data)


def test_no_reachable_profiles_when_every_id_is_missing_or_invalid() -> None:
    data = set_profiles(welcome(), profile(1, None), profile(2, "U123"), profile(3, ""))
    assert ("audience", "audience.segment", "no_reachable_profiles") in found(data)
    data = set_profiles(welcome(), profile(1, None), profile(2))
    assert found(data) == set()


def test_an_empty_segment_has_no_reachable_profiles() -> None:
    data = set_profiles(welcome())
    assert ("audience", "audience.segment", "no_reachable_profiles") in found(data)


def test_an_unreadable_profiles_file_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(f"profile_id,line_user_id,first_name\nc-1,{USER.format(1)},Aiko\nc-2,x\n")
    data = welcome()
    data["segments"][0] = {
        "parent_segment": "All Customers",
        "segment": "New Friends",
        "profiles_file": "bad.csv",
    }
    data["campaign"]["messages"] = [text("Hi {{ profile.first_name }}")]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    issues = validate_fixture(load_fixture(path).fixture)
    [issue] = [i for i in issues if i.code == "profiles_unreadable"]
    assert issue.tab is Tab.AUDIENCE and "bad.csv" in issue.message and "line 3" in issue.message


# --- Campaign Content: launch rules -------------------------------------------------------------


def test_sender_account_rules() -> None:
    data = welcome()
    data["campaign"]["sender_account"] = None
    assert ("content", "sender_account", "sender_account_required") in found(data)
    data["campaign"]["sender_account"] = "nope"
    assert ("content", "sender_account", "sender_account_unknown") in found(data)
    data = welcome()
    data["sender_accounts"][0]["workspaces"] = ["other"]
    assert ("content", "sender_account", "sender_account_not_in_workspace") in found(data)


def test_at_least_one_and_at_most_five_messages() -> None:
    assert ("content", "messages", "messages_required") in found(with_messages())
    assert found(with_messages(*[text("hi")] * 5)) == set()
    assert ("content", "messages", "too_many_messages") in found(with_messages(*[text("hi")] * 6))


def test_message_paths_point_into_the_campaign() -> None:
    data = with_messages(text("ok"), imagemap_with_link("ftp://example.com/x"))
    assert ("content", "messages[1].actions[0].linkUri", "uri_scheme_not_allowed") in found(data)


# --- Campaign Content: Liquid, rendering and the longest profile --------------------------------


def test_template_syntax_error_names_line_and_column() -> None:
    data = with_messages(text("Hello\n{{ profile.first_name | default: 'there' }"))
    [issue] = [i for i in issues_of(data) if i.code == "template_syntax"]
    assert issue.field == "messages[0].text" and issue.tab is Tab.CONTENT
    assert "line 2" in issue.message and "column" in issue.message


def test_a_broken_template_does_not_hide_the_other_messages_problems() -> None:
    data = with_messages(text("{{ oops "), text("a" * 5001))
    assert found(data) >= {
        ("content", "messages[0].text", "template_syntax"),
        ("content", "messages[1].text", "text_too_long"),
    }
    assert not any(
        code in {"text_too_long", "brace_unbalanced"} and field == "messages[0].text"
        for _tab, field, code in found(data)
    )


def test_a_template_that_fails_while_rendering() -> None:
    data = with_messages(text("{{ profile.points | divided_by: 0 }}"), text("x" * 5001))
    issues = issues_of(data)
    assert ("messages[0].text", "template_error") in {(i.field, i.code) for i in issues}
    assert ("messages[1].text", "text_too_long") in {(i.field, i.code) for i in issues}


def test_unknown_variables_render_empty_and_are_refused() -> None:
    data = with_messages(text("Hi {{ first_name }}!"))
    [issue] = issues_of(data)
    assert (issue.field, issue.code) == ("messages[0].text", "unknown_variable")
    assert "profile.first_name" in issue.message


def test_an_attribute_no_profile_has_is_refused_with_the_closest_name() -> None:
    data = set_profiles(
        with_messages(text("Hi {{ profile.frist_name | default: 'friend' }}!")),
        profile(1, first_name="Aiko", rank="gold"),
        profile(2, first_name="Ren"),
    )
    [issue] = issues_of(data)
    assert (issue.tab, issue.field, issue.code) == (
        Tab.CONTENT,
        "messages[0].text",
        "attribute_not_in_segment",
    )
    assert "profile.frist_name" in issue.message
    assert "did you mean profile.first_name?" in issue.message
    assert "first_name, rank" in issue.message


def test_an_attribute_is_judged_by_the_profiles_that_receive_messages() -> None:
    some = set_profiles(
        with_messages(text("{{ profile.coupon | default: 'none' }}")),
        profile(1, first_name="Aiko"),
        profile(2, coupon="SPRING10"),  # one receiving profile is enough
    )
    assert issues_of(some) == []
    only_unreachable = set_profiles(
        with_messages(text("{{ profile.coupon | default: 'none' }}")),
        profile(1, first_name="Aiko"),
        profile(2, None, coupon="SPRING10"),  # has no LINE user id: receives nothing
    )
    assert {i.code for i in issues_of(only_unreachable)} == {"attribute_not_in_segment"}


def test_too_long_only_for_the_longest_profile_says_so() -> None:
    body = "x" * 4990 + "{{ profile.first_name | default: 'there' }}"
    data = set_profiles(
        with_messages(text(body)),
        profile(1, first_name="Aiko"),
        profile(2, first_name="Maximiliana"),  # 11 characters: 5001
        profile(3, None, first_name="A much longer name nobody receives"),
    )
    [issue] = issues_of(data)
    assert issue.code == "text_too_long" and issue.field == "messages[0].text"
    assert issue.message == (
        "for the profile with the longest first_name, text is 5001 characters; LINE allows 5000"
    )


def test_an_issue_found_for_both_profiles_is_reported_once_without_the_prefix() -> None:
    body = "x" * 5001 + "{{ profile.first_name | default: 'there' }}"
    data = set_profiles(with_messages(text(body)), profile(1, first_name="Maximiliana"))
    [issue] = issues_of(data)
    assert issue.message == "text is 5006 characters; LINE allows 5000"


def test_the_longest_value_counts_braces_as_escaped() -> None:
    """`{{{{{` is 5 characters but 10 once escaped for textV2, so it beats `abcdefg`."""
    body = "x" * 4992 + "{{ profile.nick }}"
    data = set_profiles(
        with_messages(text(body)), profile(1, nick="abcdefg"), profile(2, nick="{{{{{")
    )
    [issue] = issues_of(data)
    assert issue.message == (
        "for the profile with the longest nick, text is 5002 characters; LINE allows 5000"
    )


def test_link_lengths_are_checked_after_utm() -> None:
    utm_suffix = "?utm_source=line&utm_medium=social&utm_campaign=welcome_friends"
    link = "https://example.com/" + "a" * (1000 - len("https://example.com/") - len(utm_suffix))
    assert found(with_messages(imagemap_with_link(link))) == set()
    longer = with_messages(imagemap_with_link(link + "b"))
    [issue] = issues_of(longer)
    assert (issue.field, issue.code) == ("messages[0].actions[0].linkUri", "uri_too_long")
    assert issue.message == "linkUri is 1001 characters; LINE allows 1000"


def test_a_link_in_text_grows_with_utm_too() -> None:
    body = "Sale: https://example.com/spring " + "x" * 4930
    assert found(with_messages(text(body[:4900]))) == set()
    assert ("content", "messages[0].text", "text_too_long") in found(with_messages(text(body)))


def test_the_url_longest_profile_catches_encoded_values() -> None:
    link = "https://example.com/" + "a" * 885 + "?city={{ profile.city | url_encode }}"
    data = set_profiles(
        with_messages(imagemap_with_link(link)),
        profile(1, city="Kagoshima-shi"),  # longer in characters
        profile(2, city="東京都"),  # 27 characters once percent-encoded
    )
    [issue] = issues_of(data)
    assert issue.code == "uri_too_long"
    assert issue.message.startswith("for the profile with the longest city, linkUri is ")


def test_campaign_id_is_counted_at_its_real_length() -> None:
    data = welcome()
    data["campaign"]["utm"]["utm_content"] = "{{campaign.id}}"
    spec = CampaignSpec.model_validate(data["campaign"])
    fixture = Fixture.model_validate(data)
    ctx = ValidationContext(
        workspace="marketing-jp",
        now=datetime(2026, 11, 30, tzinfo=UTC),
        accounts={a.id: a for a in fixture.sender_accounts},
        segments={s.key: s for s in fixture.segments},
        campaign_id="cmp-0123456789ab",
    )
    assert validate_campaign(spec, ctx) == []
    assert validate_fixture(fixture) == []


# --- streaming the segment ---------------------------------------------------------------------


def write_csv(path: Path, rows: int, long_at: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("profile_id,line_user_id,first_name,city\n")
        for number in range(rows):
            name = "Maximiliana-Featherstonehaugh" if number == long_at else "Aiko"
            handle.write(f"c-{number},{USER.format(number % 10)},{name},Tokyo\n")


def test_the_longest_value_is_found_anywhere_in_a_profiles_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "big.csv", rows=20_000, long_at=19_998)
    data = welcome()
    data["segments"][0] = {
        "parent_segment": "All Customers",
        "segment": "New Friends",
        "profiles_file": "big.csv",
    }
    data["campaign"]["messages"] = [text("x" * 4980 + "{{ profile.first_name }}")]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    [issue] = validate_fixture(load_fixture(path).fixture)
    assert issue.message.startswith("for the profile with the longest first_name, text is 5009 ")


def test_a_profiles_file_is_read_once_while_it_does_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "big.csv", rows=500, long_at=3)
    data = welcome()
    data["segments"][0] = {
        "parent_segment": "All Customers",
        "segment": "New Friends",
        "profiles_file": "big.csv",
    }
    data["campaign"]["messages"] = [text("Hi {{ profile.first_name }}")]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    fixture = load_fixture(path).fixture
    reads: list[str] = []
    real = audience.iter_rows

    def counting(segment: Any, **options: Any) -> Any:
        reads.append(str(segment.profiles_file))
        return real(segment, **options)

    monkeypatch.setattr(validation, "iter_rows", counting)
    assert validate_fixture(fixture) == []
    assert validate_fixture(fixture) == []
    assert len(reads) == 1
    write_csv(tmp_path / "big.csv", rows=501, long_at=3)
    os.utime(tmp_path / "big.csv", ns=(1, 1))
    assert validate_fixture(fixture) == []
    assert len(reads) == 2


def test_summary_stops_at_the_first_reachable_profile_without_attributes() -> None:
    def profiles() -> Any:
        from core.models import Profile

        yield Profile(profile_id="a", line_user_id=None)
        yield Profile(profile_id="b", line_user_id=USER.format(1))
        raise AssertionError("read past the first reachable profile")

    summary = summarise_profiles(profiles(), frozenset())
    assert summary.reachable == 1 and summary.longest == {}


def test_summary_holds_one_value_per_attribute() -> None:
    from core.models import Profile

    rows = (
        Profile(profile_id=str(n), line_user_id=USER.format(n % 10), attributes={"n": "x" * n})
        for n in range(1000)
    )
    summary = summarise_profiles(rows, frozenset({"n"}))
    assert summary.reachable == 1000 and summary.longest["n"].in_text == "x" * 999


ATTRIBUTE_VALUES = st.one_of(
    st.text(st.sampled_from("ax{}%/ 山😀"), max_size=4),
    st.sampled_from([0, 1, 1.0, True, False, 10, -1]),  # equal as keys, not as text
    st.integers(),
)


@pytest.mark.parametrize("remembered", [validation._DISTINCT_REMEMBERED, 2])
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.booleans(),
            st.dictionaries(st.sampled_from(["a", "b"]), ATTRIBUTE_VALUES, max_size=2),
        ),
        max_size=40,
    )
)
def test_the_longest_values_are_those_of_largest_measure(
    monkeypatch: pytest.MonkeyPatch, remembered: int, rows: list[tuple[bool, dict[str, Any]]]
) -> None:
    """Skipping values already measured (and past the cap, measuring them again) changes no
    result: each attribute's longest value has the largest measure among the reachable profiles'
    values, or among everyone's while none is reachable."""
    from core.models import Profile

    monkeypatch.setattr(validation, "_DISTINCT_REMEMBERED", remembered)
    profiles = [
        Profile(profile_id=str(i), line_user_id=f"U{i:032x}" if ok else None, attributes=values)
        for i, (ok, values) in enumerate(rows)
    ]
    summary = summarise_profiles(iter(profiles), frozenset({"a", "b"}))
    receiving = [p for p in profiles if p.line_user_id] or profiles
    for name in ("a", "b"):
        texts = [validation._as_text(p.attributes[name]) for p in receiving if name in p.attributes]
        if not texts:
            assert name not in summary.longest
            continue
        longest = summary.longest[name]
        text_of = validation._as_text
        assert validation._text_measure(text_of(longest.in_text)) == max(
            map(validation._text_measure, texts)
        )
        assert validation._url_measure(text_of(longest.in_url)) == max(
            map(validation._url_measure, texts)
        )


# --- Delivery Schedule ------------------------------------------------------------------------


def scheduled(at: str, timezone: str | None = None) -> Json:
    data = welcome()
    data["campaign"]["schedule"] = {"type": "scheduled", "at": at}
    if timezone is not None:
        data["campaign"]["schedule"]["timezone"] = timezone
    return data


def test_scheduled_time_must_be_after_the_clock() -> None:
    assert found(scheduled("2026-11-30T09:00:01+09:00")) == set()
    assert ("schedule", "schedule.at", "schedule_in_past") in found(
        scheduled("2026-11-30T09:00:00+09:00")
    )
    assert ("schedule", "schedule.at", "schedule_in_past") in found(
        scheduled("2026-11-29T23:59:59+00:00")
    )


def test_recurring_points_to_always_on_campaigns() -> None:
    data = welcome()
    data["campaign"]["schedule"] = {"type": "recurring", "cron": "0 9 * * *"}
    [issue] = issues_of(data)
    assert (issue.tab, issue.field, issue.code) == (
        Tab.SCHEDULE,
        "schedule.type",
        "recurring_not_supported",
    )
    assert "Always-On" in issue.message


@pytest.mark.parametrize("zone", ["Asia/Tokio", "JST+9", "../etc/passwd", "", "Asia"])
def test_a_timezone_that_is_not_an_iana_zone(zone: str) -> None:
    data = scheduled("2026-12-01T10:00:00+09:00", zone)
    assert ("schedule", "schedule.timezone", "timezone_unknown") in found(data)


def test_a_timezone_that_matches_the_offset() -> None:
    assert found(scheduled("2026-12-01T10:00:00+09:00", "Asia/Tokyo")) == set()
    assert found(scheduled("2026-12-01T10:00:00-05:00", "America/New_York")) == set()
    assert found(scheduled("2027-07-01T10:00:00-04:00", "America/New_York")) == set()
    assert ("schedule", "schedule.at", "timezone_offset_mismatch") in found(
        scheduled("2026-12-01T10:00:00+09:00", "America/New_York")
    )


# --- Activation ---------------------------------------------------------------------------------


ACTIVATION_BOUNDARIES = [
    ("max_attempts", 1, 0, "max_attempts_out_of_range"),
    ("max_attempts", 10, 11, "max_attempts_out_of_range"),
    ("initial_backoff_s", 0.001, 0.0, "initial_backoff_out_of_range"),
    ("max_backoff_s", 3600.0, 3600.5, "max_backoff_out_of_range"),
]


@pytest.mark.parametrize(("name", "ok", "bad", "code"), ACTIVATION_BOUNDARIES)
def test_activation_bounds(name: str, ok: float, bad: float, code: str) -> None:
    data = welcome()
    data["campaign"]["activation"][name] = ok
    assert found(data) == set()
    data["campaign"]["activation"][name] = bad
    assert found(data) == {("activation", f"activation.{name}", code)}


def test_initial_backoff_not_above_max() -> None:
    data = welcome()
    data["campaign"]["activation"].update(initial_backoff_s=60.0, max_backoff_s=60.0)
    assert found(data) == set()
    data["campaign"]["activation"].update(initial_backoff_s=61.0)
    assert found(data) == {
        ("activation", "activation.initial_backoff_s", "initial_backoff_above_max")
    }


def test_non_finite_backoffs_are_refused() -> None:
    spec = CampaignSpec.model_validate(welcome()["campaign"])
    spec = spec.model_copy(
        update={"activation": ActivationPolicy(initial_backoff_s=math.nan, max_backoff_s=math.inf)}
    )
    codes = {issue.code for issue in validation._activation(spec)}
    assert codes == {"initial_backoff_out_of_range", "max_backoff_out_of_range"}


def test_the_bounds_keep_every_retry_inside_the_retry_keys_lifetime() -> None:
    widest = ActivationPolicy(max_attempts=10, initial_backoff_s=3600, max_backoff_s=3600)
    assert longest_retry_wait_s(widest) == 9 * 3600
    assert longest_retry_wait_s(widest) < RETRY_KEY_LIFETIME_S / 2
    assert longest_retry_wait_s(ActivationPolicy()) == 1 + 2 + 4 + 8


def test_aggregation_unit_must_match_lines_pattern() -> None:
    fixture = Fixture.model_validate(welcome())
    now = datetime(2026, 11, 30, tzinfo=UTC)
    ctx = ValidationContext(
        workspace="marketing-jp",
        now=now,
        accounts={a.id: a for a in fixture.sender_accounts},
        segments={s.key: s for s in fixture.segments},
        campaign_id="cmp-0123456789ab",
    )

    def stored(unit: str | None) -> Campaign:
        return Campaign(
            **fixture.campaign.model_dump(),
            id="cmp-0123456789ab",
            workspace="marketing-jp",
            created_at=now,
            updated_at=now,
            aggregation_unit=unit,
        )

    assert validate_campaign(stored("welcome_friends_0123456789ab"), ctx) == []
    assert validate_campaign(stored("a" * 30), ctx) == []
    for bad in ("a" * 31, "new-item", ""):
        [issue] = validate_campaign(stored(bad), ctx)
        assert (issue.tab, issue.field, issue.code) == (
            Tab.ACTIVATION,
            "aggregation_unit",
            "aggregation_unit_invalid",
        )


# --- UTM Tracking --------------------------------------------------------------------------------


def test_utm_problems_are_on_the_utm_tab() -> None:
    data = welcome()
    data["campaign"]["utm"]["utm_medium"] = ""
    data["campaign"]["utm"]["extra"] = {"bad name": "x"}
    assert found(data) >= {
        ("utm", "utm.utm_medium", "required_empty"),
        ("utm", "utm.extra.bad name", "invalid_parameter_name"),
    }


# --- the seams ----------------------------------------------------------------------------------


def test_message_issues_is_kept_on_validation_for_the_sandbox() -> None:
    assert validation.message_issues is rules.message_issues
    assert validation.Issue is rules.Issue and validation.Tab is rules.Tab


def test_every_validation_code_is_documented() -> None:
    doc = (FIXTURES.parent / "docs" / "validation.md").read_text(encoding="utf-8")
    for code, rule in rules.RULES.items():
        assert f"`{code}`" in doc, code
        assert rule.tab.label


def test_validation_never_changes_the_campaign() -> None:
    fixture = load_fixture(FIXTURES / "many_problems.json").fixture
    before = fixture.campaign.model_dump()
    validate_fixture(fixture)
    assert fixture.campaign.model_dump() == before


def test_now_defaults_to_the_fixture_clock() -> None:
    data = scheduled("2026-11-30T10:00:00+09:00")
    fixture = Fixture.model_validate(data)
    assert validate_fixture(fixture) == []
    later = datetime(2026, 11, 30, 2, tzinfo=UTC) + timedelta(hours=1)
    assert {i.code for i in validate_fixture(fixture, now=later)} == {"schedule_in_past"}


# --- the command ---------------------------------------------------------------------------------


def lcc(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir)}
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=env, timeout=120)


def test_validate_json_lists_issues_on_all_five_tabs(data_dir: Path) -> None:
    result = lcc("validate", str(FIXTURES / "many_problems.json"), "--json", data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert {issue["tab"] for issue in document["issues"]} == {
        "audience",
        "content",
        "schedule",
        "activation",
        "utm",
    }
    for issue in document["issues"]:
        assert set(issue) == {"tab", "field", "code", "message"}
        assert issue["code"].isidentifier() and issue["code"] == issue["code"].lower()


def test_validate_for_people_groups_by_the_seeds_tab_names(data_dir: Path) -> None:
    result = lcc("validate", str(FIXTURES / "many_problems.json"), data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    headings = [
        "Target Audience (",
        "Campaign Content (",
        "Delivery Schedule (",
        "Activation (",
        "UTM Tracking (",
    ]
    positions = [result.stdout.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert "for the profile with the longest first_name" in result.stdout
    assert "Traceback" not in result.stderr


def test_validate_valid_fixture_exits_0(data_dir: Path) -> None:
    result = lcc("validate", str(FIXTURES / "welcome_text.json"), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"valid": True, "issues": []}


def test_replaying_many_problems_refuses_the_launch_and_leaves_it_draft(data_dir: Path) -> None:
    result = lcc("replay", str(FIXTURES / "many_problems.json"), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    [campaign] = json.loads(result.stdout)["campaigns"]
    assert campaign["state"] == "Draft" and campaign["expectations_met"] is True
    assert {issue["tab"] for issue in campaign["issues"]} == {t.value for t in Tab}
    assert campaign["requests"] == 0
