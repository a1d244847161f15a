"""The state machine, exhaustively: every state x action, legal and illegal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import states
from core.errors import IllegalTransition
from core.models import Campaign, CampaignState
from core.states import Action

NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)

EXPECTED: dict[tuple[CampaignState, Action], CampaignState] = {
    (CampaignState.DRAFT, Action.LAUNCH): CampaignState.ACTIVE,
    (CampaignState.DRAFT, Action.SCHEDULE): CampaignState.PLANNED,
    (CampaignState.PLANNED, Action.UNSCHEDULE): CampaignState.DRAFT,
    (CampaignState.PLANNED, Action.START): CampaignState.ACTIVE,
    (CampaignState.ACTIVE, Action.FINISH): CampaignState.FINISHED,
    (CampaignState.DRAFT, Action.CANCEL): CampaignState.SUSPENDED,
    (CampaignState.PLANNED, Action.CANCEL): CampaignState.SUSPENDED,
    (CampaignState.PLANNED, Action.SUSPEND): CampaignState.SUSPENDED,
    (CampaignState.ACTIVE, Action.SUSPEND): CampaignState.SUSPENDED,
    (CampaignState.SUSPENDED, Action.RESUME): CampaignState.ACTIVE,
}


def campaign(state: CampaignState, *, launched: bool = True) -> Campaign:
    return Campaign(
        id="cmp-1",
        name="spring",
        workspace="ws",
        state=state,
        created_at=NOW,
        updated_at=NOW,
        launched_at=NOW if launched else None,
    )


@pytest.mark.parametrize("state", list(CampaignState))
@pytest.mark.parametrize("action", list(Action))
def test_every_state_and_action(state: CampaignState, action: Action) -> None:
    subject = campaign(state)
    reason = "LINE said 401" if action is Action.SUSPEND else None
    if (state, action) in EXPECTED:
        outcome = states.apply(subject, action, at=NOW, actor="op", reason=reason)
        assert outcome.campaign.state is EXPECTED[(state, action)]
        assert outcome.transition.from_state is state
        assert outcome.transition.to_state is EXPECTED[(state, action)]
        assert outcome.transition.actor == "op"
        assert outcome.transition.at == NOW
        assert outcome.transition.action == action.value
        assert subject.state is state, "apply must not modify its input"
    else:
        with pytest.raises(IllegalTransition) as caught:
            states.apply(subject, action, at=NOW, actor="op", reason=reason)
        assert caught.value.state == state.value
        assert caught.value.action == action.value
        assert state.value in str(caught.value) and action.value in str(caught.value)


def test_table_is_exactly_the_design() -> None:
    assert states.TRANSITIONS == EXPECTED


def test_suspend_needs_a_reason_and_keeps_it() -> None:
    with pytest.raises(IllegalTransition, match="reason"):
        states.apply(campaign(CampaignState.ACTIVE), Action.SUSPEND, at=NOW, actor="engine")
    outcome = states.apply(
        campaign(CampaignState.ACTIVE),
        Action.SUSPEND,
        at=NOW,
        actor="engine",
        reason="You have reached your monthly limit.",
    )
    assert outcome.campaign.suspend_reason == "You have reached your monthly limit."
    assert outcome.transition.reason == "You have reached your monthly limit."


def test_resume_only_after_launch() -> None:
    cancelled = campaign(CampaignState.SUSPENDED, launched=False)
    assert not states.can(cancelled, Action.RESUME)
    with pytest.raises(IllegalTransition, match="cancelled before launch"):
        states.apply(cancelled, Action.RESUME, at=NOW, actor="op")
    resumed = states.apply(campaign(CampaignState.SUSPENDED), Action.RESUME, at=NOW, actor="op")
    assert resumed.campaign.suspend_reason is None


def test_launch_and_start_stamp_the_launch_time_and_finish_the_end() -> None:
    draft = campaign(CampaignState.DRAFT, launched=False)
    active = states.apply(draft, Action.LAUNCH, at=NOW, actor="op").campaign
    assert active.launched_at == NOW
    done = states.apply(active, Action.FINISH, at=NOW, actor="engine").campaign
    assert done.finished_at == NOW


def test_allowed_actions_follow_the_table() -> None:
    assert states.allowed_actions(campaign(CampaignState.DRAFT, launched=False)) == [
        Action.LAUNCH,
        Action.SCHEDULE,
        Action.CANCEL,
    ]
    assert states.allowed_actions(campaign(CampaignState.FINISHED)) == []
