"""LINE's message rules at their boundaries: the limit passes, one more fails."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.rules import (
    MAX_BODY_BYTES,
    MESSAGE_RULES,
    RULES,
    Tab,
    escape_braces,
    message_issues,
    parse_text_v2,
    push_body_bytes,
    utf16_length,
)
from tests.conftest import REPO

Json = dict[str, Any]
Messages = list[Any]


def text(body: str = "Hello", **extra: Any) -> Json:
    return {"type": "textV2", "text": body, **extra}


def area(x: int = 0, y: int = 0, width: int = 520, height: int = 520) -> Json:
    return {"x": x, "y": y, "width": width, "height": height}


def imagemap(**change: Any) -> Json:
    message: Json = {
        "type": "imagemap",
        "baseUrl": "https://example.com/img/spring",
        "altText": "Spring sale",
        "baseSize": {"width": 1040, "height": 1040},
        "actions": [{"type": "uri", "linkUri": "https://example.com/p", "area": area()}],
    }
    message.update(change)
    return message


def uri_action(link: str, **extra: Any) -> Json:
    return {"type": "uri", "linkUri": link, "area": area(), **extra}


def url(length: int, prefix: str = "https://example.com/") -> str:
    return prefix + "a" * (length - len(prefix))


def emoji(product: str = "5ac1bfd5040ab15980c9b435", emoji_id: str = "001") -> Json:
    return {"type": "emoji", "productId": product, "emojiId": emoji_id}


def with_emoji(count_used: int, defined: int | None = None) -> Json:
    """A text using `count_used` emoji placeholders over `defined` emoji substitutions."""
    defined = count_used if defined is None else defined
    keys = [f"e{i}" for i in range(defined)]
    used = "".join(f"{{{keys[i % defined]}}}" for i in range(count_used))
    return text(f"Hi {used}", substitution={key: emoji() for key in keys})


def video(**change: Any) -> Json:
    value: Json = {
        "originalContentUrl": "https://example.com/v.mp4",
        "previewImageUrl": "https://example.com/v.jpg",
        "area": area(0, 0, 1040, 585),
        "externalLink": {"linkUri": "https://example.com/more", "label": "See more"},
    }
    value.update(change)
    return value


def quick_reply(count: int, label: str = "Yes") -> Json:
    items = [
        {"type": "action", "action": {"type": "message", "label": label, "text": "yes"}}
        for _ in range(count)
    ]
    return {"items": items}


def sized_bundle(total: int) -> Messages:
    """A valid bundle whose push body is exactly `total` bytes (a huge emoji productId)."""
    message = text("{e}", substitution={"e": emoji(product="")})
    empty = push_body_bytes([message])
    message["substitution"]["e"]["productId"] = "p" * (total - empty)
    bundle = [message]
    assert push_body_bytes(bundle) == total
    return bundle


def found(messages: Messages) -> set[tuple[str, str]]:
    return {(issue.field, issue.code) for issue in message_issues(messages)}


# Each case: (name, bundle at the limit, bundle one past it, field, code).
Case = tuple[str, Callable[[], Messages], Callable[[], Messages], str, str]

BOUNDARIES: list[Case] = [
    ("messages min", lambda: [text()], lambda: [], "messages", "messages_required"),
    (
        "messages max",
        lambda: [text()] * 5,
        lambda: [text()] * 6,
        "messages",
        "too_many_messages",
    ),
    (
        "request body 2 MB",
        lambda: sized_bundle(MAX_BODY_BYTES),
        lambda: sized_bundle(MAX_BODY_BYTES + 1),
        "messages",
        "request_too_large",
    ),
    ("text min", lambda: [text("a")], lambda: [text("")], "messages[0].text", "text_empty"),
    (
        "text max",
        lambda: [text("a" * 5000)],
        lambda: [text("a" * 5001)],
        "messages[0].text",
        "text_too_long",
    ),
    (
        "text max in UTF-16 (an emoji counts 2)",
        lambda: [text("😀" * 2500)],
        lambda: [text("😀" * 2500 + "a")],
        "messages[0].text",
        "text_too_long",
    ),
    (
        "text max counts literal braces as written",
        lambda: [text("{{" * 2500)],
        lambda: [text("{{" * 2500 + "a")],
        "messages[0].text",
        "text_too_long",
    ),
    (
        "substitution key 20 characters",
        lambda: [text("{" + "k" * 20 + "}", substitution={"k" * 20: emoji()})],
        lambda: [text("{" + "k" * 21 + "}", substitution={"k" * 21: emoji()})],
        "messages[0].substitution." + "k" * 21,
        "substitution_key_invalid",
    ),
    (
        "substitution key characters",
        lambda: [text("{Az_09}", substitution={"Az_09": emoji()})],
        lambda: [text("{a-b}", substitution={"a-b": emoji()})],
        "messages[0].substitution.a-b",
        "substitution_key_invalid",
    ),
    (
        "substitutions 100",
        lambda: [with_emoji(20, defined=100)],
        lambda: [with_emoji(20, defined=101)],
        "messages[0].substitution",
        "too_many_substitutions",
    ),
    (
        "emoji 20",
        lambda: [with_emoji(20)],
        lambda: [with_emoji(21)],
        "messages[0].text",
        "too_many_emoji",
    ),
    (
        "emoji 20 uses of one substitution",
        lambda: [with_emoji(20, defined=1)],
        lambda: [with_emoji(21, defined=1)],
        "messages[0].text",
        "too_many_emoji",
    ),
    (
        "placeholder defined",
        lambda: [text("Hi {e}", substitution={"e": emoji()})],
        lambda: [text("Hi {e} {f}", substitution={"e": emoji()})],
        "messages[0].text",
        "placeholder_undefined",
    ),
    (
        "literal braces escaped",
        lambda: [text("Use {{code}} at checkout")],
        lambda: [text("Use {code} at checkout")],
        "messages[0].text",
        "placeholder_undefined",
    ),
    (
        "braces paired: open",
        lambda: [text("a {{ b")],
        lambda: [text("a { b")],
        "messages[0].text",
        "brace_unbalanced",
    ),
    (
        "braces paired: close",
        lambda: [text("a }} b")],
        lambda: [text("a } b")],
        "messages[0].text",
        "brace_unbalanced",
    ),
    (
        "placeholder is a key",
        lambda: [text("{{a b}}")],
        lambda: [text("{a b}")],
        "messages[0].text",
        "placeholder_invalid",
    ),
    (
        "emoji has productId",
        lambda: [text("{e}", substitution={"e": emoji()})],
        lambda: [text("{e}", substitution={"e": {"type": "emoji", "emojiId": "001"}})],
        "messages[0].substitution.e.productId",
        "field_required",
    ),
    (
        "emoji has emojiId",
        lambda: [text("{e}", substitution={"e": emoji()})],
        lambda: [text("{e}", substitution={"e": emoji(emoji_id="")})],
        "messages[0].substitution.e.emojiId",
        "field_required",
    ),
    (
        "no mentions in campaigns",
        lambda: [text("{e}", substitution={"e": emoji()})],
        lambda: [
            text("{e}", substitution={"e": {"type": "mention", "mentionee": {"type": "all"}}})
        ],
        "messages[0].substitution.e",
        "mention_not_allowed",
    ),
    (
        "baseUrl 2000",
        lambda: [imagemap(baseUrl=url(2000))],
        lambda: [imagemap(baseUrl=url(2001))],
        "messages[0].baseUrl",
        "url_too_long",
    ),
    (
        "baseUrl https",
        lambda: [imagemap(baseUrl="https://example.com/img")],
        lambda: [imagemap(baseUrl="http://example.com/img")],
        "messages[0].baseUrl",
        "url_not_https",
    ),
    (
        "baseUrl without extension",
        lambda: [imagemap(baseUrl="https://example.com/img/v1.0/rm001")],
        lambda: [imagemap(baseUrl="https://example.com/img/rm001/700.png")],
        "messages[0].baseUrl",
        "base_url_has_extension",
    ),
    (
        "baseUrl .jpg",
        lambda: [imagemap(baseUrl="https://example.com/img/spring_jpg")],
        lambda: [imagemap(baseUrl="https://example.com/img/spring.jpg")],
        "messages[0].baseUrl",
        "base_url_has_extension",
    ),
    (
        "baseUrl percent-encoded",
        lambda: [imagemap(baseUrl="https://example.com/img/%E6%98%A5")],
        lambda: [imagemap(baseUrl="https://example.com/img/春")],
        "messages[0].baseUrl",
        "url_not_encoded",
    ),
    (
        "baseUrl has a host",
        lambda: [imagemap(baseUrl="https://e.co/img")],
        lambda: [imagemap(baseUrl="https:///img")],
        "messages[0].baseUrl",
        "url_invalid",
    ),
    (
        "altText min",
        lambda: [imagemap(altText="a")],
        lambda: [imagemap(altText="")],
        "messages[0].altText",
        "alt_text_empty",
    ),
    (
        "altText max",
        lambda: [imagemap(altText="a" * 1500)],
        lambda: [imagemap(altText="a" * 1501)],
        "messages[0].altText",
        "alt_text_too_long",
    ),
    (
        "baseSize.width 1040",
        lambda: [imagemap(baseSize={"width": 1040, "height": 1040})],
        lambda: [imagemap(baseSize={"width": 1041, "height": 1040})],
        "messages[0].baseSize.width",
        "base_width_not_1040",
    ),
    (
        "baseSize.height positive",
        lambda: [imagemap(baseSize={"width": 1040, "height": 1}, actions=[uri_action_at(1)])],
        lambda: [imagemap(baseSize={"width": 1040, "height": 0}, actions=[uri_action_at(1)])],
        "messages[0].baseSize.height",
        "base_height_not_positive",
    ),
    (
        "actions min",
        lambda: [imagemap()],
        lambda: [imagemap(actions=[])],
        "messages[0].actions",
        "actions_required",
    ),
    (
        "actions max",
        lambda: [imagemap(actions=[uri_action("https://e.co/")] * 50)],
        lambda: [imagemap(actions=[uri_action("https://e.co/")] * 51)],
        "messages[0].actions",
        "too_many_actions",
    ),
    (
        "action type",
        lambda: [imagemap(actions=[uri_action("https://e.co/")])],
        lambda: [imagemap(actions=[{"type": "postback", "data": "x", "area": area()}])],
        "messages[0].actions[0].type",
        "unsupported_action_type",
    ),
    (
        "linkUri 1000",
        lambda: [imagemap(actions=[uri_action(url(1000))])],
        lambda: [imagemap(actions=[uri_action(url(1001))])],
        "messages[0].actions[0].linkUri",
        "uri_too_long",
    ),
    (
        "linkUri not empty",
        lambda: [imagemap(actions=[uri_action("tel:+81312345678")])],
        lambda: [imagemap(actions=[uri_action("")])],
        "messages[0].actions[0].linkUri",
        "uri_empty",
    ),
    (
        "linkUri line scheme",
        lambda: [imagemap(actions=[uri_action("line://ti/p/@acme")])],
        lambda: [imagemap(actions=[uri_action("mailto:sales@example.com")])],
        "messages[0].actions[0].linkUri",
        "uri_scheme_not_allowed",
    ),
    (
        "linkUri http scheme",
        lambda: [imagemap(actions=[uri_action("http://example.com/")])],
        lambda: [imagemap(actions=[uri_action("javascript:alert(1)")])],
        "messages[0].actions[0].linkUri",
        "uri_scheme_not_allowed",
    ),
    (
        "linkUri percent escapes",
        lambda: [imagemap(actions=[uri_action("https://e.co/?q=100%25")])],
        lambda: [imagemap(actions=[uri_action("https://e.co/?q=100%")])],
        "messages[0].actions[0].linkUri",
        "url_not_encoded",
    ),
    (
        "linkUri without spaces",
        lambda: [imagemap(actions=[uri_action("https://e.co/a%20b")])],
        lambda: [imagemap(actions=[uri_action("https://e.co/a b")])],
        "messages[0].actions[0].linkUri",
        "url_not_encoded",
    ),
    (
        "message action text 400",
        lambda: [imagemap(actions=[message_action("a" * 400)])],
        lambda: [imagemap(actions=[message_action("a" * 401)])],
        "messages[0].actions[0].text",
        "action_text_too_long",
    ),
    (
        "message action text min",
        lambda: [imagemap(actions=[message_action("a")])],
        lambda: [imagemap(actions=[message_action("")])],
        "messages[0].actions[0].text",
        "action_text_empty",
    ),
    (
        "clipboard 1000",
        lambda: [imagemap(actions=[clipboard_action("a" * 1000)])],
        lambda: [imagemap(actions=[clipboard_action("a" * 1001)])],
        "messages[0].actions[0].clipboardText",
        "clipboard_text_too_long",
    ),
    (
        "clipboard min",
        lambda: [imagemap(actions=[clipboard_action("a")])],
        lambda: [imagemap(actions=[clipboard_action("")])],
        "messages[0].actions[0].clipboardText",
        "clipboard_text_empty",
    ),
    (
        "imagemap label 100",
        lambda: [imagemap(actions=[uri_action("https://e.co/", label="a" * 100)])],
        lambda: [imagemap(actions=[uri_action("https://e.co/", label="a" * 101)])],
        "messages[0].actions[0].label",
        "label_too_long",
    ),
    (
        "area x 0",
        lambda: [imagemap(actions=[area_action(area(x=0))])],
        lambda: [imagemap(actions=[area_action(area(x=-1))])],
        "messages[0].actions[0].area.x",
        "area_negative",
    ),
    (
        "area y 0",
        lambda: [imagemap(actions=[area_action(area(y=0))])],
        lambda: [imagemap(actions=[area_action(area(y=-1))])],
        "messages[0].actions[0].area.y",
        "area_negative",
    ),
    (
        "area width 1",
        lambda: [imagemap(actions=[area_action(area(width=1))])],
        lambda: [imagemap(actions=[area_action(area(width=0))])],
        "messages[0].actions[0].area.width",
        "area_not_positive",
    ),
    (
        "area height 1",
        lambda: [imagemap(actions=[area_action(area(height=1))])],
        lambda: [imagemap(actions=[area_action(area(height=0))])],
        "messages[0].actions[0].area.height",
        "area_not_positive",
    ),
    (
        "area inside the width",
        lambda: [imagemap(actions=[area_action(area(x=520, width=520))])],
        lambda: [imagemap(actions=[area_action(area(x=520, width=521))])],
        "messages[0].actions[0].area.width",
        "area_outside_image",
    ),
    (
        "area inside the height",
        lambda: [
            imagemap(
                baseSize={"width": 1040, "height": 700},
                actions=[area_action(area(y=600, height=100))],
            )
        ],
        lambda: [
            imagemap(
                baseSize={"width": 1040, "height": 700},
                actions=[area_action(area(y=600, height=101))],
            )
        ],
        "messages[0].actions[0].area.height",
        "area_outside_image",
    ),
    (
        "video URL 2000",
        lambda: [imagemap(video=video(originalContentUrl=url(2000)))],
        lambda: [imagemap(video=video(originalContentUrl=url(2001)))],
        "messages[0].video.originalContentUrl",
        "url_too_long",
    ),
    (
        "video preview https",
        lambda: [imagemap(video=video(previewImageUrl="https://e.co/p.jpg"))],
        lambda: [imagemap(video=video(previewImageUrl="http://e.co/p.jpg"))],
        "messages[0].video.previewImageUrl",
        "url_not_https",
    ),
    (
        "video area inside",
        lambda: [imagemap(video=video(area=area(0, 0, 1040, 1040)))],
        lambda: [imagemap(video=video(area=area(1, 0, 1040, 1040)))],
        "messages[0].video.area.width",
        "area_outside_image",
    ),
    (
        "video link 1000",
        lambda: [imagemap(video=video(externalLink={"linkUri": url(1000), "label": "More"}))],
        lambda: [imagemap(video=video(externalLink={"linkUri": url(1001), "label": "More"}))],
        "messages[0].video.externalLink.linkUri",
        "uri_too_long",
    ),
    (
        "video link scheme",
        lambda: [
            imagemap(video=video(externalLink={"linkUri": "tel:0312345678", "label": "Call"}))
        ],
        lambda: [imagemap(video=video(externalLink={"linkUri": "ftp://e.co/", "label": "Get"}))],
        "messages[0].video.externalLink.linkUri",
        "uri_scheme_not_allowed",
    ),
    (
        "video label 30",
        lambda: [
            imagemap(video=video(externalLink={"linkUri": "https://e.co", "label": "a" * 30}))
        ],
        lambda: [
            imagemap(video=video(externalLink={"linkUri": "https://e.co", "label": "a" * 31}))
        ],
        "messages[0].video.externalLink.label",
        "label_too_long",
    ),
    (
        "video label min",
        lambda: [imagemap(video=video(externalLink={"linkUri": "https://e.co", "label": "a"}))],
        lambda: [imagemap(video=video(externalLink={"linkUri": "https://e.co", "label": ""}))],
        "messages[0].video.externalLink.label",
        "label_empty",
    ),
    (
        "quick reply 13 items",
        lambda: [text(quickReply=quick_reply(13))],
        lambda: [text(quickReply=quick_reply(14))],
        "messages[0].quickReply.items",
        "quick_reply_items_out_of_range",
    ),
    (
        "quick reply label 20",
        lambda: [text(quickReply=quick_reply(1, label="a" * 20))],
        lambda: [text(quickReply=quick_reply(1, label="a" * 21))],
        "messages[0].quickReply.items[0].action.label",
        "label_too_long",
    ),
    (
        "sender name 20",
        lambda: [text(sender={"name": "a" * 20})],
        lambda: [text(sender={"name": "a" * 21})],
        "messages[0].sender.name",
        "sender_name_too_long",
    ),
    (
        "sender name word LINE",
        lambda: [text(sender={"name": "Online Shop"})],
        lambda: [text(sender={"name": "Acme LINE Shop"})],
        "messages[0].sender.name",
        "sender_name_reserved",
    ),
    (
        "sender icon 2000",
        lambda: [imagemap(sender={"iconUrl": url(2000)})],
        lambda: [imagemap(sender={"iconUrl": url(2001)})],
        "messages[0].sender.iconUrl",
        "url_too_long",
    ),
    (
        "sender icon https",
        lambda: [imagemap(sender={"iconUrl": "https://e.co/i.png"})],
        lambda: [imagemap(sender={"iconUrl": "http://e.co/i.png"})],
        "messages[0].sender.iconUrl",
        "url_not_https",
    ),
    (
        "message types",
        lambda: [text(), imagemap()],
        lambda: [text(), {"type": "flex", "altText": "x", "contents": {}}],
        "messages[1].type",
        "unsupported_message_type",
    ),
    (
        "known properties",
        lambda: [text()],
        lambda: [text(txt="typo")],
        "messages[0].txt",
        "unknown_field",
    ),
]


def uri_action_at(height: int) -> Json:
    return {"type": "uri", "linkUri": "https://e.co/", "area": area(0, 0, 1040, height)}


def message_action(body: str) -> Json:
    return {"type": "message", "text": body, "area": area()}


def clipboard_action(body: str) -> Json:
    return {"type": "clipboard", "clipboardText": body, "area": area()}


def area_action(where: Json) -> Json:
    return {"type": "uri", "linkUri": "https://e.co/", "area": where}


@pytest.mark.parametrize(
    ("at_limit", "past_limit", "field", "code"),
    [case[1:] for case in BOUNDARIES],
    ids=[case[0] for case in BOUNDARIES],
)
def test_boundary(
    at_limit: Callable[[], Messages], past_limit: Callable[[], Messages], field: str, code: str
) -> None:
    assert message_issues(at_limit()) == []
    assert (field, code) in found(past_limit())


def test_every_registered_rule_has_a_boundary_or_shape_test() -> None:
    """A rule added without a test shows up here."""
    tested = {case[4] for case in BOUNDARIES}
    shape_only = {
        "messages_not_array",
        "message_not_object",
        "field_type",
        "substitution_type_unsupported",
        "quick_reply_action_unsupported",
        "postback_data_too_long",
        "sender_name_empty",
    }
    assert set(MESSAGE_RULES) - tested - shape_only == set()


def test_messages_state_the_number_found_and_lines_limit() -> None:
    issues = message_issues([imagemap(), imagemap(actions=[uri_action(url(1204))])])
    [issue] = issues
    assert issue.tab is Tab.CONTENT
    assert issue.field == "messages[1].actions[0].linkUri"
    assert issue.message == "linkUri is 1204 characters; LINE allows 1000"
    [long_text] = message_issues([text("😀" * 2506)])
    assert long_text.message == "text is 5012 characters; LINE allows 5000"


def test_every_problem_is_reported_at_once() -> None:
    bundle = [
        text("Hi {name} { there", substitution={"m": {"type": "mention", "mentionee": {}}}),
        imagemap(
            baseUrl="http://example.com/img/spring.png",
            altText="",
            baseSize={"width": 1000, "height": 500},
            actions=[uri_action(url(1001)), {"type": "message", "text": "", "area": area(-1)}],
        ),
        {"type": "sticker", "packageId": "1", "stickerId": "1"},
    ]
    assert found(bundle) >= {
        ("messages[0].text", "placeholder_undefined"),
        ("messages[0].text", "brace_unbalanced"),
        ("messages[0].substitution.m", "mention_not_allowed"),
        ("messages[1].baseUrl", "url_not_https"),
        ("messages[1].baseUrl", "base_url_has_extension"),
        ("messages[1].altText", "alt_text_empty"),
        ("messages[1].baseSize.width", "base_width_not_1040"),
        ("messages[1].actions[0].linkUri", "uri_too_long"),
        ("messages[1].actions[1].text", "action_text_empty"),
        ("messages[1].actions[1].area.x", "area_negative"),
        ("messages[2].type", "unsupported_message_type"),
    }


def test_other_message_types_name_the_type_and_what_this_channel_sends() -> None:
    [issue] = message_issues([{"type": "text", "text": "hi"}])
    assert "'text'" in issue.message and "textV2 and imagemap" in issue.message
    [flex] = message_issues([{"type": "flex", "altText": "x", "contents": {}}])
    assert "'flex'" in flex.message


def test_mention_message_says_why() -> None:
    [issue] = message_issues(
        [text("{u}", substitution={"u": {"type": "mention", "mentionee": {"type": "all"}}})]
    )
    assert "group chats" in issue.message


def test_shapes_that_are_not_json_objects() -> None:
    assert found({"type": "textV2"}) == {("messages", "messages_not_array")}  # type: ignore[arg-type]
    assert found(["hi"]) == {("messages[0]", "message_not_object")}
    assert ("messages[0].text", "field_type") in found([{"type": "textV2", "text": 5}])
    assert ("messages[0].text", "field_required") in found([{"type": "textV2"}])
    assert ("messages[0].type", "field_required") in found([{"text": "hi"}])
    assert ("messages[0].baseSize.width", "field_type") in found(
        [imagemap(baseSize={"width": "1040", "height": 1040})]
    )
    assert ("messages[0].actions[0].area.x", "field_type") in found(
        [imagemap(actions=[area_action({"x": True, "y": 0, "width": 1, "height": 1})])]
    )
    assert ("messages[0].substitution.e.type", "substitution_type_unsupported") in found(
        [text("{e}", substitution={"e": {"type": "sticker"}})]
    )
    assert ("messages[0].substitution.e", "field_type") in found(
        [text("{e}", substitution={"e": "smile"})]
    )


def test_quick_reply_actions() -> None:
    def item(action: Json) -> Json:
        return {"type": "action", "action": action}

    ok = [
        item({"type": "uri", "label": "Open", "uri": "https://e.co/"}),
        item({"type": "postback", "label": "Yes", "data": "a" * 300}),
        item({"type": "camera", "label": "Camera"}),
        item({"type": "clipboard", "label": "Copy", "clipboardText": "CODE"}),
    ]
    assert message_issues([text(quickReply={"items": ok})]) == []
    bad = [
        item({"type": "uri", "label": "Open", "uri": url(1001)}),
        item({"type": "postback", "label": "Yes", "data": "a" * 301}),
        item({"type": "richmenuswitch", "label": "Menu"}),
        item({"type": "message", "label": "Say", "text": "a" * 301}),
    ]
    assert found([text(quickReply={"items": bad})]) >= {
        ("messages[0].quickReply.items[0].action.uri", "uri_too_long"),
        ("messages[0].quickReply.items[1].action.data", "postback_data_too_long"),
        ("messages[0].quickReply.items[2].action.type", "quick_reply_action_unsupported"),
        ("messages[0].quickReply.items[3].action.text", "action_text_too_long"),
    }
    assert ("messages[0].quickReply.items", "quick_reply_items_out_of_range") in found(
        [text(quickReply={"items": []})]
    )


def test_sender_name_empty() -> None:
    assert ("messages[0].sender.name", "sender_name_empty") in found([text(sender={"name": ""})])


def test_input_is_not_changed() -> None:
    bundle = [imagemap(actions=[uri_action(url(1001))]), text("{x}")]
    before = copy.deepcopy(bundle)
    message_issues(bundle)
    assert bundle == before


def test_body_size_counts_a_full_push_request() -> None:
    messages = [text("a")]
    assert push_body_bytes(messages) > len(b'{"messages":[{"type":"textV2","text":"a"}]}')


def test_docs_list_every_rule_code() -> None:
    doc = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z0-9_]+)`", doc))
    assert set(RULES) - documented == set()


# --- properties ------------------------------------------------------------------------------


@given(st.text(st.characters(exclude_categories=())))  # lone surrogates too
def test_utf16_length_is_the_number_of_utf16_code_units(value: str) -> None:
    assert utf16_length(value) == len(value) + sum(ord(char) > 0xFFFF for char in value)


@given(st.text(), st.text())
def test_utf16_length_adds_up(left: str, right: str) -> None:
    assert utf16_length(left + right) == utf16_length(left) + utf16_length(right)


@given(st.text(alphabet=st.characters(min_codepoint=0x10000, max_codepoint=0x1FFFF), max_size=50))
def test_characters_outside_the_bmp_count_two(value: str) -> None:
    assert utf16_length(value) == 2 * len(value)


KEYS = ("name", "e1", "Laugh_2", "x" * 20)
PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
SEGMENT = st.one_of(PLAIN, st.just("{{"), st.just("}}"), st.sampled_from(KEYS).map("{{{}}}".format))


@given(st.lists(SEGMENT, max_size=30))
def test_escaped_braces_and_defined_placeholders_pass(segments: list[str]) -> None:
    body = "x" + "".join(segments)
    message = text(body, substitution={key: emoji() for key in KEYS})
    codes = {issue.code for issue in message_issues([message])}
    assert codes <= {"too_many_emoji"}


@given(st.text(max_size=200))
def test_escaped_text_has_no_placeholders_and_nothing_unpaired(value: str) -> None:
    parsed = parse_text_v2(escape_braces(value))
    assert parsed.placeholders == () and parsed.unpaired == ()


@given(st.lists(SEGMENT, max_size=30), st.sampled_from("{}"), st.integers(min_value=0))
def test_a_single_extra_brace_always_fails(segments: list[str], brace: str, position: int) -> None:
    balanced = "".join(segments)
    cut = position % (len(balanced) + 1)
    body = balanced[:cut] + brace + balanced[cut:]
    message = text(body, substitution={key: emoji() for key in KEYS})
    assert "brace_unbalanced" in {issue.code for issue in message_issues([message])}


@given(st.text(alphabet="ab{}", max_size=40))
def test_an_odd_number_of_braces_is_always_unbalanced(body: str) -> None:
    parsed = parse_text_v2(body)
    braces = body.count("{") + body.count("}")
    consumed = 2 * len(parsed.placeholders) + len(parsed.unpaired)
    assert consumed <= braces
    if braces % 2:
        assert parsed.unpaired


def test_every_rule_says_what_it_demands_and_where_the_number_comes_from() -> None:
    for rule in RULES.values():
        assert rule.source and rule.demands, rule.code
