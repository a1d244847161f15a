"""The campaign state machine: an explicit transition table with guards.

Every change of state goes through `apply`, which refuses what the table does not allow with a
typed error naming the state and the action, and returns the record of the transition so that the
store can keep the campaign's history (time, actor, reason).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from core.errors import IllegalTransition
from core.models import Campaign, CampaignState, Transition

Draft = CampaignState.DRAFT
Planned = CampaignState.PLANNED
Active = CampaignState.ACTIVE
Finished = CampaignState.FINISHED
Suspended = CampaignState.SUSPENDED


class Action(enum.StrEnum):
    LAUNCH = "launch"
    """Send now: Draft -> Active."""
    SCHEDULE = "schedule"
    """Send later: Draft -> Planned."""
    UNSCHEDULE = "unschedule"
    """Back to editing: Planned -> Draft."""
    START = "start"
    """The scheduled time has come: Planned -> Active."""
    FINISH = "finish"
    """Every request has an outcome: Active -> Finished."""
    CANCEL = "cancel"
    """The operator gives up before delivery: Draft/Planned -> Suspended."""
    SUSPEND = "suspend"
    """A fatal error (or the operator) stops it: Planned/Active -> Suspended, with the reason."""
    RESUME = "resume"
    """Carry on after a suspension, for a campaign that was launched: Suspended -> Active."""


TRANSITIONS: dict[tuple[CampaignState, Action], CampaignState] = {
    (Draft, Action.LAUNCH): Active,
    (Draft, Action.SCHEDULE): Planned,
    (Planned, Action.UNSCHEDULE): Draft,
    (Planned, Action.START): Active,
    (Active, Action.FINISH): Finished,
    (Draft, Action.CANCEL): Suspended,
    (Planned, Action.CANCEL): Suspended,
    (Planned, Action.SUSPEND): Suspended,
    (Active, Action.SUSPEND): Suspended,
    (Suspended, Action.RESUME): Active,
}

EDITABLE_STATES = frozenset({Draft})
"""Content can change only while nothing is promised to anyone."""


def allowed_actions(campaign: Campaign) -> list[Action]:
    """Actions whose table entry exists and whose guard passes, in declaration order."""
    return [action for action in Action if _refusal(campaign, action) is None]


def can(campaign: Campaign, action: Action) -> bool:
    return _refusal(campaign, action) is None


def _refusal(campaign: Campaign, action: Action, reason: str | None = None) -> str | None:
    """Why `action` is refused for `campaign`, or None when it is allowed."""
    if (campaign.state, action) not in TRANSITIONS:
        return ""
    if action is Action.SUSPEND and reason is not None and not reason.strip():
        return "a suspension needs a reason"
    if action is Action.RESUME and campaign.launched_at is None:
        return "it was cancelled before launch; copy it to a new draft instead"
    return None


@dataclass(frozen=True)
class Outcome:
    campaign: Campaign
    transition: Transition


def apply(
    campaign: Campaign,
    action: Action,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
) -> Outcome:
    """The campaign after `action`, and the transition record; the input is not modified."""
    if action is Action.SUSPEND and not (reason and reason.strip()):
        raise IllegalTransition(campaign.state.value, action.value, "a suspension needs a reason")
    refusal = _refusal(campaign, action, reason)
    if refusal is not None:
        raise IllegalTransition(campaign.state.value, action.value, refusal or None)
    target = TRANSITIONS[(campaign.state, action)]
    changes: dict[str, object] = {"state": target, "updated_at": at}
    if action in (Action.LAUNCH, Action.START):
        changes["launched_at"] = at
    if target is Finished:
        changes["finished_at"] = at
    if target is Suspended:
        changes["suspend_reason"] = reason or "cancelled by the operator"
    elif campaign.suspend_reason is not None:
        changes["suspend_reason"] = None
    updated = campaign.model_copy(update=changes)
    record = Transition(
        campaign_id=campaign.id,
        action=action.value,
        from_state=campaign.state,
        to_state=target,
        at=at,
        actor=actor,
        reason=reason,
    )
    return Outcome(updated, record)
