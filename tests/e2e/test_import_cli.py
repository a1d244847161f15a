"""`lcc import`: fixtures into a data dir of one's own, so the console has accounts, segments and
Drafts to work with; all or nothing, a taken name refused, nothing stored from a bad file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.models import CampaignState
from core.service import Services
from core.settings import load_settings
from tests.conftest import FIXTURES

LCC = [sys.executable, "-m", "tui"]


def lcc(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LCC_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=env, timeout=120)


def stored(data_dir: Path) -> Services:
    return Services.open(load_settings(data_dir=data_dir))


def test_import_gives_the_console_a_directory_and_drafts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    welcome, large = FIXTURES / "welcome_text.json", FIXTURES / "large_csv_audience.json"
    result = lcc("import", str(welcome), str(large), "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["data_dir"] == str(data.resolve())
    first, second = outcome["imported"]
    assert first["workspace"] == "marketing-jp" and first["sender_accounts"] == ["acme_oa"]
    assert first["segments"] == [{"parent_segment": "All Customers", "segment": "New Friends"}]

    services = stored(data)
    directory = services.store.directory
    assert [w.name for w in directory.workspaces()] == ["marketing-jp"]
    assert {a.id for a in directory.accounts("marketing-jp")} >= {"acme_oa"}
    draft = services.store.campaigns.get(first["campaign_id"])
    assert draft.state is CampaignState.DRAFT and draft.name == "welcome_friends"
    assert services.validate(draft) == []  # ready to launch from the console
    # a CSV audience is stored with its absolute path: the console finds it from anywhere
    segment = services.segment_for(services.store.campaigns.get(second["campaign_id"]))
    assert segment.profiles_file is not None and Path(segment.profiles_file).is_absolute()

    again = lcc("import", str(welcome), data_dir=data)  # the name is taken now
    assert again.returncode == 2
    assert "welcome_friends" in again.stderr and "already exists" in again.stderr
    assert len(stored(data).store.campaigns.all()) == 2  # nothing more was stored

    accounts_only = lcc("import", "--no-campaign", str(welcome), data_dir=data)
    assert accounts_only.returncode == 0, accounts_only.stderr
    assert "1 sender account · 1 segment" in accounts_only.stdout
    assert "as Draft" not in accounts_only.stdout
    assert len(stored(data).store.campaigns.all()) == 2


def test_a_bad_file_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    broken = tmp_path / "broken.json"
    broken.write_text('{"fixture_version": 1, "workspace": ')
    result = lcc("import", str(FIXTURES / "welcome_text.json"), str(broken), data_dir=data)
    assert result.returncode == 2
    assert "broken.json" in result.stderr and "Traceback" not in result.stderr
    assert stored(data).store.campaigns.all() == []
    assert stored(data).store.directory.workspaces() == []
