"""Use cases shared by the console, the headless commands and the tests.

Every front door (the TUI, `lcc replay`, `lcc scheduler`) goes through these functions, so a rule
lives in one place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from core import states
from core.clock import Clock, SystemClock
from core.delivery import DeliverySummary, deliver
from core.delivery_log import LogCounts, count_rows
from core.errors import NotFound
from core.fixture import Fixture
from core.line_client import LineClient
from core.models import Campaign, CampaignSpec, SenderAccount, Workspace
from core.sandbox.app import SandboxState, create_app
from core.settings import Settings
from core.store import Store
from core.validation import Issue, ValidationContext, validate_campaign

SANDBOX_BASE_URL = "http://line-sandbox.invalid"


def new_campaign_id() -> str:
    return f"cmp-{secrets.token_hex(6)}"


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    sandbox: SandboxState

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Clock | None = None, sandbox: SandboxState | None = None
    ) -> Services:
        store = Store(settings.data_dir, system_identifier=settings.system_identifier)
        return cls(settings, store, clock or SystemClock(), sandbox or SandboxState())

    # --- the world -----------------------------------------------------------------------

    def current_workspace(self) -> str:
        if self.settings.workspace:
            return self.settings.workspace
        workspaces = self.store.directory.workspaces()
        return workspaces[0].name if workspaces else "default"

    def import_fixture(self, fixture: Fixture) -> Campaign:
        """Store a fixture's accounts and segments, and its campaign as a new Draft."""
        with self.store.transaction():
            self.store.directory.save_workspace(Workspace(name=fixture.workspace))
            for account in fixture.sender_accounts:
                self.store.directory.save_account(account)
            for segment in fixture.segments:
                self.store.directory.save_segment(segment)
            return self.create_campaign(fixture.campaign, workspace=fixture.workspace)

    def create_campaign(self, spec: CampaignSpec, *, workspace: str) -> Campaign:
        now = self.clock.now()
        campaign = Campaign(
            **spec.model_dump(),
            id=new_campaign_id(),
            workspace=workspace,
            created_at=now,
            updated_at=now,
        )
        self.store.campaigns.save(campaign)
        return campaign

    # --- validation ----------------------------------------------------------------------

    def validation_context(
        self, workspace: str, campaign_id: str | None = None
    ) -> ValidationContext:
        return ValidationContext(
            workspace=workspace,
            now=self.clock.now(),
            accounts={a.id: a for a in self.store.directory.accounts()},
            segments={s.key: s for s in self.store.directory.segments()},
            campaign_id=campaign_id,
        )

    def validate(self, campaign: Campaign) -> list[Issue]:
        return validate_campaign(campaign, self.validation_context(campaign.workspace, campaign.id))

    # --- delivery ------------------------------------------------------------------------

    def account_for(self, campaign: Campaign) -> SenderAccount:
        if campaign.sender_account is None:
            raise NotFound(f"campaign {campaign.id} has no sender account")
        account = self.store.directory.account(campaign.sender_account)
        if account is None:
            raise NotFound(f"sender account {campaign.sender_account!r} does not exist")
        return account

    def line_client(self, account: SenderAccount) -> LineClient:
        if self.settings.line_is_sandbox:
            transport = httpx.ASGITransport(app=create_app(self.sandbox))
            return LineClient(SANDBOX_BASE_URL, token_env=account.token_env, transport=transport)
        return LineClient(self.settings.line_api_base, token_env=account.token_env)

    async def run_delivery(self, campaign_id: str, *, actor: str) -> DeliverySummary:
        """Deliver an Active campaign to its audience, then mark it Finished."""
        campaign = self.store.campaigns.get(campaign_id)
        account = self.account_for(campaign)
        client = self.line_client(account)
        try:
            summary = await deliver(self.store, campaign, account, client, self.clock)
        finally:
            await client.aclose()
        self.store.campaigns.transition(
            campaign_id, states.Action.FINISH, at=self.clock.now(), actor=actor
        )
        return summary

    def counts(self, campaign_id: str) -> LogCounts:
        return count_rows(self.store.delivery_log(campaign_id).rows())
