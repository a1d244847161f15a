"""Pre-launch validation: every problem at once, each on its tab (contract section 8).

A campaign that passes must never be refused by LINE. The seeds' launch rules come first (a
message, a sender account assigned to the operator's workspace, a target segment, messages LINE
accepts); then the schedule, the activation bounds and the UTM tab. Messages are checked as LINE
will receive them: rendered through Liquid and UTM (`core.compose.render_bundle`) for the blank
profile and for a synthetic profile holding the segment's longest values, then held against
LINE's rules (`core.rules.message_issues`). docs/validation.md lists every rule.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from core.audience import LINE_USER_ID, iter_rows
from core.compose import campaign_id_of, render_bundle, template_fields
from core.errors import InputError
from core.fixture import Fixture
from core.models import (
    ActivationPolicy,
    AttributeValue,
    Campaign,
    CampaignSpec,
    Profile,
    RecurringSchedule,
    ScheduledSchedule,
    Segment,
    SenderAccount,
    TextV2Message,
)
from core.personalize import (
    TemplateError,
    referenced_attributes,
    template_errors,
    unknown_variables,
)
from core.rules import RULES, Issue, Tab, message_issues, register, utf16_length
from core.units import UNIT_PATTERN
from core.utm import check_settings

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


SEED = "seed 001"

SEGMENT_REQUIRED = register(
    "segment_required", "a target segment is chosen", f"{SEED}, Launch", Tab.AUDIENCE
)
SEGMENT_UNKNOWN = register(
    "segment_unknown", "the target segment exists", f"{SEED}, Target Audience", Tab.AUDIENCE
)
NO_REACHABLE_PROFILES = register(
    "no_reachable_profiles",
    "at least one profile in the segment has a valid LINE user id",
    f"{SEED}, Missing LINE User IDs",
    Tab.AUDIENCE,
)
PROFILES_UNREADABLE = register(
    "profiles_unreadable", "the segment's profiles file can be read", "contract §4", Tab.AUDIENCE
)
SENDER_ACCOUNT_REQUIRED = register(
    "sender_account_required", "a LINE sender account is selected", f"{SEED}, Launch"
)
SENDER_ACCOUNT_UNKNOWN = register(
    "sender_account_unknown", "the sender account exists", f"{SEED}, Prerequisites"
)
SENDER_ACCOUNT_NOT_IN_WORKSPACE = register(
    "sender_account_not_in_workspace",
    "the sender account is assigned to the operator's workspace",
    f"{SEED}, Campaign Content",
)
TEMPLATE_SYNTAX = register(
    "template_syntax", "Liquid templates compile (the message gives line and column)", "Liquid"
)
TEMPLATE_ERROR = register(
    "template_error", "Liquid templates render for the blank and the longest profile", "Liquid"
)
ATTRIBUTE_NOT_IN_SEGMENT = register(
    "attribute_not_in_segment",
    "every profile.* attribute a template reads has a value on some profile of the segment",
    "Liquid",
)
UNKNOWN_VARIABLE = register(
    "unknown_variable",
    "templates read only profile.*, campaign.id and campaign.name",
    "contract §4",
)
RECURRING_NOT_SUPPORTED = register(
    "recurring_not_supported",
    "recurring sends belong to Always-On campaigns",
    f"{SEED}, Delivery Schedule",
    Tab.SCHEDULE,
)
SCHEDULE_IN_PAST = register(
    "schedule_in_past", "a scheduled time is after the clock", "issue 3", Tab.SCHEDULE
)
TIMEZONE_UNKNOWN = register(
    "timezone_unknown", "the schedule's timezone is an IANA zone", "tzdata", Tab.SCHEDULE
)
TIMEZONE_OFFSET_MISMATCH = register(
    "timezone_offset_mismatch",
    "the scheduled time's UTC offset is its zone's offset at that moment",
    "tzdata",
    Tab.SCHEDULE,
)
MAX_ATTEMPTS_OUT_OF_RANGE = register(
    "max_attempts_out_of_range", "1 to 10 attempts", "line-messaging-api.md §1.6", Tab.ACTIVATION
)
INITIAL_BACKOFF_OUT_OF_RANGE = register(
    "initial_backoff_out_of_range",
    "the first wait is more than 0 seconds",
    "docs/validation.md",
    Tab.ACTIVATION,
)
INITIAL_BACKOFF_ABOVE_MAX = register(
    "initial_backoff_above_max",
    "the first wait is not longer than the longest wait",
    "docs/validation.md",
    Tab.ACTIVATION,
)
MAX_BACKOFF_OUT_OF_RANGE = register(
    "max_backoff_out_of_range",
    "the longest wait is more than 0 and at most 3600 seconds",
    "line-messaging-api.md §1.6",
    Tab.ACTIVATION,
)
AGGREGATION_UNIT_INVALID = register(
    "aggregation_unit_invalid",
    "the aggregation unit name matches ^[A-Za-z0-9_]{1,30}$",
    "line-messaging-api.md §1.5",
    Tab.ACTIVATION,
)

MAX_ATTEMPTS = 10
MAX_BACKOFF_S = 3600.0
RETRY_KEY_LIFETIME_S = 24 * 3600
"""LINE keeps a retry key this long; a retry after it is a new request (a second delivery)."""


def longest_retry_wait_s(policy: ActivationPolicy) -> float:
    """The most a send can spend waiting between its attempts (exponential, capped)."""
    total, wait = 0.0, policy.initial_backoff_s
    remaining = max(0, policy.max_attempts - 1)
    while remaining and 0 < wait < policy.max_backoff_s:
        total, wait, remaining = total + wait, wait * 2, remaining - 1
    return total + remaining * policy.max_backoff_s


# --- entry points ------------------------------------------------------------------------------


def validate_campaign(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    """Every problem that blocks a launch, in tab order."""
    segment = _segment(spec, ctx)
    issues: list[Issue] = []
    issues += _audience(spec, ctx)
    summary, summary_issues = _summary(spec, segment)
    issues += summary_issues
    issues += _sender(spec, ctx)
    issues += _messages(spec, ctx, summary)
    issues += _attributes_not_in_segment(spec, summary)
    issues += _schedule(spec, ctx)
    issues += _activation(spec)
    issues += _utm(spec, ctx)
    return issues


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


def _issue(code: str, field_path: str, message: str) -> Issue:
    return Issue(tab=RULES[code].tab, field=field_path, code=code, message=message)


# --- Target Audience ---------------------------------------------------------------------------


def _segment(spec: CampaignSpec, ctx: ValidationContext) -> Segment | None:
    if spec.audience is None:
        return None
    return ctx.segments.get(spec.audience.key)


def _audience(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    audience = spec.audience
    if audience is None or not audience.segment.strip():
        return [_issue(SEGMENT_REQUIRED, "audience.segment", "choose a target segment")]
    if audience.key not in ctx.segments:
        return [
            _issue(
                SEGMENT_UNKNOWN,
                "audience.segment",
                f"segment {audience.segment!r} of parent segment {audience.parent_segment!r} "
                "does not exist",
            )
        ]
    return []


@dataclass(frozen=True)
class Longest:
    """An attribute's longest value among reachable profiles, by two measures."""

    in_text: AttributeValue
    """Longest in textV2 text: UTF-16 code units, braces counted twice (they are escaped)."""
    in_url: AttributeValue
    """Longest once percent-encoded (what `url_encode` makes of it in a link)."""


@dataclass(frozen=True)
class SegmentSummary:
    reachable: int
    """Profiles with a valid LINE user id (counted to the end only when attributes are used)."""
    longest: Mapping[str, Longest]
    attribute_names: frozenset[str] = frozenset()
    """Attribute names the first reachable profiles carry, to suggest one for a misspelling."""


def _text_measure(value: str) -> int:
    return utf16_length(value) + value.count("{") + value.count("}")


_TEXT_GROWTH = 3
"""A character is at most 2 UTF-16 code units, or a brace that escaping doubles."""
_URL_GROWTH = 12
"""A character is at most 4 UTF-8 bytes, each `%XX` once percent-encoded."""
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~\-]*")


def _url_measure(value: str) -> int:
    if _UNRESERVED.fullmatch(value):  # the common case, and 20 times cheaper than quote()
        return len(value)
    return len(quote(value, safe=""))


def _as_text(value: AttributeValue) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_NAME_SAMPLE = 1000


_DISTINCT_REMEMBERED = 10_000
"""Values remembered per attribute as already measured (a MB or so at most); past that, values
not among them are measured each time, as every value was before."""


class _LongestValues:
    """The longest value seen per attribute, by both measures; one value each, no history beyond
    the distinct values already measured (a rank or a prefecture repeats across a million rows:
    a set lookup instead of two measures cut the summary's own work to a third)."""

    def __init__(self, attributes: frozenset[str]) -> None:
        self.attributes = attributes
        self.best: dict[str, list[Any]] = {}  # name -> [text value, text size, url value, size]
        self._measured: dict[str, set[str]] = {name: set() for name in attributes}

    def add(self, values: Mapping[str, AttributeValue]) -> None:
        best = self.best
        measured = self._measured
        for name in self.attributes:
            value = values.get(name)
            if value is None:
                continue
            text = _as_text(value)
            known = measured[name]
            if text in known:
                continue  # measured already: it cannot beat itself
            if len(known) < _DISTINCT_REMEMBERED:
                known.add(text)
            current = best.get(name)
            if current is None:
                best[name] = [value, _text_measure(text), value, _url_measure(text)]
                continue
            if len(text) * _TEXT_GROWTH <= current[1] and len(text) * _URL_GROWTH <= current[3]:
                continue  # cannot beat either
            text_size = _text_measure(text)
            if text_size > current[1]:
                current[0], current[1] = value, text_size
            url_size = _url_measure(text)
            if url_size > current[3]:
                current[2], current[3] = value, url_size

    def result(self) -> dict[str, Longest]:
        return {name: Longest(in_text=b[0], in_url=b[2]) for name, b in self.best.items()}


class ProfileLike(Protocol):
    """A profile as the summary reads it: a `Profile` or an `AudienceRow` (cheaper to stream)."""

    @property
    def line_user_id(self) -> str | None: ...

    @property
    def attributes(self) -> Mapping[str, AttributeValue]: ...


def summarise_profiles(
    profiles: Iterable[ProfileLike], attributes: frozenset[str]
) -> SegmentSummary:
    """One streaming pass: how many profiles are reachable, and the longest value per attribute.

    Only reachable profiles (a valid LINE user id) receive messages, so only their values count;
    while none has been seen, every profile's values are kept as a fallback, so that a content
    problem is still reported when the audience is broken too. Holds the longest value per
    attribute and at most `_DISTINCT_REMEMBERED` values already measured, whatever the number of
    profiles. With no attributes to measure, stops at the first reachable profile.
    """
    reachable = 0
    receiving, everyone = _LongestValues(attributes), _LongestValues(attributes)
    names: set[str] = set()
    for profile in profiles:
        user_id = profile.line_user_id
        if not user_id or not LINE_USER_ID.match(user_id):
            if not reachable:
                everyone.add(profile.attributes)
            continue
        reachable += 1
        if not attributes:
            break
        if reachable <= _NAME_SAMPLE:
            names.update(profile.attributes)
        receiving.add(profile.attributes)
    longest = receiving.result() if reachable else everyone.result()
    return SegmentSummary(reachable=reachable, longest=longest, attribute_names=frozenset(names))


@lru_cache(maxsize=16)
def _file_summary(
    path: str, size: int, mtime_ns: int, attributes: frozenset[str]
) -> SegmentSummary:
    """A profiles file's summary, cached by its identity so re-validating does not re-read it."""
    segment = Segment(parent_segment="", segment="", profiles_file=path)
    return summarise_profiles(iter_rows(segment, attributes=bool(attributes)), attributes)


def _summary(
    spec: CampaignSpec, segment: Segment | None
) -> tuple[SegmentSummary | None, list[Issue]]:
    if segment is None:
        return None, []
    attributes = frozenset(_referenced_attributes(spec))
    try:
        if segment.profiles_file is not None:
            stat = Path(segment.profiles_file).stat()
            summary = _file_summary(
                segment.profiles_file, stat.st_size, stat.st_mtime_ns, attributes
            )
        else:
            summary = summarise_profiles(iter_rows(segment), attributes)
    except InputError as exc:
        return None, [_issue(PROFILES_UNREADABLE, "audience.segment", exc.describe())]
    except OSError as exc:
        return None, [
            _issue(
                PROFILES_UNREADABLE,
                "audience.segment",
                f"{segment.profiles_file}: cannot read: {exc.strerror}",
            )
        ]
    if summary.reachable == 0:
        return summary, [
            _issue(
                NO_REACHABLE_PROFILES,
                "audience.segment",
                f"no profile in segment {segment.segment!r} has a valid LINE user id, so every "
                "profile would be excluded (missing_recipient_id or invalid_recipient_id)",
            )
        ]
    return summary, []


# --- Campaign Content ----------------------------------------------------------------------------


def _sender(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    if not spec.sender_account:
        return [_issue(SENDER_ACCOUNT_REQUIRED, "sender_account", "choose a LINE sender account")]
    account = ctx.accounts.get(spec.sender_account)
    if account is None:
        return [
            _issue(
                SENDER_ACCOUNT_UNKNOWN,
                "sender_account",
                f"sender account {spec.sender_account!r} does not exist",
            )
        ]
    if ctx.workspace not in account.workspaces:
        return [
            _issue(
                SENDER_ACCOUNT_NOT_IN_WORKSPACE,
                "sender_account",
                f"sender account {account.name!r} is not assigned to workspace {ctx.workspace!r}",
            )
        ]
    return []


def _attributes_not_in_segment(spec: CampaignSpec, summary: SegmentSummary | None) -> list[Issue]:
    """A `profile.*` attribute that no reachable profile has: a misspelling, or the wrong
    segment. Every message would render it as its default (or empty)."""
    if summary is None or not summary.reachable:
        return []
    issues = []
    known = sorted(summary.attribute_names)
    listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    having = f" (its profiles have: {listed})" if known else ""
    for template in template_fields(spec):
        for name in sorted(referenced_attributes(template.text)):
            if name in summary.longest:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean profile.{close[0]}?" if close else ""
            issues.append(
                _issue(
                    ATTRIBUTE_NOT_IN_SEGMENT,
                    template.path,
                    f"no profile in the segment has a value for profile.{name}, so every "
                    f"message would show its default or nothing{hint}{having}",
                )
            )
    return issues


def _referenced_attributes(spec: CampaignSpec) -> set[str]:
    names: set[str] = set()
    for template in template_fields(spec):
        names |= referenced_attributes(template.text)
    return names


_MESSAGE_INDEX = re.compile(r"^messages\[(\d+)\]")


def _message_index(path: str) -> int | None:
    match = _MESSAGE_INDEX.match(path)
    return int(match.group(1)) if match else None


def _location(line: int | None, column: int | None) -> str:
    if line is None:
        return ""
    return f" at line {line}" + (f", column {column}" if column else "")


def _template_issues(spec: CampaignSpec) -> tuple[list[Issue], set[int]]:
    """Syntax errors and unknown variables, and the messages that cannot be rendered at all."""
    issues: list[Issue] = []
    broken: set[int] = set()
    for template in template_fields(spec):
        for error in template_errors(template.text):
            broken.add(template.message)
            issues.append(
                _issue(
                    TEMPLATE_SYNTAX,
                    template.path,
                    f"Liquid syntax error{_location(error.line, error.column)}: {error.message}",
                )
            )
        for name in sorted(unknown_variables(template.text)):
            issues.append(
                _issue(
                    UNKNOWN_VARIABLE,
                    template.path,
                    f"{{{{ {name} }}}} always renders empty: templates can read profile.* "
                    "(for example profile.first_name), campaign.id and campaign.name",
                )
            )
    return issues, broken


@dataclass(frozen=True)
class _Recipient:
    """A profile validation renders for, and how to describe it in a message."""

    profile: Profile | None
    attributes: tuple[str, ...] = ()


def _recipients(summary: SegmentSummary | None) -> list[_Recipient]:
    recipients = [_Recipient(None)]
    if summary is None or not summary.longest:
        return recipients
    names = tuple(sorted(summary.longest))
    in_text = {name: summary.longest[name].in_text for name in names}
    in_url = {name: summary.longest[name].in_url for name in names}
    for values in (in_text, in_url) if in_url != in_text else (in_text,):
        profile = Profile(profile_id="(longest values)", attributes=values)
        recipients.append(_Recipient(profile, names))
    return recipients


_STAND_IN = TextV2Message(text="-")
"""Stands in for a message whose template does not compile, so the others still get checked."""


def _render(
    spec: CampaignSpec, recipient: _Recipient, campaign_id: str | None, broken: set[int]
) -> tuple[list[dict[str, Any]] | None, list[Issue], set[int]]:
    """The rendered bundle (None when it cannot render), render errors, and what stood in."""
    stand_ins = set(broken)
    errors: list[Issue] = []
    for _attempt in range(len(spec.messages) + 1):
        messages = [
            _STAND_IN if index in stand_ins else message
            for index, message in enumerate(spec.messages)
        ]
        candidate = spec.model_copy(update={"messages": messages})
        try:
            return (
                render_bundle(candidate, recipient.profile, campaign_id=campaign_id),
                errors,
                (stand_ins),
            )
        except TemplateError as error:
            where = error.field or "messages"
            index = _message_index(where)
            errors.append(
                _issue(
                    TEMPLATE_ERROR,
                    where,
                    f"Liquid cannot render this{_location(error.line, error.column)}: "
                    f"{error.message}",
                )
            )
            if index is None or index in stand_ins:
                break
            stand_ins.add(index)
    return None, errors, stand_ins


def _for_whom(issue: Issue, recipient: _Recipient, spec: CampaignSpec) -> Issue:
    """Say that an issue appears only for the longest profile, naming the attributes involved."""
    used_here: set[str] = set()
    used_in_message: set[str] = set()
    index = _message_index(issue.field)
    for template in template_fields(spec):
        used = referenced_attributes(template.text) & set(recipient.attributes)
        if template.path == issue.field:
            used_here |= used
        if template.message == index:
            used_in_message |= used
    names = sorted(used_here or used_in_message or set(recipient.attributes))
    if names:
        listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
        who = f"for the profile with the longest {listed}"
    else:
        who = "for the segment's longest attribute values"
    return issue.model_copy(update={"message": f"{who}, {issue.message}"})


def _messages(
    spec: CampaignSpec, ctx: ValidationContext, summary: SegmentSummary | None
) -> list[Issue]:
    issues, broken = _template_issues(spec)
    seen: set[tuple[str, str]] = {(issue.field, issue.code) for issue in issues}
    for recipient in _recipients(summary):
        bundle, render_errors, stand_ins = _render(spec, recipient, ctx.campaign_id, broken)
        found = list(render_errors)
        if bundle is not None:
            found += [
                issue
                for issue in message_issues(bundle)
                if _message_index(issue.field) not in stand_ins
            ]
        for issue in found:
            if (issue.field, issue.code) in seen:
                continue
            issues.append(issue if recipient.profile is None else _for_whom(issue, recipient, spec))
        seen |= {(issue.field, issue.code) for issue in found}
    return sorted(issues, key=lambda issue: _message_index(issue.field) or 0)


# --- Delivery Schedule ---------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


def _schedule(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    schedule = spec.schedule
    if isinstance(schedule, RecurringSchedule):
        return [
            _issue(
                RECURRING_NOT_SUPPORTED,
                "schedule.type",
                "recurring sends belong to Always-On campaigns; choose Send Immediately or "
                "Schedule for Later",
            )
        ]
    if not isinstance(schedule, ScheduledSchedule):
        return []
    issues: list[Issue] = []
    at = schedule.at
    if at <= ctx.now:
        now = ctx.now.astimezone(at.tzinfo)
        issues.append(
            _issue(
                SCHEDULE_IN_PAST,
                "schedule.at",
                f"scheduled time {at.isoformat()} is not after now "
                f"({now.isoformat(timespec='seconds')}); choose a later time or Send Immediately",
            )
        )
    if schedule.timezone is not None:
        zone = _zone(schedule.timezone)
        if zone is None:
            issues.append(
                _issue(
                    TIMEZONE_UNKNOWN,
                    "schedule.timezone",
                    f"{schedule.timezone!r} is not an IANA time zone (for example Asia/Tokyo)",
                )
            )
        else:
            expected = at.astimezone(zone).utcoffset()
            if expected != at.utcoffset():
                issues.append(
                    _issue(
                        TIMEZONE_OFFSET_MISMATCH,
                        "schedule.at",
                        f"{at.isoformat()} has offset {_offset(at.utcoffset())}, but "
                        f"{schedule.timezone} is at {_offset(expected)} then; fix the time or "
                        "the zone",
                    )
                )
    return issues


def _offset(delta: Any) -> str:
    if delta is None:
        return "no offset"
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


# --- Activation ----------------------------------------------------------------------------------


def _activation(spec: CampaignSpec) -> list[Issue]:
    policy = spec.activation
    issues: list[Issue] = []
    if not 1 <= policy.max_attempts <= MAX_ATTEMPTS:
        issues.append(
            _issue(
                MAX_ATTEMPTS_OUT_OF_RANGE,
                "activation.max_attempts",
                f"max_attempts is {policy.max_attempts}; allowed are 1 to {MAX_ATTEMPTS}",
            )
        )
    initial, longest = policy.initial_backoff_s, policy.max_backoff_s
    initial_ok = math.isfinite(initial) and initial > 0
    longest_ok = math.isfinite(longest) and 0 < longest <= MAX_BACKOFF_S
    if not initial_ok:
        issues.append(
            _issue(
                INITIAL_BACKOFF_OUT_OF_RANGE,
                "activation.initial_backoff_s",
                f"initial_backoff_s is {initial:g}; it must be more than 0 seconds",
            )
        )
    if not longest_ok:
        issues.append(
            _issue(
                MAX_BACKOFF_OUT_OF_RANGE,
                "activation.max_backoff_s",
                f"max_backoff_s is {longest:g}; allowed are more than 0 up to {MAX_BACKOFF_S:g} "
                "seconds (LINE keeps a retry key 24 hours, so retries must end well inside it)",
            )
        )
    if initial_ok and math.isfinite(longest) and initial > longest:
        issues.append(
            _issue(
                INITIAL_BACKOFF_ABOVE_MAX,
                "activation.initial_backoff_s",
                f"initial_backoff_s is {initial:g}, more than max_backoff_s ({longest:g})",
            )
        )
    unit = spec.aggregation_unit if isinstance(spec, Campaign) else None
    if unit is not None and not UNIT_PATTERN.match(unit):
        issues.append(
            _issue(
                AGGREGATION_UNIT_INVALID,
                "aggregation_unit",
                f"aggregation unit {unit!r} ({len(unit)} characters) must be 1 to 30 of "
                "A-Z a-z 0-9 _",
            )
        )
    return issues


# --- UTM Tracking --------------------------------------------------------------------------------


def _utm(spec: CampaignSpec, ctx: ValidationContext) -> list[Issue]:
    problems = check_settings(
        spec.utm, campaign_id=campaign_id_of(spec, ctx.campaign_id), campaign_name=spec.name
    )
    return [
        Issue(tab=Tab.UTM, field=problem.field, code=problem.code, message=problem.message)
        for problem in problems
    ]


def issues_by_tab(issues: Sequence[Issue]) -> Iterator[tuple[Tab, list[Issue]]]:
    """Issues grouped by tab, tabs in the seeds' order; tabs without issues are left out."""
    for tab in Tab:
        on_tab = [issue for issue in issues if issue.tab is tab]
        if on_tab:
            yield tab, on_tab
