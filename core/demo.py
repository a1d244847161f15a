"""Seeding a demo data dir from the fixtures, so a new user sees the whole product at once.

Every fixture's world and campaign is imported. With `deliver=True` the campaigns are also run
against the demo's in-process sandbox, each with its fixture's sandbox faults, the way its
fixture expects (launched and delivered, planned, or refused), so the console opens on Finished,
Suspended, Planned and Draft campaigns with real delivery logs and reports.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta
from pathlib import Path

from core.errors import InputError, LccError
from core.fixture import LoadedFixture, load_fixture
from core.models import CampaignState
from core.sandbox.faults import SandboxSpec
from core.service import Services, run_sync

log = logging.getLogger(__name__)

DEMO_ACTOR = "demo"
DEMO_TAG_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
"""A LINE Tag id for the demo's conversion job (the sandbox takes any)."""


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


def seed_conversions(services: Services, sample: Path, folder: Path) -> str | None:
    """A nightly conversion export job, run once against the sandbox, so the Conversions screen
    opens on a job with a run and a next run. Its file is `sample` with the events moved to
    the last hours (LINE takes events of the last 7 days only). Returns the job's name, or None
    when the sample cannot be read."""
    from core.export_jobs import ExportJob, ExportJobs, run_job

    try:
        rows = list(csv.reader(io.StringIO(sample.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        log.warning("demo: no conversion job: %s: %s", sample, exc)
        return None
    now = services.clock.now()
    if rows and "event_timestamp" in rows[0]:
        column = rows[0].index("event_timestamp")
        for number, row in enumerate(rows[1:], start=1):
            if len(row) > column:
                row[column] = str(int((now - timedelta(hours=number)).timestamp()))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "orders.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    job = ExportJob(
        name="nightly_orders",
        file=str(path),
        tag_id=DEMO_TAG_ID,
        schedule="0 3 * * *",
        timezone="Asia/Tokyo",
        delay_s=15 * 60,
        created_at=now,
        baseline=now,
    )
    ExportJobs(services.store).add(job, replace=True)
    sandbox = services.sandbox if services.settings.capi_is_sandbox else None
    try:
        run_sync(lambda: run_job(services.store, services.settings, job.name, now, sandbox=sandbox))
    except LccError as exc:
        log.info("demo: the conversion job did not run: %s", exc)
    return job.name
