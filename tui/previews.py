"""Widgets that draw core.preview's model the way a LINE user sees it on a phone.

Everything shown here comes from operators and profiles, so it is drawn literally: `core.preview`
already replaced control characters (the ESC of an escape sequence included) by visible
stand-ins, and the text becomes `Content` built from plain strings, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Static

from core.preview import (
    ImagemapPreview,
    MessagePreview,
    TextBubble,
    UnsupportedPreview,
    grid_rows,
    imagemap_grid,
)
from tui.widgets import literal

# --- the phone --------------------------------------------------------------------------------

LINK_STYLE = "$text-accent underline"
MUTED = "$foreground-muted"
GRID_MAX_COLUMNS = 30
AREA_KINDS = {"uri": "link", "message": "sends", "clipboard": "copies"}


def bubble_content(bubble: TextBubble) -> Content:
    """The bubble's text with every link, in its final form, highlighted."""
    content = Content(literal(bubble.text, multiline=True))
    for link in bubble.links:
        content = content.stylize(LINK_STYLE, link.start, link.end)
    return content


def area_lines(preview: ImagemapPreview) -> Content:
    """What each numbered tap area does, listed under the grid."""
    lines: list[Content] = []
    for area in preview.areas:
        kind = AREA_KINDS.get(area.kind, area.kind)
        target_style = LINK_STYLE if area.kind == "uri" else ""
        lines.append(
            Content.assemble(
                (f"{area.number} ", "bold"),
                (f"{literal(kind)} ", MUTED),
                (literal(area.target) or "—", target_style),
            )
        )
    if preview.video is not None and preview.video.link:
        lines.append(
            Content.assemble(
                ("▶ ", "bold"),
                ("video link ", MUTED),
                (literal(preview.video.link), LINK_STYLE),
            )
        )
    if not lines:
        lines.append(Content.styled("No tap areas.", MUTED))
    return Content("\n").join(lines)


class ImagemapGrid(Widget):
    """The image as a grid with its tap areas outlined and numbered, scaled to the width."""

    DEFAULT_CSS = """
    ImagemapGrid { height: auto; width: 1fr; max-width: 30; color: $text-muted; }
    """

    def __init__(self, preview: ImagemapPreview) -> None:
        super().__init__(classes="imagemap-grid")
        self.preview = preview

    def _columns(self, width: int) -> int:
        return max(4, min(width, GRID_MAX_COLUMNS))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return grid_rows(self.preview, self._columns(width))

    def render(self) -> Content:
        rows = imagemap_grid(self.preview, self._columns(self.size.width))
        return Content("\n").join(Content(literal(row)) for row in rows)


class ImagemapCard(Vertical):
    def __init__(self, preview: ImagemapPreview) -> None:
        super().__init__(classes="imagemap-card")
        self.preview = preview

    def compose(self) -> ComposeResult:
        preview = self.preview
        yield Static(
            Content.assemble(
                (f"{preview.index + 1}. Imagemap ", "bold"),
                (literal(f"{preview.width}×{preview.height}"), MUTED),
            ),
            classes="card-title",
        )
        yield ImagemapGrid(preview)
        yield Static(area_lines(preview), classes="area-targets")
        yield Static(
            Content.assemble(("alt ", MUTED), literal(preview.alt_text)),
            classes="alt-text",
        )
        if preview.error:
            yield Static(Content.styled(literal(preview.error), "$text-error"), classes="error")


class PhonePreview(VerticalScroll):
    """The bundle as a LINE chat: the sender's name, then each message in order."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="phone")
        self.border_title = "Preview"

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("Rendering the preview…", MUTED), classes="phone-empty")

    def show(self, sender: str, previews: Sequence[MessagePreview], caption: str) -> None:
        self.border_subtitle = caption
        self.remove_children()
        widgets: list[Widget] = []
        if not previews:
            widgets.append(
                Static(
                    Content.styled("No messages yet: t adds text, i an imagemap.", MUTED),
                    classes="phone-empty",
                )
            )
        else:
            widgets.append(
                Static(Content.assemble(("● ", "$text-success"), literal(sender)), classes="sender")
            )
        for preview in previews:
            if isinstance(preview, TextBubble):
                bubble = Static(bubble_content(preview), classes="bubble")
                bubble.border_title = str(preview.index + 1)
                widgets.append(bubble)
                if preview.error:
                    widgets.append(
                        Static(
                            Content.styled(literal(preview.error), "$text-error"), classes="error"
                        )
                    )
            elif isinstance(preview, ImagemapPreview):
                widgets.append(ImagemapCard(preview))
            elif isinstance(preview, UnsupportedPreview):
                widgets.append(
                    Static(
                        Content.styled(
                            literal(f"{preview.index + 1}. {preview.message}"), "$text-error"
                        ),
                        classes="bubble unsupported",
                    )
                )
        self.mount_all(widgets)
