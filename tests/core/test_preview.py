"""The preview model: bubbles, imagemaps and their grid, display-safe text."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import CampaignSpec, Profile
from core.preview import (
    EMOJI_STAND_IN,
    ImagemapPreview,
    PreviewArea,
    TextBubble,
    UnsupportedPreview,
    grid_rows,
    imagemap_grid,
    preview_campaign,
    visible,
)

UTM = "utm_source=line&utm_medium=social&utm_campaign=spring_sale_2026"
EMOJI = {"type": "emoji", "productId": "5a8555cfe6256cc92ea23c2a", "emojiId": "002"}
FULL = {"x": 0, "y": 0, "width": 1040, "height": 1040}
AIKO = Profile(profile_id="c-001", attributes={"first_name": "Aiko"})


def spec(*messages: dict[str, Any], **utm: Any) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {"name": "spring_sale_2026", "messages": list(messages), "utm": utm}
    )


def only_text(campaign: CampaignSpec, profile: Profile | None = None) -> TextBubble:
    [bubble] = preview_campaign(campaign, profile)
    assert isinstance(bubble, TextBubble)
    return bubble


def only_imagemap(campaign: CampaignSpec, profile: Profile | None = None) -> ImagemapPreview:
    [preview] = preview_campaign(campaign, profile)
    assert isinstance(preview, ImagemapPreview)
    return preview


def imagemap(*actions: dict[str, Any], height: int = 1040, **extra: Any) -> dict[str, Any]:
    return {
        "type": "imagemap",
        "baseUrl": "https://example.com/img/spring",
        "altText": "Spring sale",
        "baseSize": {"width": 1040, "height": height},
        "actions": list(actions),
        **extra,
    }


def uri(link: str, x: int, y: int, width: int, height: int) -> dict[str, Any]:
    return {
        "type": "uri",
        "linkUri": link,
        "area": {"x": x, "y": y, "width": width, "height": height},
    }


# --- text bubbles ---------------------------------------------------------------------------


def test_text_bubble_for_the_blank_and_a_chosen_profile() -> None:
    campaign = spec(
        {
            "type": "textV2",
            "text": "Hi {{ profile.first_name | default: 'there' }}! {laugh} https://example.com/sale。",
            "substitution": {"laugh": EMOJI},
        }
    )
    blank = only_text(campaign)
    assert blank.text == f"Hi there! {EMOJI_STAND_IN} https://example.com/sale?{UTM}。"
    assert blank.sent_text == f"Hi there! {{laugh}} https://example.com/sale?{UTM}。"
    assert blank.utf16_length == len(blank.sent_text)
    assert blank.emoji == 1 and blank.personalised and blank.error is None
    [link] = blank.links
    assert link.number == 1
    assert blank.text[link.start : link.end] == link.url == f"https://example.com/sale?{UTM}"
    assert link.original == "https://example.com/sale"
    assert only_text(campaign, AIKO).text.startswith("Hi Aiko! ")


def test_utf16_length_counts_what_line_counts() -> None:
    bubble = only_text(spec({"type": "textV2", "text": "😀あa"}))
    assert bubble.utf16_length == 4


def test_textv2_escapes_are_shown_as_the_user_sees_them() -> None:
    campaign = spec(
        {"type": "textV2", "text": "{{ profile.first_name }} {% raw %}{{x}}{% endraw %}"}
    )
    bubble = only_text(campaign, Profile(profile_id="p", attributes={"first_name": "{bob}"}))
    assert bubble.sent_text == "{{bob}} {{x}}"
    assert bubble.text == "{bob} {x}"


def test_link_positions_survive_escapes_and_emoji_before_them() -> None:
    campaign = spec(
        {
            "type": "textV2",
            "text": "{a}{a} {% raw %}{{{% endraw %} https://x.com/1 and https://x.com/2",
            "substitution": {"a": EMOJI},
        }
    )
    bubble = only_text(campaign)
    assert [bubble.text[link.start : link.end] for link in bubble.links] == [
        f"https://x.com/1?{UTM}",
        f"https://x.com/2?{UTM}",
    ]
    assert [link.number for link in bubble.links] == [1, 2]


def test_markup_and_escape_sequences_come_out_as_data() -> None:
    evil = "[bold red]boss[/] \x1b[2J\x07\x9b31m\u202egnp.exe\tend\nline two"
    bubble = only_text(
        spec({"type": "textV2", "text": "{{ profile.n }}"}),
        Profile(profile_id="p", attributes={"n": evil}),
    )
    assert "\x1b" not in bubble.text and "\x07" not in bubble.text and "\x9b" not in bubble.text
    assert "\u202e" not in bubble.text and "\t" not in bubble.text
    assert bubble.text == "[bold red]boss[/] ␛[2J␇\\x9b31m\\u202egnp.exe␉end\nline two"
    assert bubble.sent_text == evil  # what is sent is left alone


def test_visible_keeps_newlines_and_ordinary_text() -> None:
    assert visible("春\nのセール 😀") == "春\nのセール 😀"
    assert visible("\x00\x1f\x7f") == "␀␟␡"


def test_a_broken_template_spoils_only_its_own_message() -> None:
    campaign = spec(
        {"type": "textV2", "text": "Hi {{ profile.first_name "},
        {"type": "textV2", "text": "fine https://example.com"},
    )
    broken, fine = preview_campaign(campaign, None)
    assert isinstance(broken, TextBubble) and isinstance(fine, TextBubble)
    assert broken.error is not None and "messages[0].text" in broken.error
    assert "line 1, column 4" in broken.error
    assert broken.text == "Hi {{ profile.first_name " and broken.links == ()
    assert fine.error is None and fine.text == f"fine https://example.com?{UTM}"


def test_unsupported_messages_say_so() -> None:
    [preview] = preview_campaign(spec({"type": "sticker", "packageId": "1"}), None)
    assert isinstance(preview, UnsupportedPreview)
    assert preview.type == "sticker" and "textV2 or imagemap" in preview.message


# --- imagemaps ------------------------------------------------------------------------------


def test_imagemap_preview_lists_numbered_areas_with_final_targets() -> None:
    campaign = spec(
        imagemap(
            uri("https://example.com/product?ref=banner", 0, 0, 520, 1040),
            {
                "type": "message",
                "text": "I want it",
                "area": {"x": 520, "y": 0, "width": 520, "height": 520},
            },
            {
                "type": "clipboard",
                "clipboardText": "{{ profile.coupon | default: 'SPRING' }}",
                "label": "Copy",
                "area": {"x": 520, "y": 520, "width": 520, "height": 520},
            },
            uri("tel:+81312345678", 0, 0, 10, 10),
            altText="For {{ profile.first_name | default: 'you' }}",
        )
    )
    preview = only_imagemap(campaign)
    assert preview.alt_text == "For you"
    assert preview.base_url == "https://example.com/img/spring"
    assert (preview.width, preview.height) == (1040, 1040)
    assert preview.areas == (
        PreviewArea(
            1,
            "uri",
            0,
            0,
            520,
            1040,
            f"https://example.com/product?ref=banner&{UTM}",
            original="https://example.com/product?ref=banner",
        ),
        PreviewArea(2, "message", 520, 0, 520, 520, "I want it"),
        PreviewArea(3, "clipboard", 520, 520, 520, 520, "SPRING", label="Copy"),
        PreviewArea(4, "uri", 0, 0, 10, 10, "tel:+81312345678", original="tel:+81312345678"),
    )
    assert preview.personalised


def test_imagemap_video_and_its_external_link() -> None:
    video = {
        "originalContentUrl": "https://example.com/v.mp4",
        "previewImageUrl": "https://example.com/v.jpg",
        "area": {"x": 0, "y": 0, "width": 1040, "height": 585},
        "externalLink": {"linkUri": "https://example.com/more", "label": "More"},
    }
    preview = only_imagemap(spec(imagemap(video=video)))
    assert preview.video is not None
    assert preview.video.link == f"https://example.com/more?{UTM}"
    assert preview.video.link_label == "More"
    assert preview.video.content_url == "https://example.com/v.mp4"


# --- the grid -------------------------------------------------------------------------------


def grid_of(*areas: tuple[int, int, int, int], columns: int, height: int = 1040) -> list[str]:
    actions = [uri(f"https://x.com/{n}", *area) for n, area in enumerate(areas)]
    return imagemap_grid(only_imagemap(spec(imagemap(*actions, height=height))), columns)


def test_grid_keeps_the_aspect_ratio_in_two_to_one_cells() -> None:
    assert len(grid_of((0, 0, 1040, 1040), columns=40)) == 20
    assert len(grid_of((0, 0, 1040, 520), columns=40, height=520)) == 10
    assert len(grid_of((0, 0, 1040, 2080), columns=40, height=2080)) == 40
    rows = grid_of((0, 0, 1040, 1040), columns=40)
    assert all(len(row) == 40 for row in rows)


def test_one_full_area_is_a_frame_with_its_number_in_the_middle() -> None:
    rows = grid_of(FULL_AREA, columns=10)
    assert rows == [
        "┌────────┐",
        "│        │",
        "│   1    │",
        "│        │",
        "└────────┘",
    ]


FULL_AREA = (0, 0, 1040, 1040)


def test_two_halves_side_by_side() -> None:
    rows = grid_of((0, 0, 520, 1040), (520, 0, 520, 1040), columns=12)
    assert rows == [
        "┌────┐┌────┐",
        "│    ││    │",
        "│ 1  ││ 2  │",
        "│    ││    │",
        "│    ││    │",
        "└────┘└────┘",
    ]


def test_outlines_that_meet_are_joined() -> None:
    # a quarter in the frame's corner: its edges join the frame's
    rows = grid_of((0, 0, 1040, 1040), (0, 0, 520, 520), columns=16)
    assert rows[0] == "┌──────┬───────┐"
    assert rows[3].startswith("├──────┘")
    assert rows[-1] == "└──────────────┘"


def test_a_number_avoids_outlines_and_other_areas() -> None:
    rows = grid_of((0, 0, 1040, 1040), (260, 260, 520, 520), columns=16)
    assert rows == [
        "┌──────────────┐",
        "│      1       │",
        "│   ┌──────┐   │",
        "│   │  2   │   │",
        "│   │      │   │",
        "│   └──────┘   │",
        "│              │",
        "└──────────────┘",
    ]


def test_overlapping_areas_later_number_wins() -> None:
    rows = grid_of((0, 0, 1040, 1040), (0, 0, 1040, 1040), columns=10)
    assert rows[2] == "│   2    │"
    assert "1" not in "".join(rows)


def test_tiny_areas_still_show_their_number() -> None:
    rows = grid_of((0, 0, 1040, 1040), (1000, 1000, 40, 40), columns=10)
    assert "2" in rows[-1]


def test_grid_survives_areas_outside_the_image_and_odd_sizes() -> None:
    preview = only_imagemap(spec(imagemap(uri("https://x.com", 900, 900, 500, 500), height=0)))
    rows = imagemap_grid(preview, 1)
    assert len(rows) == grid_rows(preview, 2) and all(len(row) == 2 for row in rows)
    rows = imagemap_grid(
        only_imagemap(spec(imagemap(uri("https://x.com", 900, 900, 500, 500)))), 20
    )
    assert "1" in "".join(rows)


def test_video_area_is_marked() -> None:
    video = {
        "originalContentUrl": "https://example.com/v.mp4",
        "previewImageUrl": "https://example.com/v.jpg",
        "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
    }
    rows = imagemap_grid(only_imagemap(spec(imagemap(video=video))), 10)
    assert "▶" in "".join(rows)


@pytest.mark.parametrize("columns", [2, 3, 7, 40, 120])
def test_every_area_number_is_drawn_at_any_width(columns: int) -> None:
    areas = [(x * 208, y * 208, 208, 208) for y in range(2) for x in range(5)]
    rows = grid_of(*areas, columns=columns)
    text = "\n".join(rows)
    assert all(len(row) == columns for row in rows)
    if columns >= 40:
        for number in range(1, 11):
            assert str(number) in text
