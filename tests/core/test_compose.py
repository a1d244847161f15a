"""Composition per message type: Liquid first, then UTM, as LINE JSON for one recipient."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.compose import (
    UNASSIGNED_CAMPAIGN_ID,
    Composer,
    LinkRef,
    campaign_links,
    is_personalised,
    render_bundle,
    template_fields,
)
from core.fixture import load_fixture
from core.models import Campaign, CampaignSpec, Profile
from core.personalize import TemplateError
from tests.conftest import FIXTURES

UTM = "utm_source=line&utm_medium=social&utm_campaign=spring_sale_2026"
AREA = {"x": 0, "y": 0, "width": 1040, "height": 1040}


def spec(*messages: dict[str, Any], **utm: Any) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {"name": "spring_sale_2026", "messages": list(messages), "utm": utm}
    )


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"type": "textV2", "text": body, **extra}


def imagemap(*actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "imagemap",
        "baseUrl": "https://example.com/img/spring",
        "altText": "Spring sale",
        "baseSize": {"width": 1040, "height": 1040},
        "actions": list(actions),
        **extra,
    }


AIKO = Profile(profile_id="c-001", attributes={"first_name": "Aiko", "coupon": "AIKO-10"})


def test_the_seed_example_through_an_imagemap_tap_area() -> None:
    campaign = spec(
        imagemap({"type": "uri", "linkUri": "https://example.com/product?ref=banner", "area": AREA})
    )
    [message] = render_bundle(campaign, None)
    assert message["actions"][0]["linkUri"] == f"https://example.com/product?ref=banner&{UTM}"


def test_text_liquid_then_utm() -> None:
    campaign = spec(
        text("Hi {{ profile.first_name | default: 'there' }}! https://example.com/sale")
    )
    assert render_bundle(campaign, None)[0]["text"] == f"Hi there! https://example.com/sale?{UTM}"
    assert render_bundle(campaign, AIKO)[0]["text"] == f"Hi Aiko! https://example.com/sale?{UTM}"


def test_a_url_built_by_liquid_gets_utm() -> None:
    campaign = spec(
        text("Your page: https://example.com/u/{{ profile.profile_code | default: 'guest' }}?x=1")
    )
    profile = Profile(profile_id="p", attributes={"profile_code": "k9"})
    assert (
        render_bundle(campaign, profile)[0]["text"]
        == f"Your page: https://example.com/u/k9?x=1&{UTM}"
    )
    coupon = spec(text("{{ profile.url }}"))
    link = Profile(profile_id="p", attributes={"url": "https://example.com/c"})
    assert render_bundle(coupon, link)[0]["text"] == f"https://example.com/c?{UTM}"


def test_text_keeps_substitution_and_brace_escapes_values() -> None:
    substitution = {
        "laugh": {"type": "emoji", "productId": "5a8555cfe6256cc92ea23c2a", "emojiId": "002"}
    }
    campaign = spec(text("{{ profile.first_name }} {laugh}", substitution=substitution))
    profile = Profile(profile_id="p", attributes={"first_name": "{bob}"})
    [message] = render_bundle(campaign, profile)
    assert message == {"type": "textV2", "text": "{{bob}} {laugh}", "substitution": substitution}


def test_imagemap_fields_that_are_templated_and_those_that_are_not() -> None:
    campaign = spec(
        imagemap(
            {
                "type": "uri",
                "linkUri": "https://example.com/p/{{ profile.first_name }}",
                "label": "For {{ profile.first_name }}",
                "area": AREA,
            },
            {"type": "message", "text": "I want {{ profile.coupon }}", "area": AREA},
            {
                "type": "clipboard",
                "clipboardText": "{{ profile.coupon | default: 'SPRING' }}",
                "area": AREA,
            },
            {"type": "uri", "linkUri": "tel:+81312345678", "area": AREA},
            {"type": "uri", "linkUri": "line://ti/p/@acme", "area": AREA},
            altText="Sale for {{ profile.first_name | default: 'you' }} {x}",
            baseUrl="https://example.com/img/{{ profile.first_name }}",
        )
    )
    [blank] = render_bundle(campaign, None)
    [message] = render_bundle(campaign, AIKO)
    assert message["altText"] == "Sale for Aiko {x}"
    assert blank["altText"] == "Sale for you {x}"
    assert message["baseUrl"] == "https://example.com/img/{{ profile.first_name }}"
    actions = message["actions"]
    assert actions[0]["linkUri"] == f"https://example.com/p/Aiko?{UTM}"
    assert actions[0]["label"] == "For Aiko"
    assert actions[1]["text"] == "I want AIKO-10"
    assert actions[2]["clipboardText"] == "AIKO-10"
    assert blank["actions"][2]["clipboardText"] == "SPRING"
    assert actions[3]["linkUri"] == "tel:+81312345678"
    assert actions[4]["linkUri"] == "line://ti/p/@acme"
    assert "utm_source" not in actions[1]["text"]


def test_a_message_action_holding_a_url_is_not_given_utm() -> None:
    campaign = spec(imagemap({"type": "message", "text": "https://example.com/a", "area": AREA}))
    assert render_bundle(campaign, None)[0]["actions"][0]["text"] == "https://example.com/a"


def test_video_external_link_gets_utm_but_the_video_urls_do_not() -> None:
    video = {
        "originalContentUrl": "https://example.com/v.mp4",
        "previewImageUrl": "https://example.com/v.jpg",
        "area": AREA,
        "externalLink": {"linkUri": "https://example.com/more", "label": "More"},
    }
    [message] = render_bundle(spec(imagemap(video=video)), None)
    assert message["video"]["externalLink"]["linkUri"] == f"https://example.com/more?{UTM}"
    assert message["video"]["originalContentUrl"] == "https://example.com/v.mp4"
    assert message["video"]["previewImageUrl"] == "https://example.com/v.jpg"


def test_per_area_content_numbers_messages_areas_and_links() -> None:
    campaign = spec(
        text("https://example.com/a https://example.com/b"),
        imagemap(
            {"type": "message", "text": "hi", "area": AREA},
            {"type": "uri", "linkUri": "https://example.com/c", "area": AREA},
            video={
                "originalContentUrl": "https://example.com/v.mp4",
                "previewImageUrl": "https://example.com/v.jpg",
                "area": AREA,
                "externalLink": {"linkUri": "https://example.com/v", "label": "More"},
            },
        ),
        per_area_content=True,
        utm_content="ignored-when-per-area",
    )
    links = [link.url for link in campaign_links(campaign)]
    assert links == [
        f"https://example.com/a?{UTM}&utm_content=m1-l1",
        f"https://example.com/b?{UTM}&utm_content=m1-l2",
        f"https://example.com/c?{UTM}&utm_content=m2-a2",
        f"https://example.com/v?{UTM}&utm_content=m2-video",
    ]


def test_campaign_id_templates_use_the_stored_id_or_the_given_one() -> None:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    stored = Campaign(
        **spec(text("https://example.com/"), utm_campaign="{{campaign.id}}").model_dump(),
        id="cmp-0a1b2c3d4e5f",
        workspace="w",
        created_at=now,
        updated_at=now,
    )
    assert render_bundle(stored, None)[0]["text"].endswith("utm_campaign=cmp-0a1b2c3d4e5f")
    given = render_bundle(stored, None, campaign_id="cmp-ffffffffffff")
    assert given[0]["text"].endswith("utm_campaign=cmp-ffffffffffff")
    draft = spec(text("https://example.com/"), utm_campaign="{{campaign.id}}")
    assert render_bundle(draft, None)[0]["text"].endswith(f"utm_campaign={UNASSIGNED_CAMPAIGN_ID}")


def test_unsupported_messages_pass_through_for_validation_to_refuse() -> None:
    sticker = {"type": "sticker", "packageId": "1", "stickerId": "1"}
    assert render_bundle(spec(sticker), None) == [sticker]


def test_welcome_fixture() -> None:
    fixture = load_fixture(FIXTURES / "welcome_text.json").fixture
    [message] = render_bundle(fixture.campaign, None)
    assert message["text"].endswith(
        "https://example.com/spring?utm_source=line&utm_medium=social&utm_campaign=welcome_friends"
    )


def test_is_personalised_looks_at_every_templated_field() -> None:
    assert not is_personalised(spec(text("Hello {{ campaign.name }} https://example.com")))
    assert is_personalised(spec(text("Hello {{ profile.first_name }}")))
    assert is_personalised(spec(imagemap(altText="For {{ profile.first_name }}")))
    clip = {"type": "clipboard", "clipboardText": "{{ profile.coupon }}", "area": AREA}
    assert is_personalised(spec(imagemap(clip)))
    assert not is_personalised(spec(imagemap(baseUrl="https://x.com/{{ profile.a }}")))


def test_template_fields_name_their_paths() -> None:
    campaign = spec(
        text("a"),
        imagemap({"type": "uri", "linkUri": "https://x.com", "label": "l", "area": AREA}),
    )
    assert [field.path for field in template_fields(campaign)] == [
        "messages[0].text",
        "messages[1].altText",
        "messages[1].actions[0].linkUri",
        "messages[1].actions[0].label",
    ]


def test_a_template_error_names_its_field() -> None:
    campaign = spec(text("fine"), imagemap(altText="Sale {{ profile.x"))
    with pytest.raises(TemplateError) as raised:
        render_bundle(campaign, None)
    assert raised.value.field == "messages[1].altText"
    assert raised.value.line == 1 and raised.value.column == 6


def test_campaign_links_records_where_each_link_is() -> None:
    campaign = spec(
        text("Hi {{ profile.first_name }}: https://example.com/a?ref=x and tel:0312345678"),
        imagemap({"type": "uri", "linkUri": "tel:0312345678", "area": AREA}),
    )
    assert campaign_links(campaign, AIKO) == [
        LinkRef(0, "text", "https://example.com/a?ref=x", f"https://example.com/a?ref=x&{UTM}"),
        LinkRef(1, "actions[0].linkUri", "tel:0312345678", "tel:0312345678"),
    ]


def test_composer_hands_out_copies_for_shared_content() -> None:
    composer = Composer(spec(text("Same for all https://example.com")))
    assert not composer.personalised
    first = composer.bundle(AIKO)
    first[0]["text"] = "changed"
    assert composer.bundle(None)[0]["text"] == f"Same for all https://example.com?{UTM}"


def test_composer_renders_each_profile() -> None:
    composer = Composer(spec(text("Hi {{ profile.first_name | default: 'there' }}")))
    assert composer.personalised
    assert composer.bundle(AIKO)[0]["text"] == "Hi Aiko"
    assert composer.bundle(None)[0]["text"] == "Hi there"


def test_composition_does_not_change_the_campaign() -> None:
    campaign = spec(text("Hi https://example.com"))
    before = campaign.model_dump()
    render_bundle(campaign, AIKO)
    assert campaign.model_dump() == before
