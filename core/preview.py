"""What a LINE user sees, as data the console and `lcc preview` draw.

Each message becomes a `TextBubble`, an `ImagemapPreview` or an `UnsupportedPreview`, rendered
exactly as it would be sent (Liquid for the blank or a chosen profile, then UTM), and then made
safe to show: every string here is display text, with C0/C1 control characters (newline apart)
and bidirectional overrides replaced by visible stand-ins, so a terminal escape sequence in a
message is shown, never obeyed. Draw these strings as literal text, never as markup. The exact
text that is sent stays in `TextBubble.sent_text`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from core.compose import Composer, LinkRef
from core.models import CampaignSpec, Profile
from core.personalize import TemplateError

TEXT_MAX_UTF16 = 5000
IMAGEMAP_WIDTH = 1040
EMOJI_STAND_IN = "(emoji)"
MENTION_STAND_IN = "(@mention)"
CELL_ASPECT = 2.0
"""A terminal cell is about twice as tall as it is wide."""


# --- display-safe text ----------------------------------------------------------------------

_VISIBLE = {code: chr(0x2400 + code) for code in range(0x20)}
_VISIBLE[0x7F] = "\u2421"
del _VISIBLE[0x0A]
_VISIBLE.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
_VISIBLE.update(
    {code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)
_TABLE = str.maketrans({chr(code): stand_in for code, stand_in in _VISIBLE.items()})


def visible(text: str) -> str:
    """`text` with control characters (not newline) and bidi overrides made visible:
    ESC becomes U+241B, a C1 control `\\x9b`, U+202E `\\u202e`."""
    return text.translate(_TABLE)


def utf16_length(text: str) -> int:
    """LINE counts text in UTF-16 code units: an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le")) // 2


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewLink:
    """A link in a bubble: `bubble.text[start:end] == url`, in its final form (UTM applied)."""

    number: int
    start: int
    end: int
    url: str
    original: str
    """The link after Liquid, before UTM."""


@dataclass(frozen=True)
class TextBubble:
    index: int
    """The message's 0-based position in the bundle."""
    text: str
    """What the phone shows: Liquid resolved, textV2 escapes undone, emoji as `(emoji)`."""
    links: tuple[PreviewLink, ...]
    sent_text: str
    """The textV2 `text` exactly as LINE receives it (not display-safe)."""
    utf16_length: int
    """LINE's count for `sent_text`; the limit is TEXT_MAX_UTF16."""
    emoji: int
    personalised: bool
    error: str | None = None
    """Why the text could not be rendered (then `text` is the template as written)."""
    kind: str = "textV2"


@dataclass(frozen=True)
class PreviewArea:
    number: int
    """1-based, in action order (the number drawn on the grid)."""
    kind: str
    """`uri`, `message`, `clipboard`, or the unsupported type as written."""
    x: int
    y: int
    width: int
    height: int
    target: str
    """The final link, the message text sent, or the text copied."""
    original: str | None = None
    """For a `uri` area: the link before UTM."""
    label: str | None = None


@dataclass(frozen=True)
class PreviewVideo:
    x: int
    y: int
    width: int
    height: int
    content_url: str
    preview_url: str
    link: str | None = None
    """The external link shown after playback, in final form."""
    link_label: str | None = None


@dataclass(frozen=True)
class ImagemapPreview:
    index: int
    alt_text: str
    base_url: str
    width: int
    height: int
    areas: tuple[PreviewArea, ...]
    video: PreviewVideo | None
    personalised: bool
    error: str | None = None
    kind: str = "imagemap"


@dataclass(frozen=True)
class UnsupportedPreview:
    index: int
    type: str
    message: str
    kind: str = "unsupported"


MessagePreview = TextBubble | ImagemapPreview | UnsupportedPreview


# --- building it ----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([0-9A-Za-z_]{1,20})\}")


def _display_text(
    sent: str, substitution: dict[str, Any], link_spans: list[tuple[int, int]]
) -> tuple[str, list[tuple[int, int]], int]:
    """The text as shown, the link spans moved into it, and the number of emoji."""
    out: list[str] = []
    length = 0
    position_map: dict[int, int] = {}
    wanted = {edge for span in link_spans for edge in span}
    emoji = 0
    index = 0
    while index <= len(sent):
        if index in wanted:
            position_map[index] = length
        if index == len(sent):
            break
        pair = sent[index : index + 2]
        piece: str
        if pair in ("{{", "}}"):
            piece, step = pair[0], 2
        elif sent[index] == "{" and (match := _PLACEHOLDER.match(sent, index)):
            value = substitution.get(match.group(1))
            kind = value.get("type") if isinstance(value, dict) else None
            if kind == "emoji":
                piece, emoji = EMOJI_STAND_IN, emoji + 1
            elif kind == "mention":
                piece = MENTION_STAND_IN
            else:
                piece = match.group(0)
            step = len(match.group(0))
        else:
            piece, step = visible(sent[index]), 1
        out.append(piece)
        length += len(piece)
        for skipped in range(index + 1, index + step):
            if skipped in wanted:  # an edge inside an escape or placeholder: after it
                position_map[skipped] = length
        index += step
    spans = [(position_map[start], position_map[end]) for start, end in link_spans]
    return "".join(out), spans, emoji


def _text_bubble(
    index: int, line: dict[str, Any], links: list[LinkRef], personalised: bool
) -> TextBubble:
    sent = str(line.get("text", ""))
    substitution = line.get("substitution") or {}
    link_spans: list[tuple[int, int]] = []
    found: list[LinkRef] = []
    position = 0
    for link in links:
        start = sent.find(link.url, position)
        if start < 0:
            continue
        link_spans.append((start, start + len(link.url)))
        found.append(link)
        position = start + len(link.url)
    shown, spans, emoji = _display_text(sent, substitution, link_spans)
    preview_links = tuple(
        PreviewLink(number, start, end, shown[start:end], visible(link.original))
        for number, ((start, end), link) in enumerate(zip(spans, found, strict=True), start=1)
    )
    return TextBubble(
        index=index,
        text=shown,
        links=preview_links,
        sent_text=sent,
        utf16_length=utf16_length(sent),
        emoji=emoji,
        personalised=personalised,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _area(number: int, action: dict[str, Any], original: str | None) -> PreviewArea:
    area = action.get("area") or {}
    kind = str(action.get("type", ""))
    target = {"uri": "linkUri", "message": "text", "clipboard": "clipboardText"}.get(kind)
    label = action.get("label")
    return PreviewArea(
        number=number,
        kind=visible(kind),
        x=_int(area.get("x")),
        y=_int(area.get("y")),
        width=_int(area.get("width")),
        height=_int(area.get("height")),
        target=visible(str(action.get(target, ""))) if target else "",
        original=visible(original) if original is not None else None,
        label=visible(label) if isinstance(label, str) else None,
    )


def _imagemap(
    index: int, line: dict[str, Any], links: list[LinkRef], personalised: bool
) -> ImagemapPreview:
    originals = {link.where: link.original for link in links}
    actions = [a for a in line.get("actions") or [] if isinstance(a, dict)]
    areas = tuple(
        _area(number, action, originals.get(f"actions[{number - 1}].linkUri"))
        for number, action in enumerate(actions, start=1)
    )
    video = None
    raw_video = line.get("video")
    if isinstance(raw_video, dict):
        area = raw_video.get("area") or {}
        external = raw_video.get("externalLink") or {}
        video = PreviewVideo(
            x=_int(area.get("x")),
            y=_int(area.get("y")),
            width=_int(area.get("width")),
            height=_int(area.get("height")),
            content_url=visible(str(raw_video.get("originalContentUrl", ""))),
            preview_url=visible(str(raw_video.get("previewImageUrl", ""))),
            link=visible(external["linkUri"]) if "linkUri" in external else None,
            link_label=visible(external["label"]) if "label" in external else None,
        )
    size = line.get("baseSize") or {}
    return ImagemapPreview(
        index=index,
        alt_text=visible(str(line.get("altText", ""))),
        base_url=visible(str(line.get("baseUrl", ""))),
        width=_int(size.get("width")),
        height=_int(size.get("height")),
        areas=areas,
        video=video,
        personalised=personalised,
    )


def _preview_one(composer: Composer, index: int, profile: Profile | None) -> MessagePreview:
    skeleton = composer.skeleton(index)
    kind = skeleton.get("type")
    personalised = composer.message_personalised(index)
    if kind not in ("textV2", "imagemap"):
        shown = visible(str(kind))
        return UnsupportedPreview(
            index, shown, f"{shown} messages are not sent on this channel; use textV2 or imagemap"
        )
    error: str | None = None
    try:
        line, links = composer.message(index, profile)
    except TemplateError as problem:
        line, links, error = skeleton, [], visible(problem.describe())
    bubble: TextBubble | ImagemapPreview
    if kind == "textV2":
        bubble = _text_bubble(index, line, links, personalised)
    else:
        bubble = _imagemap(index, line, links, personalised)
    if error is None:
        return bubble
    if isinstance(bubble, TextBubble):  # show the template as written, not as textV2
        return replace(bubble, text=visible(bubble.sent_text), links=(), emoji=0, error=error)
    return replace(bubble, error=error)


def preview_campaign(
    campaign: CampaignSpec, profile: Profile | None, *, campaign_id: str | None = None
) -> list[MessagePreview]:
    """Each message as `profile` (None: the blank profile) would see it, links in final form.

    Never raises for a broken template: that message carries the error and shows the template
    as written; the others render normally.
    """
    composer = Composer(campaign, campaign_id=campaign_id)
    return [_preview_one(composer, index, profile) for index in range(len(composer))]


# --- the imagemap as a grid -----------------------------------------------------------------

_LEFT, _RIGHT, _UP, _DOWN = 1, 2, 4, 8
_BOX = {
    0: " ",
    _LEFT: "─",
    _RIGHT: "─",
    _LEFT | _RIGHT: "─",
    _UP: "│",
    _DOWN: "│",
    _UP | _DOWN: "│",
    _RIGHT | _DOWN: "┌",
    _LEFT | _DOWN: "┐",
    _RIGHT | _UP: "└",
    _LEFT | _UP: "┘",
    _UP | _DOWN | _RIGHT: "├",
    _UP | _DOWN | _LEFT: "┤",
    _LEFT | _RIGHT | _DOWN: "┬",
    _LEFT | _RIGHT | _UP: "┴",
    _LEFT | _RIGHT | _UP | _DOWN: "┼",
}
VIDEO_MARK = "▶"


def grid_rows(preview: ImagemapPreview, columns: int) -> int:
    """Rows that keep the image's aspect ratio (1040 x height) in ~2:1 terminal cells."""
    height = preview.height if preview.height > 0 else IMAGEMAP_WIDTH
    return max(2, round(columns * height / IMAGEMAP_WIDTH / CELL_ASPECT))


def _span(start: int, size: int, cells: int, full: int) -> tuple[int, int]:
    first = math.floor(start * cells / full)
    last = math.ceil((start + max(size, 0)) * cells / full) - 1
    first = min(max(first, 0), cells - 1)
    last = min(max(last, first), cells - 1)
    return first, last


def imagemap_grid(preview: ImagemapPreview, columns: int) -> list[str]:
    """The imagemap as `columns`-wide character rows with every tap area outlined and numbered.

    Areas are scaled from 1040 x height; where outlines meet they join (`┼`, `├`, ...). Each
    number goes near its area's centre, in a spot no outline crosses and, when there is one, no
    other area covers. When areas overlap so that two numbers must share cells, all outlines are
    drawn and the later area's number wins (the legend still lists both). A video area is marked
    with `▶`.
    """
    columns = max(columns, 2)
    rows = grid_rows(preview, columns)
    full_height = preview.height if preview.height > 0 else IMAGEMAP_WIDTH
    masks = [[0] * columns for _ in range(rows)]
    labels: dict[tuple[int, int], str] = {}
    boxes: list[tuple[str, int, int, int, int]] = [
        (str(area.number), area.x, area.y, area.width, area.height) for area in preview.areas
    ]
    if preview.video is not None:
        video = preview.video
        boxes.append((VIDEO_MARK, video.x, video.y, video.width, video.height))
    placed: list[tuple[str, int, int, int, int]] = []
    for label, x, y, width, height in boxes:
        c0, c1 = _span(x, width, columns, IMAGEMAP_WIDTH)
        r0, r1 = _span(y, height, rows, full_height)
        _outline(masks, r0, c0, r1, c1)
        placed.append((label, r0, c0, r1, c1))
    cover = [[0] * columns for _ in range(rows)]
    for _label, r0, c0, r1, c1 in placed:
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                cover[r][c] += 1
    for label, r0, c0, r1, c1 in placed:
        row, start = _label_position(masks, cover, label, r0, c0, r1, c1)
        for offset, char in enumerate(label):
            if start + offset < columns:
                labels[(row, start + offset)] = char
    return [
        "".join(labels.get((r, c), _BOX[masks[r][c]]) for c in range(columns)) for r in range(rows)
    ]


def _label_position(
    masks: list[list[int]],
    cover: list[list[int]],
    label: str,
    r0: int,
    c0: int,
    r1: int,
    c1: int,
) -> tuple[int, int]:
    """Where an area's number goes: the interior spot nearest its centre that no outline
    crosses and no other area covers, else one no outline crosses, else the centre itself;
    an area too small for an interior gets it on its top-left edge."""
    row = (r0 + r1) // 2 if r1 - r0 >= 2 else r0
    inner = c1 - c0 - 1
    if inner < len(label) or r1 - r0 < 2:
        return row, c0 + 1 + (inner - len(label)) // 2 if inner >= len(label) else c0
    start = c0 + 1 + (inner - len(label)) // 2
    free: list[tuple[int, int]] = []
    own: list[tuple[int, int]] = []
    for r in range(r0 + 1, r1):
        for c in range(c0 + 1, c1 - len(label) + 1):
            cells = range(c, c + len(label))
            if any(masks[r][cell] for cell in cells):
                continue
            free.append((r, c))
            if all(cover[r][cell] == 1 for cell in cells):
                own.append((r, c))
    spots = own or free
    if not spots:
        return row, start
    return min(spots, key=lambda spot: (abs(spot[0] - row) + abs(spot[1] - start), spot))


def _outline(masks: list[list[int]], r0: int, c0: int, r1: int, c1: int) -> None:
    if r0 == r1 and c0 == c1:
        masks[r0][c0] |= _LEFT | _RIGHT
        return
    for c in range(c0, c1 + 1):
        horizontal = (_RIGHT if c < c1 else 0) | (_LEFT if c > c0 else 0)
        masks[r0][c] |= horizontal
        masks[r1][c] |= horizontal
    for r in range(r0, r1 + 1):
        vertical = (_DOWN if r < r1 else 0) | (_UP if r > r0 else 0)
        masks[r][c0] |= vertical
        masks[r][c1] |= vertical
