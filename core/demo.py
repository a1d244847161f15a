"""Seeding a demo data dir from the fixtures, so a new user sees the whole product at once.

Every fixture's world and campaign is imported. With `deliver=True` the campaigns are also run
against the demo's in-process sandbox, each with its fixture's sandbox faults, the way its
fixture expects (launched and delivered, planned, or refused), so the console opens on Finished,
Suspended, Planned and Draft campaigns with real delivery logs and reports.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.errors import InputError, LccError
from core.fixture import LoadedFixture, load_fixture
from core.models import CampaignState
from core.sandbox.faults import SandboxSpec
from core.service import Services, run_sync

log = logging.getLogger(__name__)

DEMO_ACTOR = "demo"


def seed_demo(services: Services, fixtures: Path, *, deliver: bool = False) -> list[str]:
    """Import every fixture's world and campaign; returns the campaign ids.

    Without `deliver` every campaign stays a Draft. A fixture that cannot be read is skipped.
    """
    loaded: list[LoadedFixture] = []
    for path in sorted(fixtures.glob("*.json")):
        try:
            loaded.append(load_fixture(path))
        except InputError as exc:
            log.warning("demo: skipping %s: %s", path.name, exc)
    ids = [services.import_fixture(item.fixture).id for item in loaded]
    if deliver:
        run_sync(lambda: _deliver_all(services, list(zip(ids, loaded, strict=True))))
    return ids


async def _deliver_all(services: Services, campaigns: list[tuple[str, LoadedFixture]]) -> None:
    for campaign_id, item in campaigns:
        expect = item.fixture.expect
        if expect is not None and expect.state is CampaignState.DRAFT:
            continue
        services.sandbox.set_spec(item.fixture.sandbox)
        services.sandbox.usage.clear()  # each fixture's quota story starts its month afresh
        try:
            campaign = await services.launch_async(campaign_id, actor=DEMO_ACTOR)
            if campaign.state is CampaignState.ACTIVE:
                await services.deliver(campaign_id, actor=DEMO_ACTOR)
        except LccError as exc:  # a refused launch stays a Draft, as it would for an operator
            log.info("demo: %s stays as it is: %s", item.path.name, exc)
        finally:
            services.release_claim(campaign_id)
    services.sandbox.set_spec(SandboxSpec())
