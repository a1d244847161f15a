"""`lcc preview FILE [--profile ID]`: each message as a LINE user would see it.

Text from the fixture is operator and profile data: it is always drawn as `Text` objects, never
as markup, so `[bold]` or an escape sequence in a message comes out as the characters it is.
Exit 0; 2 for unreadable input, an unknown profile id, or a template that cannot render (the
other messages are still drawn).
"""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from core.audience import iter_profiles
from core.compose import UNASSIGNED_CAMPAIGN_ID, template_fields
from core.errors import InputError
from core.fixture import Fixture, load_fixture
from core.models import CampaignSpec, Profile
from core.personalize import variable_paths
from core.preview import (
    TEXT_MAX_UTF16,
    ImagemapPreview,
    MessagePreview,
    TextBubble,
    UnsupportedPreview,
    imagemap_grid,
    preview_campaign,
)
from tui.output import EXIT_BAD_INPUT, EXIT_OK, fail, stdout_console

BUBBLE_WIDTH = 48
LINK_STYLE = "underline bright_blue"


def find_profile(fixture: Fixture, profile_id: str, source: str) -> Profile:
    """The profile with `profile_id`, from the campaign's segment first, then any segment."""
    segments = list(fixture.segments)
    audience = fixture.campaign.audience
    if audience is not None:
        segments.sort(key=lambda segment: segment.key != audience.key)
    for segment in segments:
        for profile in iter_profiles(segment):
            if profile.profile_id == profile_id:
                return profile
    where = ", ".join(repr(segment.key) for segment in segments) or "no segments"
    raise InputError(
        f"profile {profile_id!r} is not in the fixture (looked in {where})",
        source=source,
        location="--profile",
    )


def uses_campaign_id(campaign: CampaignSpec) -> bool:
    utm = campaign.utm
    texts = [field.text for field in template_fields(campaign)]
    texts += [utm.utm_source, utm.utm_medium, utm.utm_campaign, utm.utm_content or ""]
    texts += [utm.utm_term or "", *utm.extra.values()]
    return any(("campaign", "id") in variable_paths(text) for text in texts)


def _title(number: int, kind: str, personalised: bool) -> Text:
    title = Text(f"{number} · {kind}")
    if personalised:
        title.append(" · personalised", style="magenta")
    return title


def text_panel(bubble: TextBubble, width: int) -> Panel:
    body = Text(bubble.text, overflow="fold")
    for link in bubble.links:
        body.stylize(LINK_STYLE, link.start, link.end)
    if bubble.error:
        body = Text.assemble(body, "\n\n", Text(bubble.error, style="bold red"))
    style = "red" if bubble.utf16_length > TEXT_MAX_UTF16 else "dim"
    subtitle = Text(f"{bubble.utf16_length}/{TEXT_MAX_UTF16} UTF-16", style=style)
    if bubble.emoji:
        subtitle.append(f" · {bubble.emoji} emoji", style="dim")
    return Panel(
        body,
        title=_title(bubble.index + 1, "text", bubble.personalised),
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        box=box.ROUNDED,
        width=width,
        border_style="green",
    )


def imagemap_panel(preview: ImagemapPreview, width: int) -> Panel:
    columns = max(width - 4, 8)
    parts: list[RenderableType] = [
        Text.assemble(("alt text ", "dim"), Text(preview.alt_text, overflow="fold")),
        Text.assemble(("image    ", "dim"), Text(preview.base_url, overflow="fold")),
        Text(f"size     {preview.width} × {preview.height}", style="dim"),
        Text("\n".join(imagemap_grid(preview, columns)), no_wrap=True, overflow="crop"),
    ]
    if preview.areas or preview.video:
        legend = Table(box=None, show_header=True, pad_edge=False, expand=False)
        legend.add_column(Text("#"), justify="right", no_wrap=True)
        legend.add_column(Text("kind"), no_wrap=True)
        legend.add_column(Text("target"), overflow="fold")
        for area in preview.areas:
            target = Text(area.target, overflow="fold")
            if area.kind == "uri" and area.target.lower().startswith(("http://", "https://")):
                target.stylize(LINK_STYLE)
            if area.label:
                target.append(Text(f"  ({area.label})", style="dim"))
            legend.add_row(Text(str(area.number)), Text(area.kind), target)
        if preview.video is not None:
            video = preview.video
            target = Text(video.content_url, overflow="fold")
            if video.link:
                target.append("\nthen ")
                target.append(Text(video.link, style=LINK_STYLE))
                if video.link_label:
                    target.append(Text(f"  ({video.link_label})", style="dim"))
            legend.add_row(Text("▶"), Text("video"), target)
        parts.append(legend)
    else:
        parts.append(Text("no tap areas", style="dim"))
    if preview.error:
        parts.append(Text(preview.error, style="bold red"))
    return Panel(
        Group(*parts),
        title=_title(preview.index + 1, "imagemap", preview.personalised),
        title_align="left",
        box=box.ROUNDED,
        width=width,
        border_style="green",
    )


def unsupported_panel(preview: UnsupportedPreview, width: int) -> Panel:
    return Panel(
        Text(preview.message, style="yellow"),
        title=_title(preview.index + 1, preview.type, False),
        title_align="left",
        box=box.ROUNDED,
        width=width,
        border_style="yellow",
    )


def panel_for(preview: MessagePreview, width: int) -> Panel:
    if isinstance(preview, TextBubble):
        return text_panel(preview, width)
    if isinstance(preview, ImagemapPreview):
        return imagemap_panel(preview, width)
    return unsupported_panel(preview, width)


def draw(
    console: Console,
    campaign: CampaignSpec,
    previews: list[MessagePreview],
    profile: Profile | None,
) -> None:
    who = (
        Text.assemble("profile ", Text(profile.profile_id, style="bold"))
        if profile is not None
        else Text("the blank profile (as a test send renders it: Liquid defaults apply)")
    )
    console.print(Text.assemble(Text(campaign.name, style="bold"), " as seen by ", who))
    if uses_campaign_id(campaign):
        console.print(
            Text(
                f"the campaign has no id until it is stored; {{{{campaign.id}}}} shows as "
                f"{UNASSIGNED_CAMPAIGN_ID}",
                style="dim",
            )
        )
    if not previews:
        console.print(Text("no messages", style="yellow"))
    width = min(max(console.width, 24), BUBBLE_WIDTH)
    for preview in previews:
        console.print(panel_for(preview, width), soft_wrap=False)


def run(args: argparse.Namespace) -> int:
    loaded = load_fixture(args.file)
    fixture = loaded.fixture
    profile = (
        find_profile(fixture, args.profile, str(loaded.path)) if args.profile is not None else None
    )
    previews = preview_campaign(fixture.campaign, profile)
    draw(stdout_console(), fixture.campaign, previews, profile)
    broken = [p for p in previews if not isinstance(p, UnsupportedPreview) and p.error]
    for preview in broken:
        assert not isinstance(preview, UnsupportedPreview)
        fail(escape(f"{loaded.path}: campaign.{preview.error}"))  # fail() reads markup
    return EXIT_BAD_INPUT if broken else EXIT_OK
