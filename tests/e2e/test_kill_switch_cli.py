"""`lcc kill-switch` from a shell: the account's Active campaigns suspended with the reason, its
Planned ones held, other accounts untouched; an unknown account or no reason changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.fixture import load_fixture
from core.models import CampaignState, ScheduledSchedule
from core.service import HELD, Services
from core.settings import load_settings
from tests.conftest import FIXTURES
from tests.e2e.test_import_cli import lcc


def world(data_dir: Path) -> tuple[Services, str, str, str]:
    """(services, an Active and a Planned campaign of acme_oa, an Active one of kaze)."""
    services = Services.open(load_settings(data_dir=data_dir))
    welcome = load_fixture(FIXTURES / "welcome_text.json").fixture
    kaze = load_fixture(FIXTURES / "imagemap_sale.json").fixture
    later = ScheduledSchedule(
        at=datetime(2099, 12, 24, 20, 0, tzinfo=ZoneInfo("Asia/Tokyo")), timezone="Asia/Tokyo"
    )
    planned_spec = welcome.campaign.model_copy(update={"name": "later", "schedule": later})
    active, planned, other = services.import_fixtures(
        [
            welcome,
            welcome.model_copy(update={"campaign": planned_spec}),
            kaze,
        ]
    )
    assert active is not None and planned is not None and other is not None

    async def launch() -> None:
        for campaign in (active, planned, other):
            await services.launch_async(campaign.id, actor="test")  # not delivered

    asyncio.run(launch())
    return services, active.id, planned.id, other.id


def test_the_kill_switch_from_a_shell(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, active, planned, other = world(data)
    assert services.store.campaigns.get(planned).state is CampaignState.PLANNED
    account = services.store.campaigns.get(active).sender_account
    assert account is not None

    result = lcc("kill-switch", account, "--reason", "wrong price", "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "account": account,
        "suspended": [active],
        "held": [planned],
    }
    after = Services.open(load_settings(data_dir=data)).store
    stopped = after.campaigns.get(active)
    assert stopped.state is CampaignState.SUSPENDED
    assert (stopped.suspend_reason or "").endswith(": wrong price")
    assert [flag.kind for flag in after.flags.for_campaign(planned)] == [HELD]
    assert after.campaigns.get(other).state is CampaignState.ACTIVE

    again = lcc("kill-switch", account, "--reason", "still", data_dir=data)
    assert again.returncode == 0
    assert "0 Active campaign(s) suspended, 1 Planned held" in again.stdout


def test_an_unknown_account_or_no_reason_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, active, _planned, _other = world(data)
    account = services.store.campaigns.get(active).sender_account
    assert account is not None
    unknown = lcc("kill-switch", "nobody_oa", "--reason", "x", data_dir=data)
    assert unknown.returncode == 2 and "nobody_oa" in unknown.stderr
    blank = lcc("kill-switch", account, "--reason", "  ", data_dir=data)
    assert blank.returncode == 2 and "--reason" in blank.stderr
    missing = lcc("kill-switch", account, data_dir=data)
    assert missing.returncode == 2  # argparse: --reason is required
    store = Services.open(load_settings(data_dir=data)).store
    assert store.campaigns.get(active).state is CampaignState.ACTIVE
