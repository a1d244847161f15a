"""Use cases shared by the console, the headless commands and the tests.

Every front door (the TUI, `lcc replay`, `lcc scheduler`) goes through these functions, so a rule
lives in one place.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx

from core import states
from core.clock import Clock, SystemClock
from core.delivery import DeliveryProgress, DeliverySummary, deliver
from core.delivery_log import LogCounts, count_rows
from core.errors import IllegalTransition, InputError, LccError, NotFound
from core.fixture import Fixture
from core.line_client import LineClient
from core.models import Campaign, CampaignSpec, ScheduledSchedule, SenderAccount, Workspace
from core.sandbox.app import SandboxState, create_app
from core.settings import Settings
from core.store import Store
from core.validation import Issue, ValidationContext, validate_campaign

SANDBOX_BASE_URL = "http://line-sandbox.invalid"


class LaunchRefused(LccError):
    """Validation found problems; the campaign stays as it was."""

    def __init__(self, campaign_id: str, issues: list[Issue]) -> None:
        self.campaign_id = campaign_id
        self.issues = issues
        super().__init__(
            f"campaign {campaign_id} cannot launch: {len(issues)} problem(s), first: "
            f"[{issues[0].tab.value}] {issues[0].field}: {issues[0].message}"
        )


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

    # --- composing ---------------------------------------------------------------------

    def update_draft(
        self, campaign_id: str, change: Callable[[CampaignSpec], CampaignSpec]
    ) -> Campaign:
        """Change what a Draft says; anything launched or planned is frozen."""

        def apply(campaign: Campaign) -> Campaign:
            if campaign.state not in states.EDITABLE_STATES:
                raise IllegalTransition(campaign.state.value, "edit")
            spec = change(campaign.spec())
            return campaign.model_copy(update={**dict(spec), "updated_at": self.clock.now()})

        return self.store.campaigns.update(campaign_id, apply)

    # --- lifecycle -----------------------------------------------------------------------

    def launch(self, campaign_id: str, *, actor: str) -> Campaign:
        """Send now (Draft -> Active) or, for a scheduled campaign, plan it (Draft -> Planned).

        Refused with every validation issue when the campaign is not valid. Delivery itself is
        `deliver()`, run by the caller (a console worker, the replay, the scheduler).
        """
        campaign = self.store.campaigns.get(campaign_id)
        issues = self.validate(campaign)
        if issues:
            raise LaunchRefused(campaign_id, issues)
        action = (
            states.Action.SCHEDULE
            if isinstance(campaign.schedule, ScheduledSchedule)
            else states.Action.LAUNCH
        )
        return self.store.campaigns.transition(
            campaign_id, action, at=self.clock.now(), actor=actor
        )

    def act(
        self, campaign_id: str, action: states.Action, *, actor: str, reason: str | None = None
    ) -> Campaign:
        """Any other state-machine action: unschedule, start, cancel, suspend, resume, finish."""
        return self.store.campaigns.transition(
            campaign_id, action, at=self.clock.now(), actor=actor, reason=reason
        )

    async def deliver(
        self,
        campaign_id: str,
        *,
        actor: str,
        progress: Callable[[DeliveryProgress], None] | None = None,
    ) -> DeliverySummary:
        """Deliver an Active campaign to its audience, then mark it Finished."""
        campaign = self.store.campaigns.get(campaign_id)
        account = self.account_for(campaign)
        client = self.line_client(account)
        try:
            summary = await deliver(
                self.store, campaign, account, client, self.clock, progress=progress
            )
        finally:
            await client.aclose()
        self.store.campaigns.transition(
            campaign_id, states.Action.FINISH, at=self.clock.now(), actor=actor
        )
        return summary

    run_delivery = deliver

    def counts(self, campaign_id: str) -> LogCounts:
        return count_rows(self.store.delivery_log(campaign_id).rows())

    # --- console ---
    # Use cases the console needed first; plain rules any front door may share.

    NAME_MAX = 100

    @staticmethod
    def name_problem(name: str, taken: Collection[str] = ()) -> str | None:
        """Why `name` cannot name a new campaign, or None; `taken` holds casefolded names."""
        name = name.strip()
        if not name:
            return "a campaign needs a name"
        if len(name) > Services.NAME_MAX:
            return f"at most {Services.NAME_MAX} characters (this one has {len(name)})"
        if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in name):
            return "no control characters (tabs, line breaks, escape sequences)"
        if name.casefold() in taken:
            return f"a campaign named {name!r} already exists in this workspace"
        return None

    def campaign_names(self, workspace: str) -> set[str]:
        """The casefolded names in use in `workspace` (names are unique per workspace)."""
        return {c.name.strip().casefold() for c in self.store.campaigns.all(workspace)}

    def create_draft(self, name: str, *, workspace: str) -> Campaign:
        """A new, empty Draft named `name`; the name is checked under the write lock."""
        with self.store.transaction():
            problem = self.name_problem(name, self.campaign_names(workspace))
            if problem is not None:
                raise InputError(problem, source="new campaign", location="name")
            return self.create_campaign(CampaignSpec(name=name.strip()), workspace=workspace)

    def duplicate_campaign(self, campaign_id: str) -> Campaign:
        """A new Draft with a copy of the campaign's spec, named "<name> (copy)" (or copy 2...)."""
        with self.store.transaction():
            original = self.store.campaigns.get(campaign_id)
            taken = self.campaign_names(original.workspace)
            base = original.name.strip()
            for number in range(1, 10_000):
                suffix = " (copy)" if number == 1 else f" (copy {number})"
                candidate = base[: self.NAME_MAX - len(suffix)].rstrip() + suffix
                if candidate.casefold() not in taken:
                    break
            spec = original.spec().model_copy(update={"name": candidate})
            return self.create_campaign(spec, workspace=original.workspace)

    def campaigns_marker(self) -> tuple[int, int] | None:
        """Changes whenever a campaign is written (by this process or another); cheap to poll."""
        try:
            stat = (self.store.data_dir / "campaigns.json").stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)
