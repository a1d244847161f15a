"""Liquid personalisation: blank-profile defaults, real profiles, brace escaping, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.models import Profile
from core.personalize import (
    TemplateError,
    compile_template,
    escape_braces,
    is_personalised,
    referenced_attributes,
    render,
    render_with_liquid,
    template_errors,
    unknown_variables,
)

GREETING = "Hi {{ profile.first_name | default: 'there' }}!"


def aiko(**attributes: str | int | float | bool | None) -> Profile:
    return Profile(profile_id="c-001", attributes={"first_name": "Aiko", **attributes})


def r(text: str, profile: Profile | None, **kwargs: bool) -> str:
    return render(text, profile, campaign_id="cmp-1", campaign_name="spring_sale", **kwargs)


def test_the_blank_profile_applies_defaults() -> None:
    assert r(GREETING, None) == "Hi there!"
    assert r("{{ profile.missing }}|{{ profile.a.b.c }}|{{ nothing }}", None) == "||"
    assert r("{% if profile.vip %}VIP{% else %}friend{% endif %}", None) == "friend"


def test_a_chosen_profile_renders_its_values() -> None:
    assert r(GREETING, aiko()) == "Hi Aiko!"
    assert r("{{ profile.points }} pts", aiko(points=120)) == "120 pts"
    assert r("{% if profile.vip %}VIP{% endif %}", aiko(vip=True)) == "VIP"


def test_a_missing_null_or_empty_attribute_takes_the_default() -> None:
    assert r(GREETING, Profile(profile_id="x")) == "Hi there!"
    assert r(GREETING, aiko(first_name=None)) == "Hi there!"
    assert r(GREETING, aiko(first_name="")) == "Hi there!"


def test_campaign_fields_are_available() -> None:
    assert r("{{ campaign.name }} / {{ campaign.id }}", None) == "spring_sale / cmp-1"


def test_plain_text_comes_back_untouched() -> None:
    text = "Sale {laugh} at https://example.com/a } and { alone"
    assert r(text, aiko()) == text


def test_attribute_values_are_brace_escaped_for_textv2() -> None:
    assert r(GREETING, aiko(first_name="{bob}")) == "Hi {{bob}}!"
    assert r("{{ profile.x }}", aiko(x="}{")) == "}}{{"
    assert r("{{ campaign.name }}", None, braces=True) == "spring_sale"
    braced = render("{{ campaign.name }}", None, campaign_id="c", campaign_name="a{b}")
    assert braced == "a{{b}}"


def test_plain_text_fields_render_without_escaping() -> None:
    assert r(GREETING, aiko(first_name="{bob}"), braces=False) == "Hi {bob}!"


def test_the_templates_own_braces_are_not_escaped() -> None:
    # an emoji placeholder written by the operator stays a placeholder
    assert r("{{ profile.first_name }} {laugh}", aiko()) == "Aiko {laugh}"
    # a literal brace for LINE: Liquid's raw tag (or a string literal) produces textV2's escape
    assert r("{% raw %}{{{% endraw %}sale{% raw %}}}{% endraw %}", None) == "{{sale}}"
    assert r("{{ '{{' }}", None) == "{{"


@given(st.text(max_size=30))
def test_no_attribute_value_can_create_a_placeholder(value: str) -> None:
    rendered = r("{{ profile.v }}", aiko(v=value))
    assert rendered == escape_braces(value)
    # every brace in the output is part of an escaped pair
    assert rendered.replace("{{", "").replace("}}", "").count("{") == 0
    assert rendered.replace("{{", "").replace("}}", "").count("}") == 0


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("Hi {{ profile.first_name ", 1, 4),
        ("line one\nline two {% if profile.vip %}x", 2, 10),
        ("a\nb\n  {{ profile.x | nope }}", 3, 18),
        ("{% if a %}{% for x in y %}{% endfor %}\n  {% if b %}", 2, 3),
        ("{% include 'header' %}", 1, 4),
        ("{% render 'header' %}", 1, 4),
        ("{% bogus %}", 1, 4),
    ],
)
def test_syntax_errors_have_a_location(text: str, line: int, column: int) -> None:
    [error] = template_errors(text)
    assert (error.line, error.column) == (line, column), error.message
    with pytest.raises(TemplateError) as raised:
        r(text, None)
    assert raised.value.line == line
    assert str(raised.value).endswith(f"(line {line}, column {column})")


def test_include_and_render_are_refused_with_a_reason() -> None:
    [error] = template_errors("{% include 'x' %}")
    assert "no template files" in error.message


def test_a_valid_template_has_no_errors() -> None:
    assert template_errors(GREETING) == []
    assert template_errors("no liquid here {x}") == []


def test_an_error_that_depends_on_the_data_is_raised_at_render_time() -> None:
    text = "{{ profile.points | divided_by: profile.zero }}"
    assert template_errors(text) == []
    with pytest.raises(TemplateError) as raised:
        r(text, aiko(points=3, zero=0))
    assert raised.value.line == 1 and raised.value.column is not None


def test_templates_are_compiled_once() -> None:
    assert compile_template(GREETING) is compile_template(GREETING)


def test_a_cached_error_is_raised_fresh_each_time() -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(TemplateError) as raised:
            r("{{ oops", None)
        errors.append(raised.value)
    assert errors[0] is not errors[1]


def test_what_a_template_refers_to() -> None:
    text = (
        "{{ profile.first_name }}{% if profile.vip %}{{ profile['last name'] }}{% endif %}"
        "{% for c in profile.coupons %}{{ c.code }}{% endfor %}{{ campaign.name }}"
    )
    assert is_personalised(text)
    assert referenced_attributes(text) == {"first_name", "vip", "last name", "coupons"}
    assert not is_personalised("{{ campaign.name }} plain")
    assert not is_personalised("no liquid")
    assert referenced_attributes("no liquid") == set()
    assert is_personalised("{{ profile }}")


def test_unknown_variables_are_named() -> None:
    text = (
        "{{ first_name }} {{ campaign.nme }} {{ campaign.id }} {{ profile.x }}"
        "{% assign y = 1 %}{{ y }}"
    )
    assert unknown_variables(text) == {"first_name", "campaign.nme"}


# --- the fast path renders exactly what Liquid renders --------------------------------------

_outputs = st.sampled_from(
    [
        "{{ profile.k }}",
        "{{profile.k}}",
        "{{ profile.k | default: 'there' }}",
        '{{ profile.k | default: "x y" }}',
        "{{ profile.k|default:'' }}",
        "{{ profile.missing | default: 'd' }}",
        "{{ campaign.id }}",
        "{{ campaign.name | default: 'n' }}",
        "{{ campaign.other | default: 'o' }}",
    ]
)
_literals = st.text(alphabet="ab {}%|'\"春。\n", max_size=6)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="ab {}<>0 春", max_size=5),
)


@given(
    st.lists(st.tuples(_literals, _outputs), min_size=1, max_size=4),
    _literals,
    st.one_of(st.none(), _values),
    st.booleans(),
    st.booleans(),
)
def test_fast_path_matches_liquid(
    pieces: list[tuple[str, str]],
    tail: str,
    value: str | int | float | bool | None,
    has_profile: bool,
    braces: bool,
) -> None:
    text = "".join(literal + output for literal, output in pieces) + tail
    profile = Profile(profile_id="p", attributes={"k": value}) if has_profile else None

    def both(renderer: Callable[..., str]) -> str:
        return renderer(text, profile, campaign_id="cmp-{1}", campaign_name="", braces=braces)

    try:
        expected = both(render_with_liquid)
    except TemplateError:
        with pytest.raises(TemplateError):  # the fast path never takes what Liquid refuses
            both(render)
        return
    assert both(render) == expected


def test_the_fast_path_is_taken_for_the_usual_greeting() -> None:
    from core.personalize import _plan

    assert _plan(GREETING) is not None
    assert _plan("{% if profile.vip %}x{% endif %}") is None
    assert _plan("{{ profile.name | upcase }}") is None
