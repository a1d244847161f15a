"""Pre-launch validation: every problem at once, each on its tab (contract section 8).

A campaign that passes must never be refused by LINE. The seeds' four launch rules come first: a
message, a sender account assigned to the operator's workspace, a target segment, and messages
LINE accepts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from core.fixture import Fixture, json_path
from core.models import (
    MAX_MESSAGES,
    CampaignSpec,
    ImagemapMessage,
    Message,
    RecurringSchedule,
    ScheduledSchedule,
    Segment,
    SenderAccount,
    TextV2Message,
    UnsupportedMessage,
)


class Tab(enum.StrEnum):
    AUDIENCE = "audience"
    CONTENT = "content"
    SCHEDULE = "schedule"
    ACTIVATION = "activation"
    UTM = "utm"


class Issue(BaseModel):
    tab: Tab
    field: str
    code: str
    message: str


@dataclass
class ValidationContext:
    """What validation needs to know besides the campaign itself."""

    workspace: str
    now: datetime
    accounts: Mapping[str, SenderAccount] = field(default_factory=dict)
    segments: Mapping[str, Segment] = field(default_factory=dict)
    campaign_id: str | None = None


TEXT_MAX_UTF16 = 5000
_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def utf16_length(text: str) -> int:
    """LINE counts characters in UTF-16 code units: an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le")) // 2


def message_issues(raw_messages: Any) -> list[Issue]:
    """LINE's rules for a request's `messages` array as JSON: the sandbox's validate endpoint.

    Field paths are relative to the request body (`messages[0].text`).
    """
    if not isinstance(raw_messages, list):
        return [
            Issue(
                tab=Tab.CONTENT,
                field="messages",
                code="messages_not_array",
                message="messages must be an array",
            )
        ]
    try:
        messages = _MESSAGES.validate_python(raw_messages)
    except ValidationError as exc:
        return [
            Issue(
                tab=Tab.CONTENT,
                field=json_path(("messages", *error["loc"])),
                code="message_shape",
                message=error["msg"],
            )
            for error in exc.errors(include_url=False)
        ]
    spec = CampaignSpec(name="(request)", messages=messages)
    return [issue for issue in _content(spec, None) if issue.field.startswith("messages")]


def validate_campaign(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    issues: list[Issue] = []
    issues += _audience(spec, ctx)
    issues += _content(spec, ctx)
    issues += _schedule(spec, ctx)
    return issues


def _audience(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    if spec.audience is None:
        return [
            Issue(
                tab=Tab.AUDIENCE,
                field="audience.segment",
                code="segment_required",
                message="choose a target segment",
            )
        ]
    if spec.audience.key not in ctx.segments:
        return [
            Issue(
                tab=Tab.AUDIENCE,
                field="audience.segment",
                code="segment_unknown",
                message=f"segment {spec.audience.segment!r} of parent segment "
                f"{spec.audience.parent_segment!r} does not exist",
            )
        ]
    return []


def _content(spec: CampaignSpec, ctx: ValidationContext | None) -> list[Issue]:
    issues: list[Issue] = []
    if ctx is None:
        pass
    elif spec.sender_account is None:
        issues.append(
            Issue(
                tab=Tab.CONTENT,
                field="sender_account",
                code="sender_account_required",
                message="choose a LINE sender account",
            )
        )
    else:
        account = ctx.accounts.get(spec.sender_account)
        if account is None:
            issues.append(
                Issue(
                    tab=Tab.CONTENT,
                    field="sender_account",
                    code="sender_account_unknown",
                    message=f"sender account {spec.sender_account!r} does not exist",
                )
            )
        elif ctx.workspace not in account.workspaces:
            issues.append(
                Issue(
                    tab=Tab.CONTENT,
                    field="sender_account",
                    code="sender_account_not_in_workspace",
                    message=f"sender account {account.name!r} is not assigned to "
                    f"workspace {ctx.workspace!r}",
                )
            )
    if not spec.messages:
        issues.append(
            Issue(
                tab=Tab.CONTENT,
                field="messages",
                code="messages_required",
                message="add at least one message",
            )
        )
    elif len(spec.messages) > MAX_MESSAGES:
        issues.append(
            Issue(
                tab=Tab.CONTENT,
                field="messages",
                code="too_many_messages",
                message=f"{len(spec.messages)} messages; LINE allows {MAX_MESSAGES}",
            )
        )
    for index, message in enumerate(spec.messages):
        where = f"messages[{index}]"
        if isinstance(message, UnsupportedMessage):
            issues.append(
                Issue(
                    tab=Tab.CONTENT,
                    field=f"{where}.type",
                    code="unsupported_message_type",
                    message=f"message type {message.type!r} cannot be sent on this "
                    "channel; use textV2 or imagemap",
                )
            )
        elif isinstance(message, TextV2Message):
            length = utf16_length(message.text)
            if length == 0 or length > TEXT_MAX_UTF16:
                issues.append(
                    Issue(
                        tab=Tab.CONTENT,
                        field=f"{where}.text",
                        code="text_length",
                        message=f"text is {length} characters; LINE allows 1 to {TEXT_MAX_UTF16}",
                    )
                )
        elif isinstance(message, ImagemapMessage) and not message.baseUrl.startswith("https://"):
            issues.append(
                Issue(
                    tab=Tab.CONTENT,
                    field=f"{where}.baseUrl",
                    code="base_url_not_https",
                    message="baseUrl must use https",
                )
            )
    return issues


def _schedule(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    schedule = spec.schedule
    if isinstance(schedule, RecurringSchedule):
        return [
            Issue(
                tab=Tab.SCHEDULE,
                field="schedule.type",
                code="recurring_not_supported",
                message="recurring sends belong to Always-On campaigns; choose Send "
                "Immediately or Schedule for Later",
            )
        ]
    if isinstance(schedule, ScheduledSchedule) and schedule.at <= ctx.now:
        return [
            Issue(
                tab=Tab.SCHEDULE,
                field="schedule.at",
                code="schedule_in_past",
                message=f"scheduled time {schedule.at.isoformat()} is not after now "
                f"({ctx.now.isoformat(timespec='seconds')})",
            )
        ]
    return []


def validate_fixture(fixture: Fixture, now: datetime | None = None) -> list[Issue]:
    """Validate a fixture's campaign against the world the fixture itself describes."""
    moment = now or fixture.clock or datetime.now(UTC)
    ctx = ValidationContext(
        workspace=fixture.workspace,
        now=moment,
        accounts={account.id: account for account in fixture.sender_accounts},
        segments={segment.key: segment for segment in fixture.segments},
    )
    return validate_campaign(fixture.campaign, ctx)
