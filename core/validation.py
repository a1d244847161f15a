"""Pre-launch validation: every problem at once, each on its tab (contract section 8).

A campaign that passes must never be refused by LINE. The seeds' four launch rules come first: a
message, a sender account assigned to the operator's workspace, a target segment, and messages
LINE accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.fixture import Fixture
from core.models import (
    MAX_MESSAGES,
    CampaignSpec,
    ImagemapMessage,
    RecurringSchedule,
    ScheduledSchedule,
    Segment,
    SenderAccount,
    TextV2Message,
    UnsupportedMessage,
)
from core.rules import Issue, Tab, message_issues, utf16_length

__all__ = [
    "Issue",
    "Tab",
    "ValidationContext",
    "message_issues",
    "validate_campaign",
    "validate_fixture",
]


@dataclass
class ValidationContext:
    """What validation needs to know besides the campaign itself."""

    workspace: str
    now: datetime
    accounts: Mapping[str, SenderAccount] = field(default_factory=dict)
    segments: Mapping[str, Segment] = field(default_factory=dict)
    campaign_id: str | None = None


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
            if length == 0 or length > 5000:
                issues.append(
                    Issue(
                        tab=Tab.CONTENT,
                        field=f"{where}.text",
                        code="text_length",
                        message=f"text is {length} characters; LINE allows 1 to 5000",
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
