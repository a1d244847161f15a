"""Use cases shared by every front door: editing drafts, launching, refusing."""

from __future__ import annotations

import pytest

from core import states
from core.errors import IllegalTransition
from core.fixture import load_fixture
from core.models import CampaignState, TextV2Message
from core.service import LaunchRefused, Services
from core.settings import Settings
from tests.conftest import FIXTURES


def welcome(settings: Settings) -> tuple[Services, str]:
    services = Services.open(settings)
    campaign = services.import_fixture(load_fixture(FIXTURES / "welcome_text.json").fixture)
    return services, campaign.id


def test_update_draft_changes_content_and_launch_freezes_it(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.update_draft(
        campaign_id,
        lambda spec: spec.model_copy(update={"messages": [TextV2Message(text="Hello")]}),
    )
    stored = services.store.campaigns.get(campaign_id)
    assert isinstance(stored.messages[0], TextV2Message) and stored.messages[0].text == "Hello"
    assert services.launch(campaign_id, actor="op").state is CampaignState.ACTIVE
    with pytest.raises(IllegalTransition, match="cannot edit a campaign that is Active"):
        services.update_draft(campaign_id, lambda spec: spec)


def test_launch_refuses_an_invalid_campaign_and_leaves_it_a_draft(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.update_draft(campaign_id, lambda spec: spec.model_copy(update={"messages": []}))
    with pytest.raises(LaunchRefused) as caught:
        services.launch(campaign_id, actor="op")
    assert [issue.code for issue in caught.value.issues] == ["messages_required"]
    assert services.store.campaigns.get(campaign_id).state is CampaignState.DRAFT


async def test_deliver_finishes_and_records_the_history(settings: Settings) -> None:
    services, campaign_id = welcome(settings)
    services.launch(campaign_id, actor="op")
    seen = []
    summary = await services.deliver(campaign_id, actor="op", progress=seen.append)
    assert summary.delivered == 2
    history = services.store.transitions.for_campaign(campaign_id)
    assert [t.action for t in history] == [states.Action.LAUNCH, states.Action.FINISH]
