"""The UTM engine: the seed's merge rule, URL finding in free text, and the UTM tab's checks."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.models import UtmSettings
from core.utm import (
    _URL_CHARACTERS,
    UrlSpan,
    _scan_end,
    apply_utm,
    area_content,
    campaign_parameters,
    check_settings,
    encode_value,
    find_urls,
    link_content,
    rewrite_text,
    rewrite_text_links,
    with_content,
)

SEED_PARAMS = [
    ("utm_source", "line"),
    ("utm_medium", "social"),
    ("utm_campaign", "spring_sale_2026"),
]


def params_for(utm: UtmSettings, name: str = "spring_sale_2026") -> list[tuple[str, str]]:
    return campaign_parameters(utm, campaign_id="cmp-0a1b2c3d4e5f", campaign_name=name)


# --- the seed's example and the merge rule --------------------------------------------------


def test_seed_example_exactly() -> None:
    params = params_for(UtmSettings())
    assert params == SEED_PARAMS
    assert (
        apply_utm("https://example.com/product?ref=banner", params)
        == "https://example.com/product?ref=banner&utm_source=line&utm_medium=social"
        "&utm_campaign=spring_sale_2026"
    )


def test_defaults_follow_the_seeds() -> None:
    utm = UtmSettings()
    assert (utm.utm_source, utm.utm_medium, utm.utm_campaign) == ("line", "social", "")
    assert utm.per_area_content is False


def test_empty_utm_campaign_takes_the_campaign_name_and_a_template_the_id() -> None:
    assert dict(params_for(UtmSettings(), "autumn"))["utm_campaign"] == "autumn"
    by_id = params_for(UtmSettings(utm_campaign="{{campaign.id}}"))
    assert dict(by_id)["utm_campaign"] == "cmp-0a1b2c3d4e5f"
    mixed = params_for(UtmSettings(utm_campaign="{{ campaign.name }}-{{ campaign.id }}"))
    assert dict(mixed)["utm_campaign"] == "spring_sale_2026-cmp-0a1b2c3d4e5f"


def test_optional_values_and_extras_in_a_stable_order() -> None:
    utm = UtmSettings(
        utm_content="banner",
        utm_term="shoes",
        extra={"zeta": "1", "alpha": "2", "blank": "  "},
    )
    assert [key for key, _ in params_for(utm)] == [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "zeta",
        "alpha",
    ]
    none_set = params_for(UtmSettings(utm_content="", utm_term=None))
    assert [key for key, _ in none_set] == ["utm_source", "utm_medium", "utm_campaign"]


def test_values_are_trimmed_and_percent_encoded_utf8() -> None:
    params = params_for(UtmSettings(utm_campaign=" 春のセール 2026/4 "))
    assert dict(params)["utm_campaign"] == "春のセール 2026/4"
    url = apply_utm("https://example.com/", params)
    assert url.endswith("utm_campaign=%E6%98%A5%E3%81%AE%E3%82%BB%E3%83%BC%E3%83%AB%202026%2F4")
    assert dict(parse_qsl(urlsplit(url).query))["utm_campaign"] == "春のセール 2026/4"


def test_a_final_dot_in_a_value_is_encoded_so_a_sentence_end_cannot_eat_it() -> None:
    assert encode_value("v1.") == "v1%2E"
    assert encode_value("v1.2") == "v1.2"
    text = "Sale: https://example.com/a"
    once = rewrite_text(text, [("utm_campaign", "v1.")])
    assert once == "Sale: https://example.com/a?utm_campaign=v1%2E"
    assert rewrite_text(once + ".", [("utm_campaign", "v1.")]) == once + "."


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # the campaign's value wins, in place
        (
            "https://x.com/?utm_source=facebook&ref=1",
            "https://x.com/?utm_source=line&ref=1&utm_medium=social&utm_campaign=c",
        ),
        # a repeated campaign key keeps only its first place
        (
            "https://x.com/?utm_medium=a&k=v&utm_medium=b",
            "https://x.com/?utm_medium=social&k=v&utm_source=line&utm_campaign=c",
        ),
        # other repeats, keys without '=', empty values and existing encoding stay exactly
        (
            "https://x.com/p?a=1&a=2&flag&e=&b=%2F%zz+c",
            "https://x.com/p?a=1&a=2&flag&e=&b=%2F%zz+c&utm_source=line&utm_medium=social"
            "&utm_campaign=c",
        ),
        # the fragment stays last, even one that looks like a query
        (
            "https://x.com/app#/page?x=1",
            "https://x.com/app?utm_source=line&utm_medium=social&utm_campaign=c#/page?x=1",
        ),
        ("https://x.com", "https://x.com?utm_source=line&utm_medium=social&utm_campaign=c"),
        ("https://x.com/?", "https://x.com/?utm_source=line&utm_medium=social&utm_campaign=c"),
        (
            "https://x.com/?a=1&",
            "https://x.com/?a=1&utm_source=line&utm_medium=social&utm_campaign=c",
        ),
        # an encoded spelling of a campaign key is the same key; its spelling is kept
        (
            "https://x.com/?utm%5Fsource=fb",
            "https://x.com/?utm%5Fsource=line&utm_medium=social&utm_campaign=c",
        ),
        (
            "HTTP://X.COM/A",
            "HTTP://X.COM/A?utm_source=line&utm_medium=social&utm_campaign=c",
        ),
    ],
)
def test_merge_cases(url: str, expected: str) -> None:
    params = [("utm_source", "line"), ("utm_medium", "social"), ("utm_campaign", "c")]
    assert apply_utm(url, params) == expected
    assert apply_utm(expected, params) == expected


@pytest.mark.parametrize(
    "url",
    [
        "tel:+81312345678",
        "line://ti/p/@acme",
        "https:",
        "mailto:a@example.com",
        "ftp://example.com/a",
        "",
    ],
)
def test_only_http_and_https_are_touched(url: str) -> None:
    assert apply_utm(url, SEED_PARAMS) == url


def test_no_parameters_leaves_everything_alone() -> None:
    assert apply_utm("https://x.com/a", []) == "https://x.com/a"
    assert rewrite_text("see https://x.com/a", []) == "see https://x.com/a"


# --- finding URLs in free text: one example per rule (docs/utm.md) --------------------------


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        # 1. a URL starts at http:// or https:// (any case), not glued to a letter or digit
        ("visit https://example.com/a now", ["https://example.com/a"]),
        ("HTTPS://EXAMPLE.COM/A", ["HTTPS://EXAMPLE.COM/A"]),
        ("xhttps://example.com/a", []),
        ("詳細はhttps://example.com/a", ["https://example.com/a"]),
        # 2. it needs a host
        ("http:// and https://", []),
        ("https:///path", []),
        # 3. it ends at whitespace, at the end of the text, and at non-ASCII text
        ("https://example.com/a\nnext line", ["https://example.com/a"]),
        ("end: https://example.com/a", ["https://example.com/a"]),
        ("https://example.com/saleへ", ["https://example.com/sale"]),
        ("https://example.com/sale、次", ["https://example.com/sale"]),
        ("https://example.com/sale。", ["https://example.com/sale"]),
        ("（https://example.com/sale）", ["https://example.com/sale"]),
        ("「https://example.com/sale」", ["https://example.com/sale"]),
        ("https://example.com/sale！", ["https://example.com/sale"]),
        # 4. angle brackets and double quotes are never part of a URL
        ("<https://example.com/a>", ["https://example.com/a"]),
        ('"https://example.com/a"', ["https://example.com/a"]),
        # 5. trailing punctuation is not part of it
        ("Go to https://example.com/a.", ["https://example.com/a"]),
        ("https://example.com/a, then", ["https://example.com/a"]),
        (
            "https://example.com/a; https://example.com/b:",
            ["https://example.com/a", "https://example.com/b"],
        ),
        ("Really https://example.com/a?!", ["https://example.com/a"]),
        ("https://example.com/a*", ["https://example.com/a"]),
        # ... but the same characters inside a URL are
        ("https://example.com/a.b?x=1,2;3!", ["https://example.com/a.b?x=1,2;3"]),
        # 6. closing brackets and quotes count only when the URL opens them
        ("(https://example.com/a)", ["https://example.com/a"]),
        ("(https://x.com/a_(b))", ["https://x.com/a_(b)"]),
        ("(see https://x.com/a_(b)).", ["https://x.com/a_(b)"]),
        ("[https://example.com/a]", ["https://example.com/a"]),
        ("https://example.com/[1]", ["https://example.com/[1]"]),
        ("'https://example.com/a'", ["https://example.com/a"]),
        ("https://example.com/it's", ["https://example.com/it's"]),
        # 7. two URLs in a row
        ("https://a.com https://b.com", ["https://a.com", "https://b.com"]),
        ("https://a.com\nhttps://b.com", ["https://a.com", "https://b.com"]),
        ("https://a.com,https://b.com", ["https://a.com", "https://b.com"]),
        ("https://a.com/x.https://b.com", ["https://a.com/x", "https://b.com"]),
        ("https://a.com、https://b.com", ["https://a.com", "https://b.com"]),
        # ... but a URL inside a path or a query value belongs to the outer one
        (
            "https://web.archive.org/web/1/https://x.com/",
            ["https://web.archive.org/web/1/https://x.com/"],
        ),
        ("https://r.com/?to=https://x.com/", ["https://r.com/?to=https://x.com/"]),
        # 8. textV2 braces: a lone brace (a placeholder) ends it, an escaped pair is literal
        ("https://example.com/a{laugh}", ["https://example.com/a"]),
        ("https://example.com/?q={{a}}", ["https://example.com/?q={{a}}"]),
        # ports, userinfo, IPv6, percent-encoding, fragments
        ("https://u@example.com:8443/a%20b#top", ["https://u@example.com:8443/a%20b#top"]),
        ("http://[::1]:8080/", ["http://[::1]:8080/"]),
    ],
)
def test_find_urls_rules(text: str, urls: list[str]) -> None:
    spans = find_urls(text)
    assert [span.url for span in spans] == urls
    for span in spans:
        assert text[span.start : span.end] == span.url


def _scan_end_char_by_char(text: str, start: int) -> int:
    """The URL run's end as the rules say it, one character at a time (the original loop)."""
    index = text.index("//", start) + 2
    while index < len(text):
        char = text[index]
        if char in _URL_CHARACTERS:
            if (
                char in "hH"
                and re.match(r"(?i)https?://", text[index:])
                and (text[index - 1] in ".,;!)]'")
            ):
                break
            index += 1
        elif char in "{}" and text[index + 1 : index + 2] == char:
            index += 2
        else:
            break
    return index


_URL_PIECES = st.sampled_from(
    [*"hHsſ/.,;!)]'([{}aZ0-?=&#%~ 。\n", "https://", "http://", "HTTPS://", "{{", "}}"]
    + [f"{before}{scheme}" for before in ".,;!)]'(" for scheme in ("https://", "hTTp://")]
)


@given(st.lists(_URL_PIECES, max_size=40).map("".join))
def test_the_url_run_ends_where_the_rules_say(tail: str) -> None:
    text = "見て https://" + tail
    for match in re.finditer("//", text):
        assert _scan_end(text, match.start()) == _scan_end_char_by_char(text, match.start())


def test_find_urls_spans_are_positions() -> None:
    assert find_urls("a https://x.com/b c") == [UrlSpan(2, 17, "https://x.com/b")]


def test_rewrite_text_keeps_everything_around_the_urls() -> None:
    text = "春のセール（https://example.com/sale?ref=a）へ、https://example.com/b。"
    once = rewrite_text(text, [("utm_source", "line")])
    assert once == (
        "春のセール（https://example.com/sale?ref=a&utm_source=line）へ、"
        "https://example.com/b?utm_source=line。"
    )
    assert rewrite_text(once, [("utm_source", "line")]) == once


def test_rewrite_text_links_numbers_links_from_one() -> None:
    seen: list[int] = []

    def choose(ordinal: int) -> list[tuple[str, str]]:
        seen.append(ordinal)
        return [("utm_content", link_content(1, ordinal))]

    out = rewrite_text_links("https://a.com and https://b.com", choose)
    assert out == "https://a.com?utm_content=m1-l1 and https://b.com?utm_content=m1-l2"
    assert seen == [1, 2]


def test_per_area_content_helpers() -> None:
    assert area_content(2, 3) == "m2-a3"
    assert link_content(1, 2) == "m1-l2"
    params = with_content([*SEED_PARAMS, ("extra", "1")], "m2-a3")
    assert params == [*SEED_PARAMS, ("utm_content", "m2-a3"), ("extra", "1")]
    replaced = with_content([*SEED_PARAMS, ("utm_content", "banner")], "m1-a1")
    assert replaced == [*SEED_PARAMS, ("utm_content", "m1-a1")]


# --- the UTM tab's checks -------------------------------------------------------------------


def problems(utm: UtmSettings) -> set[tuple[str, str]]:
    found = check_settings(utm, campaign_id="cmp-1", campaign_name="spring")
    return {(problem.field, problem.code) for problem in found}


def test_defaults_have_no_problems() -> None:
    assert problems(UtmSettings()) == set()
    assert (
        problems(UtmSettings(utm_campaign="{{campaign.id}}", utm_content="{{ campaign.name }}"))
        == set()
    )


@pytest.mark.parametrize(
    ("utm", "expected"),
    [
        (UtmSettings(extra={"bad key": "1"}), ("utm.extra.bad key", "invalid_parameter_name")),
        (UtmSettings(extra={"": "1"}), ("utm.extra.", "invalid_parameter_name")),
        (UtmSettings(extra={"k" * 41: "1"}), (f"utm.extra.{'k' * 41}", "invalid_parameter_name")),
        (UtmSettings(extra={"ütm": "1"}), ("utm.extra.ütm", "invalid_parameter_name")),
        (UtmSettings(extra={"utm_source": "x"}), ("utm.extra.utm_source", "duplicate_parameter")),
        (UtmSettings(extra={"k": " "}), ("utm.extra.k", "empty_value")),
        (UtmSettings(utm_source=""), ("utm.utm_source", "required_empty")),
        (UtmSettings(utm_medium="  "), ("utm.utm_medium", "required_empty")),
        (
            UtmSettings(utm_medium="{{ campaign.id | remove: campaign.id }}"),
            ("utm.utm_medium", "required_empty"),
        ),
        (
            UtmSettings(utm_content="{% if false %}x{% endif %}"),
            ("utm.utm_content", "empty_after_template"),
        ),
        (UtmSettings(utm_campaign="{{ campaign.nme }}"), ("utm.utm_campaign", "unknown_variable")),
        (UtmSettings(utm_term="{{ profile.first_name }}"), ("utm.utm_term", "unknown_variable")),
        (UtmSettings(extra={"k": "{{ id }}"}), ("utm.extra.k", "unknown_variable")),
        (UtmSettings(utm_campaign="{{ campaign.id"), ("utm.utm_campaign", "template_syntax")),
        (UtmSettings(utm_term="{{ campaign.id | nope }}"), ("utm.utm_term", "template_syntax")),
    ],
)
def test_check_settings_reports(utm: UtmSettings, expected: tuple[str, str]) -> None:
    assert expected in problems(utm)


def test_check_settings_reports_every_problem_at_once() -> None:
    utm = UtmSettings(utm_source="", extra={"a b": "1", "c": ""}, utm_term="{{ x }}")
    assert problems(utm) == {
        ("utm.utm_source", "required_empty"),
        ("utm.extra.a b", "invalid_parameter_name"),
        ("utm.extra.c", "empty_value"),
        ("utm.utm_term", "unknown_variable"),
    }


def test_a_value_that_does_not_render_is_left_off_the_links() -> None:
    params = params_for(UtmSettings(utm_term="{{ campaign.id"))
    assert "utm_term" not in dict(params)


def test_a_duplicate_extra_never_overrides_the_standard_field() -> None:
    params = params_for(UtmSettings(extra={"utm_source": "other"}))
    assert dict(params)["utm_source"] == "line"
    assert [key for key, _ in params].count("utm_source") == 1


# --- properties -----------------------------------------------------------------------------

_KEY_CHARS = st.sampled_from([*list("abcxyz_"), "%5F", "%20", "+"])
_keys = st.one_of(
    st.sampled_from(["utm_source", "utm_medium", "utm_campaign", "utm_content", "ref", "a"]),
    st.lists(_KEY_CHARS, min_size=1, max_size=5).map("".join),
)
_VALUE_CHARS = st.sampled_from([*list("abc019-._~:/@!$'()*,;"), "%2F", "%E3%81%82", "+", "%zz"])
_values = st.lists(_VALUE_CHARS, max_size=6).map("".join)
_pieces = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", _keys, _values),
    _keys,  # a key without '='
)
_paths = st.lists(
    st.sampled_from(["a", "b.c", "%E6%98%A5", "x_(y)", "~u", "p;q", "index.html", ""]), max_size=4
).map(lambda parts: "/" + "/".join(parts) if parts else "")
_fragments = st.one_of(
    st.just(""), st.sampled_from(["#", "#top", "#/route?x=1&utm_source=z", "#a#b"])
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    host = draw(st.sampled_from(["example.com", "a.b.jp", "localhost:8080", "[::1]"]))
    path = draw(_paths)
    pieces = draw(st.lists(_pieces, max_size=6))
    query = draw(st.sampled_from(["", "?"])) if not pieces else "?" + "&".join(pieces)
    return f"{scheme}://{host}{path}{query}{draw(_fragments)}"


_param_values = st.text(min_size=1, max_size=12).filter(lambda v: v.strip() == v and v)


@st.composite
def campaign_params(draw: st.DrawFn) -> list[tuple[str, str]]:
    keys = draw(
        st.lists(
            st.sampled_from(
                [
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                    "utm_content",
                    "utm_term",
                    "ref",
                    "x.y",
                ]
            ),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    return [(key, draw(_param_values)) for key in keys]


def _query_pieces(url: str) -> list[str]:
    query = url.partition("#")[0].partition("?")[2]
    return query.split("&") if query else []


def _decoded_key(piece: str) -> str:
    return unquote(piece.split("=", 1)[0].replace("+", " "))


@given(urls(), campaign_params())
def test_applying_twice_equals_applying_once(url: str, params: list[tuple[str, str]]) -> None:
    once = apply_utm(url, params)
    assert apply_utm(once, params) == once


@given(urls(), campaign_params())
def test_no_other_parameter_is_lost_changed_or_reordered(
    url: str, params: list[tuple[str, str]]
) -> None:
    keys = {key for key, _ in params}
    before = [piece for piece in _query_pieces(url) if piece and _decoded_key(piece) not in keys]
    after = [
        piece
        for piece in _query_pieces(apply_utm(url, params))
        if piece and _decoded_key(piece) not in keys
    ]
    assert after == before


@given(urls(), campaign_params())
def test_the_fragment_survives_and_stays_last(url: str, params: list[tuple[str, str]]) -> None:
    result = apply_utm(url, params)
    if "#" in url:
        assert result.partition("#")[2] == url.partition("#")[2]
    else:
        assert "#" not in result
    assert result.partition("#")[0].partition("?")[0] == url.partition("#")[0].partition("?")[0]


@given(urls(), campaign_params())
def test_a_url_that_parses_still_parses_and_carries_the_campaign_values(
    url: str, params: list[tuple[str, str]]
) -> None:
    try:
        urlsplit(url)
    except ValueError:
        return
    result = apply_utm(url, params)
    parts = urlsplit(result)
    assert parts.scheme.lower() in ("http", "https")
    found: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        found.setdefault(key, []).append(value)
    for key, value in params:
        assert found[key] == [value]


_separators = st.sampled_from(
    [" ", "\n", "。", "、", "へ", "）", "」", ". ", ", ", "! ", "?\n", "<", ">"]
)


@given(st.lists(st.tuples(urls(), _separators), min_size=1, max_size=3), campaign_params())
def test_urls_in_text_are_found_whole_and_rewriting_is_idempotent(
    pairs: list[tuple[str, str]], params: list[tuple[str, str]]
) -> None:
    text = "見て " + "".join(url + sep for url, sep in pairs)
    found = [span.url for span in find_urls(text)]
    # a URL ending in a character the rules trim (a final '.' or ')') loses only that character
    assert len(found) == len(pairs)
    for (url, _sep), got in zip(pairs, found, strict=True):
        assert url.startswith(got)
        assert set(url[len(got) :]) <= set(".,;:!?*)']")
    once = rewrite_text(text, params)
    assert rewrite_text(once, params) == once
