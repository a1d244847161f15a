"""A small, fixed world for the campaign screen's tests: one workspace, its accounts and segments,
a frozen clock, and helpers to open a campaign and wait until the screen has settled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, Tab, Tabs

from core import service as service_module
from core.models import (
    Area,
    AudienceRef,
    BaseSize,
    Campaign,
    CampaignSpec,
    ImagemapMessage,
    MessageAction,
    Profile,
    Segment,
    SenderAccount,
    TextV2Message,
    UriAction,
    Workspace,
)
from core.service import Services
from core.settings import Settings
from tui.app import ConsoleApp
from tui.screens.campaign import CampaignScreen
from tui.screens.confirm import ConfirmByTyping

WORKSPACE = "marketing-jp"
TOKEN_ENV = "ACME_LINE_TOKEN"
FROZEN = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
FIXED_ID = "cmp-0123456789ab"

ACME = SenderAccount(
    id="acme_oa",
    name="Acme Official",
    channel_id="1656000001",
    workspaces=[WORKSPACE],
    token_env=TOKEN_ENV,
)
NORTH = SenderAccount(
    id="north_oa",
    name="Acme North",
    channel_id="1656000002",
    workspaces=[WORKSPACE],
    token_env=TOKEN_ENV,
)
ELSEWHERE = SenderAccount(
    id="us_oa",
    name="Acme US",
    channel_id="1656000003",
    workspaces=["sales-us"],
    token_env=TOKEN_ENV,
)


def user(n: int) -> str:
    return f"U{n:032x}"


SPRING = Segment(
    parent_segment="All Customers",
    segment="Spring Buyers",
    profiles=[
        Profile(profile_id="c-001", line_user_id=user(1), attributes={"first_name": "Aiko"}),
        Profile(profile_id="c-002", line_user_id=user(2), attributes={"first_name": "Kenji"}),
        Profile(profile_id="c-003", line_user_id=None, attributes={"first_name": "Yui"}),
        Profile(profile_id="c-004", line_user_id="U123", attributes={"first_name": "Ren"}),
        Profile(profile_id="c-005", line_user_id=user(1), attributes={"first_name": "Aiko"}),
    ],
)
LAPSED = Segment(
    parent_segment="All Customers",
    segment="Lapsed Buyers",
    profiles=[Profile(profile_id="c-101", line_user_id=user(101))],
)
GOLD = Segment(
    parent_segment="Loyalty",
    segment="Gold Members",
    profiles=[Profile(profile_id="c-201", line_user_id=user(201))],
)

SPRING_TEXT = (
    "Hi {{ profile.first_name | default: 'there' }}! Our spring sale: https://example.com/sale"
)


def spring_imagemap() -> ImagemapMessage:
    return ImagemapMessage(
        baseUrl="https://example.com/img/spring",
        altText="Spring sale",
        baseSize=BaseSize(width=1040, height=520),
        actions=[
            UriAction(
                linkUri="https://example.com/product?ref=banner",
                area=Area(x=0, y=0, width=520, height=520),
            ),
            MessageAction(text="Tell me more", area=Area(x=520, y=0, width=520, height=520)),
        ],
    )


def spring_spec(**changes: Any) -> CampaignSpec:
    """A valid campaign: a text with a link and an imagemap, to the Spring Buyers."""
    spec = CampaignSpec(
        name="spring_sale_2026",
        sender_account=ACME.id,
        audience=AudienceRef(parent_segment=SPRING.parent_segment, segment=SPRING.segment),
        messages=[TextV2Message(text=SPRING_TEXT), spring_imagemap()],
    )
    return spec.model_copy(update=changes)


class FrozenClock:
    def __init__(self, moment: datetime = FROZEN) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def open_services(settings: Settings) -> Services:
    services = Services.open(settings, clock=FrozenClock())
    directory = services.store.directory
    directory.save_workspace(Workspace(name=WORKSPACE))
    for account in (ACME, NORTH, ELSEWHERE):
        directory.save_account(account)
    for segment in (SPRING, LAPSED, GOLD):
        directory.save_segment(segment)
    return services


def world_services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The world's services, with the sender accounts' token in the environment."""
    monkeypatch.setenv(TOKEN_ENV, "test-channel-token")
    return open_services(settings)


@contextmanager
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(service_module, "new_campaign_id", lambda: FIXED_ID)
    yield


def create(services: Services, spec: CampaignSpec | None = None) -> Campaign:
    return services.create_campaign(spec or spring_spec(), workspace=WORKSPACE)


def console(services: Services) -> ConsoleApp:
    return ConsoleApp(services, scheduler_interval=None)


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Wait for debounced saves, workers and the validation after them, several times over."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause(0.35)
        await app.workers.wait_for_complete()
        await pilot.pause()


async def open_campaign(pilot: Pilot[Any], campaign_id: str) -> CampaignScreen:
    app = pilot.app
    await pilot.pause()
    screen = CampaignScreen(campaign_id)
    await app.push_screen(screen)
    await settle(pilot)
    return screen


async def type_into(pilot: Pilot[Any], widget: Input, text: str, *, clear: bool = True) -> None:
    widget.focus()
    await pilot.pause()
    if clear:
        widget.value = ""
    for char in text:
        await pilot.press(char)


def tab_labels(screen: CampaignScreen) -> list[str]:
    return [tab.label.plain for tab in screen.query_one(Tabs).query(Tab)]


def text_of(screen: CampaignScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def record_notifications(app: ConsoleApp) -> list[str]:
    """Titles of every notification, kept after the toasts expire."""
    titles: list[str] = []
    notify = app.notify

    def keep(message: str, *, title: str = "", **options: Any) -> None:
        titles.append(title or message)
        notify(message, title=title, **options)

    app.notify = keep  # type: ignore[method-assign]
    return titles


async def confirm_by_typing(pilot: Pilot[Any], expected: str) -> None:
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, ConfirmByTyping)
    assert dialog.expected == expected
    for char in expected:
        await pilot.press(char)
    await pilot.press("enter")
    await pilot.pause()
