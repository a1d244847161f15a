"""Use cases shared by the console, the headless commands and the tests.

Every front door (the TUI, `lcc replay`, `lcc scheduler`) goes through these functions, so a rule
lives in one place.

The life of a campaign here: `launch` validates it and either plans it (Draft -> Planned) or
freezes its audience and content into the outbox, checks the projected messages against LINE's
monthly quota, and activates it (Draft -> Active). `deliver` sends the outbox's pending requests
and finishes the campaign when every request has an outcome, or suspends it on a fatal answer.
Whoever delivers a campaign holds its lease, so two processes never send for one campaign at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from core import states
from core.audience import (
    LINE_USER_ID,
    SAMPLE_SIZE,
    ExcludedSample,
    Exclusion,
    Funnel,
    funnel,
    resolve_batches,
)
from core.clock import Clock, SystemClock, unix_seconds
from core.compose import Composer, is_personalised, template_fields
from core.delivery import (
    RENDER_AHEAD_MIN_REQUESTS,
    DeliveryControl,
    DeliveryProgress,
    DeliverySummary,
    EngineSettings,
    run_outbox,
)
from core.delivery_log import OUTCOME_UNKNOWN, LogCounts, RowFactory, count_rows
from core.errors import IllegalTransition, InputError, LccError, NotFound
from core.fixture import Fixture
from core.line_client import SANDBOX_BASE_URL, LineApiError, LineClient
from core.models import (
    Campaign,
    CampaignSpec,
    CampaignState,
    ScheduledSchedule,
    Segment,
    SenderAccount,
    Workspace,
)
from core.outbox import LiveFreeze, Manifest, Outbox, Totals, freeze, refreeze_verified
from core.personalize import TemplateError, variable_paths
from core.ratelimit import RateLimiter, shared_limiter
from core.retry import SendResult, send_with_retries
from core.sandbox.app import SandboxState, create_app
from core.settings import Settings
from core.store import CampaignFlag, CampaignLease, Store
from core.units import aggregation_unit
from core.validation import (
    SCHEDULE_IN_PAST,
    Issue,
    Tab,
    ValidationContext,
    validate_campaign,
)

if TYPE_CHECKING:  # loaded when a report is asked for, not at every start
    from core.insights import FetchOutcome
    from core.report import CampaignReport

log = logging.getLogger(__name__)

LATE_START = "late_start"
"""Flag: a Planned campaign found more than the grace late; the operator launches or cancels."""
UNKNOWN_OUTCOMES = "unknown_outcomes"
"""Flag: requests LINE may have forgotten (key older than 24 h); the operator decides."""
HELD = "held"
"""Flag: a Planned campaign of an account whose kill switch was pulled; not started on its own."""

T = TypeVar("T")


@dataclass(frozen=True)
class KillSwitchOutcome:
    suspended: list[Campaign]
    """The Active campaigns it suspended."""
    held: list[Campaign]
    """The Planned campaigns it held."""


class LaunchRefused(LccError):
    """Validation (or the quota pre-flight) found problems; the campaign stays as it was."""

    def __init__(self, campaign_id: str, issues: list[Issue]) -> None:
        self.campaign_id = campaign_id
        self.issues = issues
        super().__init__(
            f"campaign {campaign_id} cannot launch: {len(issues)} problem(s), first: "
            f"[{issues[0].tab.value}] {issues[0].field}: {issues[0].message}"
        )


class DeliveryBusy(LccError):
    """Another delivery (this process or another) holds the campaign's lease."""


def new_campaign_id() -> str:
    return f"cmp-{uuid.uuid4().hex[:12]}"


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from synchronous code, inside a running event loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="lcc-sync-call")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def read_attributes(spec: CampaignSpec) -> set[str] | None:
    """The profile attributes the campaign's templates read; None when a template reads the
    whole profile (then every attribute is frozen)."""
    names: set[str] = set()
    for template in template_fields(spec):
        for path in variable_paths(template.text):
            if path and path[0] == "profile":
                if len(path) < 2:
                    return None
                names.add(path[1])
    return names


STREAM_MIN_BYTES = 4 << 20
"""About 50,000 profiles: from this size a campaign of shared content (multicasts) is sent while
its file is still being frozen. Below it the whole file is frozen first: its validation stopped at
the first reachable profile, and the freeze is what finds a bad row further on, before anything
is sent."""

PUSH_STREAM_MIN_BYTES = 256 << 10
"""About 3,000 profiles: the same for personalised content (a push each). Its validation has
already read every row (the longest value of each attribute), so a bad row refused the launch
before this; and a push's freeze costs more per profile (its attributes, a key each). A whole
freeze of a smaller file takes under 50 ms, about what forking the freeze's process and waiting
for its first part cost (figures in `docs/delivery.md`)."""


def _template_issue(exc: TemplateError) -> Issue:
    return Issue(
        tab=Tab.CONTENT,
        field=exc.field or "messages",
        code="template_error",
        message=exc.describe(),
    )


def describe_issues(issues: list[Issue]) -> str:
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"[{first.tab.value}] {first.field}: {first.message}{more}"


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    sandbox: SandboxState
    limiter: RateLimiter = field(default_factory=shared_limiter)
    notices: list[str] = field(default_factory=list)
    """Things an operator should know that did not stop anything (a skipped quota check)."""
    _claims: dict[str, CampaignLease] = field(default_factory=dict, repr=False)
    _controls: dict[str, DeliveryControl] = field(default_factory=dict, repr=False)
    _sandbox_app: Any = field(default=None, repr=False)
    _shutdown: str | None = field(default=None, repr=False)
    stream_min_bytes: int = STREAM_MIN_BYTES
    """A profiles file this large starts sending while the rest of it is still being frozen."""
    push_stream_min_bytes: int = PUSH_STREAM_MIN_BYTES
    """The same for personalised content."""
    render_ahead_min_requests: int = RENDER_AHEAD_MIN_REQUESTS
    """From this many pushes left to send, a forked child renders them (`core.render_ahead`)."""
    _live_freezes: dict[str, LiveFreeze] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Clock | None = None, sandbox: SandboxState | None = None
    ) -> Services:
        store = Store(settings.data_dir, system_identifier=settings.system_identifier)
        return cls(settings, store, clock or SystemClock(), sandbox or SandboxState())

    def notice(self, message: str) -> None:
        self.notices.append(message)
        log.warning("%s", message)

    # --- the world -----------------------------------------------------------------------

    def current_workspace(self) -> str:
        if self.settings.workspace:
            return self.settings.workspace
        workspaces = self.store.directory.workspaces()
        return workspaces[0].name if workspaces else "default"

    def import_fixture(self, fixture: Fixture) -> Campaign:
        """Store a fixture's accounts and segments, and its campaign as a new Draft."""
        campaign = self.import_fixtures([fixture])[0]
        assert campaign is not None
        return campaign

    def import_fixtures(
        self,
        fixtures: Sequence[Fixture],
        *,
        campaigns: bool = True,
        unique_names: bool = False,
        sources: Sequence[str] = (),
    ) -> list[Campaign | None]:
        """Store the fixtures' workspaces, sender accounts (by id: a stored one is replaced)
        and segments, and each campaign as a new Draft (None without `campaigns`), all in one
        transaction.

        With `unique_names`, a campaign whose name its workspace already uses (or another of
        these fixtures does) is refused before anything is stored: `InputError` naming it and
        its fixture (`sources`, the files' names, else its position).
        """
        with self.store.transaction():
            if campaigns and unique_names:
                taken: dict[str, set[str]] = {}
                for index, fixture in enumerate(fixtures):
                    names = taken.setdefault(
                        fixture.workspace, self.campaign_names(fixture.workspace)
                    )
                    problem = self.name_problem(fixture.campaign.name, names)
                    if problem is not None:
                        source = sources[index] if index < len(sources) else f"fixture {index + 1}"
                        raise InputError(
                            f"{problem} (workspace {fixture.workspace})",
                            source=source,
                            location="campaign.name",
                        )
                    names.add(fixture.campaign.name.strip().casefold())
            created: list[Campaign | None] = []
            for fixture in fixtures:
                self.store.directory.save_workspace(Workspace(name=fixture.workspace))
                for account in fixture.sender_accounts:
                    self.store.directory.save_account(account)
                for segment in fixture.segments:
                    self.store.directory.save_segment(segment)
                created.append(
                    self.create_campaign(fixture.campaign, workspace=fixture.workspace)
                    if campaigns
                    else None
                )
            return created

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

    def segment_for(self, campaign: CampaignSpec) -> Segment:
        if campaign.audience is None:
            raise NotFound(f"campaign {campaign.name!r} has no target segment")
        segment = self.store.directory.segment(
            campaign.audience.parent_segment, campaign.audience.segment
        )
        if segment is None:
            raise NotFound(f"segment {campaign.audience.key!r} does not exist")
        return segment

    def reach(self, campaign_id: str) -> Funnel | None:
        """segment -> with a LINE user id -> valid -> unique, with sample exclusions and why.

        Once launched, the frozen audience's figures; before, the segment as it is now. None when
        the campaign has no segment yet.
        """
        outbox = self.outbox(campaign_id)
        manifest = outbox.manifest()
        if manifest is not None:
            totals = manifest.totals
            samples = next(outbox.iter_exclusion_parts(manifest), [])[:SAMPLE_SIZE]
            return Funnel(
                totals.segment,
                totals.with_id,
                totals.valid,
                totals.unique,
                samples=tuple(
                    ExcludedSample(p.profile_id, p.line_user_id, Exclusion(p.reason))
                    for p in samples
                ),
            )
        campaign = self.store.campaigns.get(campaign_id)
        try:
            segment = self.segment_for(campaign)
        except NotFound:
            return None
        return funnel(segment)

    def outbox(self, campaign_id: str) -> Outbox:
        return Outbox(self.store.data_dir / "outbox" / campaign_id)

    def manifest(self, campaign_id: str) -> Manifest | None:
        """The frozen campaign (what is being sent), once launched."""
        return self.outbox(campaign_id).manifest()

    def flags(self, campaign_id: str | None = None) -> list[CampaignFlag]:
        """Decisions waiting for an operator, for one campaign or all of them."""
        if campaign_id is None:
            return self.store.flags.all()
        return self.store.flags.for_campaign(campaign_id)

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

    # --- LINE ------------------------------------------------------------------------------

    def account_for(self, campaign: CampaignSpec) -> SenderAccount:
        if campaign.sender_account is None:
            raise NotFound(f"campaign {campaign.name!r} has no sender account")
        account = self.store.directory.account(campaign.sender_account)
        if account is None:
            raise NotFound(f"sender account {campaign.sender_account!r} does not exist")
        return account

    def line_client(self, account: SenderAccount) -> LineClient:
        """A client for one sender account, sharing this process's rate limits per channel."""
        channel = account.channel_id or account.id
        concurrency = self.settings.delivery_concurrency
        if self.settings.line_is_sandbox:
            if self._sandbox_app is None:
                self._sandbox_app = create_app(self.sandbox)
            transport = httpx.ASGITransport(app=self._sandbox_app)
            return LineClient(
                SANDBOX_BASE_URL,
                token_env=account.token_env,
                channel=channel,
                transport=transport,
                limiter=self.limiter,
            )
        return LineClient(
            self.settings.line_api_base,
            token_env=account.token_env,
            channel=channel,
            limiter=self.limiter,
            max_connections=concurrency,
        )

    async def quota_issue(self, account: SenderAccount, projected: int) -> Issue | None:
        """The quota pre-flight: projected messages against this month's quota minus usage.

        LINE counts one message per recipient of each request. When LINE does not answer the
        quota calls the check is skipped with a notice (the send itself would still be refused
        at the limit, and the campaign suspended).
        """
        client = self.line_client(account)
        try:
            quota = await client.quota()
            if quota.type != "limited" or quota.value is None:
                return None
            used = await client.consumption()
        except LineApiError as exc:
            self.notice(f"quota pre-flight skipped for {account.name}: {exc}")
            return None
        finally:
            await client.aclose()
        left = quota.value - used
        if projected <= left:
            return None
        return Issue(
            tab=Tab.ACTIVATION,
            field="activation",
            code="quota_exceeded",
            message=(
                f"this campaign needs {projected:,} messages (one per recipient) but "
                f"{account.name} has {max(left, 0):,} left this month "
                f"(quota {quota.value:,}, used {used:,})"
            ),
        )

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

    # --- leases ------------------------------------------------------------------------

    def claimed(self, campaign_id: str) -> bool:
        """This process holds the campaign's lease (launching or delivering it)."""
        return campaign_id in self._claims

    def delivering(self, campaign_id: str) -> bool:
        """A delivery of the campaign is running in this process."""
        return campaign_id in self._controls

    def try_claim(self, campaign_id: str) -> bool:
        """Take the campaign's lease for this process if nobody holds it."""
        if campaign_id in self._claims:
            return True
        lease = self.store.lease(campaign_id)
        if not lease.acquire():
            return False
        self._claims[campaign_id] = lease
        return True

    def _claim(self, campaign_id: str) -> CampaignLease:
        if self.try_claim(campaign_id):
            return self._claims[campaign_id]
        holder = self.store.lease(campaign_id).holder()
        raise DeliveryBusy(
            f"campaign {campaign_id} is being delivered by another lcc process"
            f"{f' ({holder})' if holder else ''}; it carries on there"
        )

    def release_claim(self, campaign_id: str) -> None:
        lease = self._claims.pop(campaign_id, None)
        if lease is not None:
            lease.release()

    # --- lifecycle -----------------------------------------------------------------------

    def launch(self, campaign_id: str, *, actor: str) -> Campaign:
        """`launch_async` for synchronous callers (prefer `launch_async` inside an event loop)."""
        return run_sync(lambda: self.launch_async(campaign_id, actor=actor))

    async def launch_async(self, campaign_id: str, *, actor: str) -> Campaign:
        """Send now (Draft -> Active) or, for a scheduled campaign, plan it (Draft -> Planned).

        Refused with every validation issue when the campaign is not valid, and with a quota
        issue when LINE's monthly quota cannot take it. Launching a Planned campaign starts it
        now (the operator's answer to a late-start flag). Delivery itself is `deliver()`, run by
        the caller (a console worker, the replay, the scheduler); the lease taken here is kept
        for it.
        """
        campaign = self.store.campaigns.get(campaign_id)
        if campaign.state is CampaignState.PLANNED:
            return await self.start_planned(campaign_id, actor=actor)
        if campaign.state is not CampaignState.DRAFT:
            raise IllegalTransition(campaign.state.value, states.Action.LAUNCH.value)
        issues = self.validate(campaign)
        if issues:
            raise LaunchRefused(campaign_id, issues)
        if isinstance(campaign.schedule, ScheduledSchedule):
            return self.store.campaigns.transition(
                campaign_id, states.Action.SCHEDULE, at=self.clock.now(), actor=actor
            )
        return await self._activate(campaign, states.Action.LAUNCH, actor=actor)

    async def start_planned(self, campaign_id: str, *, actor: str) -> Campaign:
        """Planned -> Active: validate again, freeze, check the quota.

        When any of that fails the campaign is suspended with the reason (as Engage Studio's
        "encountered an error before launching"); the returned campaign says which.
        """
        campaign = self.store.campaigns.get(campaign_id)
        if campaign.state is not CampaignState.PLANNED:
            raise IllegalTransition(campaign.state.value, states.Action.START.value)
        # Its time having come is the point now, not a problem.
        issues = [i for i in self.validate(campaign) if i.code != SCHEDULE_IN_PAST]
        try:
            if issues:
                raise LaunchRefused(campaign_id, issues)
            return await self._activate(campaign, states.Action.START, actor=actor)
        except LaunchRefused as refused:
            reason = f"not started at its scheduled time: {describe_issues(refused.issues)}"
            return self._suspend(campaign_id, actor=actor, reason=reason)

    async def _activate(self, campaign: Campaign, action: states.Action, *, actor: str) -> Campaign:
        """Freeze the outbox, run the quota pre-flight, then the transition (lease kept).

        A large profiles file is frozen while it is delivered (`LiveFreeze`): the quota
        pre-flight then takes the file's line count (at least its number of profiles) and, when
        that is over what is left, the whole audience is frozen and counted first instead.
        """
        self._claim(campaign.id)
        try:
            account = self.account_for(campaign)
            segment = self.segment_for(campaign)
            unit = aggregation_unit(campaign.id, campaign.name)
            spec = campaign.spec()
            outbox = self.outbox(campaign.id)
            frozen_at = self.clock.now()
            estimate = await asyncio.to_thread(
                self._stream_estimate, segment, personalised=is_personalised(spec)
            )
            if estimate is not None and await self.quota_issue(account, estimate) is None:
                # before the freeze's thread starts, which would slow it down
                self._warn_about_unit_budget(account)
                await self._start_live_freeze(
                    campaign, spec, account, segment, unit, frozen_at, estimate
                )
            else:
                try:
                    manifest = await asyncio.to_thread(
                        self._freeze, outbox, campaign.id, spec, account, segment, unit, frozen_at
                    )
                except TemplateError as exc:
                    outbox.discard()
                    raise LaunchRefused(campaign.id, [_template_issue(exc)]) from None
                issue = await self.quota_issue(account, manifest.totals.recipients)
                if issue is not None:
                    outbox.discard()
                    raise LaunchRefused(campaign.id, [issue])
                self._warn_about_unit_budget(account)
            updated = self.store.campaigns.transition(
                campaign.id,
                action,
                at=self.clock.now(),
                actor=actor,
                change=lambda c: c.model_copy(update={"aggregation_unit": unit}),
            )
            self.store.flags.clear(campaign.id, LATE_START)
            self.store.flags.clear(campaign.id, HELD)
            live = self._live_freezes.get(campaign.id)
            if live is not None:
                live.go_on()
            return updated
        except BaseException:
            live = self._live_freezes.pop(campaign.id, None)
            if live is not None:
                live.abandon()
                self.outbox(campaign.id).discard()
            self.release_claim(campaign.id)
            raise

    def _stream_estimate(self, segment: Segment, *, personalised: bool) -> int | None:
        """At least the number of profiles of a profiles file worth streaming (its lines)."""
        if segment.profiles_file is None:
            return None
        path = Path(segment.profiles_file)
        threshold = self.push_stream_min_bytes if personalised else self.stream_min_bytes
        try:
            if path.stat().st_size < threshold:
                return None
            lines = 0
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    lines += block.count(b"\n")
        except OSError:
            return None  # the freeze itself reports what is wrong with the file
        return lines + 1

    async def _start_live_freeze(
        self,
        campaign: Campaign,
        spec: CampaignSpec,
        account: SenderAccount,
        segment: Segment,
        unit: str,
        frozen_at: datetime,
        estimate: int,
    ) -> None:
        """Start freezing (`LiveFreeze`: a forked process, or a thread), and return once the
        first part is on disk (or the whole freeze, for an audience of one part): nothing is
        sent before that."""
        outbox = self.outbox(campaign.id)
        personalised = is_personalised(spec)
        bundle = None
        if not personalised:
            try:
                bundle = Composer(spec, campaign_id=campaign.id).bundle(None)
            except TemplateError as exc:
                raise LaunchRefused(campaign.id, [_template_issue(exc)]) from None
        provisional = Manifest(
            campaign_id=campaign.id,
            frozen_at=frozen_at,
            spec=spec,
            account=account,
            aggregation_unit=unit,
            mode="push" if personalised else "multicast",
            bundle=bundle,
            message_types=[message.type for message in spec.messages],
            totals=Totals(),
        )
        live = LiveFreeze(provisional, estimate)
        live.start(
            lambda part_written: self._freeze(
                outbox,
                campaign.id,
                spec,
                account,
                segment,
                unit,
                frozen_at,
                part_written=part_written,
            )
        )
        first = await asyncio.to_thread(live.wait, 0)
        if isinstance(first, BaseException):
            live.abandon()
            outbox.discard()  # nothing of it was sent
            if isinstance(first, TemplateError):
                raise LaunchRefused(campaign.id, [_template_issue(first)]) from None
            raise first
        self._live_freezes[campaign.id] = live

    def _warn_about_unit_budget(self, account: SenderAccount) -> None:
        """LINE assigns 1,000 unit names per channel a month; past that a campaign's messages go
        out without one and it gets no statistics. Say so before it happens, without refusing:
        LINE itself still sends."""
        from core.insights import channel_key, unit_budget

        try:
            warning = unit_budget(self.store, self.clock.now()).warning(channel_key(account))
        except LccError as exc:  # a warning must never be what stops a launch
            warning = f"unit names used this month could not be counted: {exc}"
        if warning:
            self.notice(warning)

    @staticmethod
    def _freeze(
        outbox: Outbox,
        campaign_id: str,
        spec: CampaignSpec,
        account: SenderAccount,
        segment: Segment,
        unit: str,
        frozen_at: Any,
        part_written: Callable[[str], None] | None = None,
    ) -> Manifest:
        composer = Composer(spec, campaign_id=campaign_id)
        personalised = is_personalised(spec)
        return freeze(
            outbox,
            campaign_id=campaign_id,
            spec=spec,
            account=account,
            aggregation_unit=unit,
            batches=resolve_batches(segment, attributes=personalised),
            personalised=personalised,
            render=composer.bundle,
            frozen_at=frozen_at,
            attributes=read_attributes(spec),
            part_written=part_written,
        )

    def act(
        self, campaign_id: str, action: states.Action, *, actor: str, reason: str | None = None
    ) -> Campaign:
        """Any other state-machine action: unschedule, start, cancel, suspend, resume, finish.

        Suspending a campaign that is being delivered here stops its delivery (requests in
        flight finish and are recorded); another process's delivery notices within a second.
        """
        if action is states.Action.RESUME and self.store.flags.get(campaign_id, UNKNOWN_OUTCOMES):
            raise IllegalTransition(
                "Suspended",
                action.value,
                "some requests have an unknown outcome; decide with resolve_unknown first",
            )
        updated = self.store.campaigns.transition(
            campaign_id, action, at=self.clock.now(), actor=actor, reason=reason
        )
        if updated.state is not CampaignState.ACTIVE:
            control = self._controls.get(campaign_id)
            if control is not None:
                control.stop(reason or f"{action.value} by {actor}")
        if updated.state is not CampaignState.PLANNED:
            self.store.flags.clear(campaign_id, LATE_START)
            self.store.flags.clear(campaign_id, HELD)
        return updated

    def _suspend(self, campaign_id: str, *, actor: str, reason: str) -> Campaign:
        return self.store.campaigns.transition(
            campaign_id, states.Action.SUSPEND, at=self.clock.now(), actor=actor, reason=reason
        )

    def kill_switch(self, account_id: str, *, actor: str, reason: str) -> list[Campaign]:
        """`pull_kill_switch`; the campaigns it suspended."""
        return self.pull_kill_switch(account_id, actor=actor, reason=reason).suspended

    def pull_kill_switch(self, account_id: str, *, actor: str, reason: str) -> KillSwitchOutcome:
        """Suspend every Active campaign of one sender account, now.

        Deliveries running in this process stop at once; in another process within a second.
        Planned campaigns of the account are held (flagged): the scheduler will not start them
        on its own; an operator launches or cancels each.
        """
        if not reason.strip():
            raise InputError("the kill switch needs a reason", source="kill switch")
        why = f"kill switch by {actor}: {reason.strip()}"
        suspended: list[Campaign] = []
        active, planned = self.kill_switch_targets().get(account_id, ([], []))
        for campaign in active:
            try:
                suspended.append(
                    self.act(campaign.id, states.Action.SUSPEND, actor=actor, reason=why)
                )
            except IllegalTransition:
                continue
        for campaign in planned:
            self.store.flags.raise_flag(
                CampaignFlag(campaign_id=campaign.id, kind=HELD, reason=why, at=self.clock.now())
            )
        return KillSwitchOutcome(suspended=suspended, held=planned)

    def kill_switch_targets(self) -> dict[str, tuple[list[Campaign], list[Campaign]]]:
        """Per sender account, its (Active, Planned) campaigns: what its kill switch would
        suspend and hold now. Accounts with neither are left out."""
        targets: dict[str, tuple[list[Campaign], list[Campaign]]] = {}
        for campaign in self.store.campaigns.all():
            account = campaign.sender_account
            if account is None or campaign.state not in (
                CampaignState.ACTIVE,
                CampaignState.PLANNED,
            ):
                continue
            active, planned = targets.setdefault(account, ([], []))
            (active if campaign.state is CampaignState.ACTIVE else planned).append(campaign)
        return targets

    # --- delivery ------------------------------------------------------------------------

    def stop_deliveries(self, reason: str) -> None:
        """Stop every delivery of this process (shutdown), and any that would start after:
        requests in flight finish and are recorded, the rest stay pending for the next run."""
        self._shutdown = reason
        for control in list(self._controls.values()):
            control.stop(reason)

    def _still_active(self, campaign_id: str) -> bool:
        campaign = self.store.campaigns.find(campaign_id)
        return campaign is not None and campaign.state is CampaignState.ACTIVE

    async def deliver(
        self,
        campaign_id: str,
        *,
        actor: str,
        progress: Callable[[DeliveryProgress], None] | None = None,
        control: DeliveryControl | None = None,
    ) -> DeliverySummary:
        """Send the pending requests of an Active campaign; then Finished, or Suspended.

        A fatal answer (monthly limit, 401, 403) suspends the campaign with LINE's reason and
        leaves the rest pending; requests LINE may have forgotten (first sent over 23 hours ago)
        are not re-sent: the campaign is suspended and flagged for `resolve_unknown`. When the
        run is stopped (kill switch, shutdown) the campaign is left as the stopper set it.
        """
        campaign = self.store.campaigns.get(campaign_id)
        if campaign.state is not CampaignState.ACTIVE:
            raise IllegalTransition(campaign.state.value, "deliver")
        if campaign_id in self._controls:
            raise DeliveryBusy(f"campaign {campaign_id} is already being delivered here")
        self._claim(campaign_id)
        control = control or DeliveryControl()
        if self._shutdown is not None:
            control.stop(self._shutdown)
        self._controls[campaign_id] = control
        try:
            return await self._deliver_claimed(campaign, actor, progress, control)
        finally:
            self._controls.pop(campaign_id, None)
            self.release_claim(campaign_id)

    async def _deliver_claimed(
        self,
        campaign: Campaign,
        actor: str,
        progress: Callable[[DeliveryProgress], None] | None,
        control: DeliveryControl,
    ) -> DeliverySummary:
        outbox = self.outbox(campaign.id)
        live = self._live_freezes.get(campaign.id)
        manifest = outbox.manifest()
        if manifest is not None:
            live = None
            self._live_freezes.pop(campaign.id, None)
        elif live is None:
            recovered = await asyncio.to_thread(self._finish_interrupted_freeze, campaign, outbox)
            if isinstance(recovered, str):
                self._suspend_if_active(campaign.id, actor, recovered)
                return DeliverySummary(pending=1, stopped=recovered)
            manifest = recovered
        # the frozen campaign, or (still being frozen) all of it but its totals
        plan = live.provisional if live is not None else manifest
        assert plan is not None
        account = self.store.directory.account(plan.account.id) or plan.account
        client = self.line_client(account)
        engine = EngineSettings(
            concurrency=self.settings.delivery_concurrency,
            render_ahead_min_requests=self.render_ahead_min_requests,
        )
        try:
            summary = await run_outbox(
                outbox=outbox,
                manifest=plan,
                log=self.store.delivery_log(campaign.id),
                client=client,
                clock=self.clock,
                control=control,
                progress=progress,
                still_active=lambda: self._still_active(campaign.id),
                settings=engine,
                stream=live,
            )
        except Exception as exc:
            self._suspend_if_active(
                campaign.id, actor, f"delivery stopped by an internal error: {exc}"
            )
            raise
        finally:
            await client.aclose()
            if live is not None and live.finished:
                self._live_freezes.pop(campaign.id, None)
        if summary.audience_error is not None:
            self._suspend_if_active(campaign.id, actor, summary.audience_error)
        elif summary.fatal is not None and summary.stopped:
            self._suspend_if_active(campaign.id, actor, summary.stopped)
        elif summary.unknown and summary.stopped is None:
            count = len(summary.unknown)
            reason = (
                f"{count:,} request(s) were first sent over 23 hours ago and have no recorded "
                "outcome; LINE may have forgotten their retry keys, so they were not sent "
                "again. Decide: resend them (recipients may get the message twice) or mark "
                "them unknown"
            )
            self.store.flags.raise_flag(
                CampaignFlag(
                    campaign_id=campaign.id,
                    kind=UNKNOWN_OUTCOMES,
                    reason=reason,
                    at=self.clock.now(),
                    data={"requests": sorted(summary.unknown)},
                )
            )
            self._suspend_if_active(campaign.id, actor, reason)
        elif summary.complete and self._still_active(campaign.id):
            self.store.campaigns.transition(
                campaign.id, states.Action.FINISH, at=self.clock.now(), actor=actor
            )
        return summary

    run_delivery = deliver

    def _finish_interrupted_freeze(self, campaign: Campaign, outbox: Outbox) -> Manifest | str:
        """The manifest of an Active campaign whose freeze never finished, or why it cannot be
        finished (the campaign is then suspended with that reason).

        With no dispatch mark nothing of it was ever sent (a launch by an older lcc, or one cut
        short before its first request), and it is simply frozen again. Otherwise the audience
        is frozen again beside it and accepted only if it reproduces every part already
        written, under the original freeze time.
        """
        unit = campaign.aggregation_unit or aggregation_unit(campaign.id, campaign.name)
        spec = campaign.spec()
        account = self.account_for(campaign)
        segment = self.segment_for(campaign)
        started = outbox.freezing_started() or self.clock.now()

        def run(target: Outbox) -> Manifest:
            return self._freeze(target, campaign.id, spec, account, segment, unit, started)

        if not outbox.dispatch_marks():
            return run(outbox)
        try:
            manifest = refreeze_verified(outbox, run)
        except (LccError, OSError, TemplateError) as exc:
            return (  # an InputError's text is its describe(): file, line and problem
                "the interrupted launch could not be finished: the audience cannot be read "
                f"({exc}); fix it as it was at launch and resume"
            )
        if manifest is None:
            return (
                "the interrupted launch could not be finished: the audience is no longer the "
                "one its first requests were sent to (the profiles file changed), so nothing "
                "more was sent; restore the file as it was at launch and resume, or cancel"
            )
        return manifest

    def _suspend_if_active(self, campaign_id: str, actor: str, reason: str) -> None:
        if self._still_active(campaign_id):
            try:
                self._suspend(campaign_id, actor=actor, reason=reason)
            except IllegalTransition:
                pass

    async def resume(
        self,
        campaign_id: str,
        *,
        actor: str,
        progress: Callable[[DeliveryProgress], None] | None = None,
    ) -> DeliverySummary:
        """Suspended -> Active, then deliver what is still pending (nothing twice)."""
        self.act(campaign_id, states.Action.RESUME, actor=actor)
        return await self.deliver(campaign_id, actor=actor, progress=progress)

    def resolve_unknown(self, campaign_id: str, *, resend: bool, actor: str) -> Campaign:
        """The operator's decision on requests of unknown outcome; the campaign becomes Active.

        `resend=True`: they go again under new retry keys (written here, before any send), so a
        recipient whose first request did arrive gets the message twice. `resend=False`: they
        are logged failed with `outcome_unknown` and not sent. Delivery (or the scheduler's next
        pass) then carries on and finishes the campaign.
        """
        flag = self.store.flags.get(campaign_id, UNKNOWN_OUTCOMES)
        if flag is None:
            raise IllegalTransition(
                self.store.campaigns.get(campaign_id).state.value,
                "resolve unknown outcomes of",
                "no request is waiting for a decision",
            )
        numbers = {int(n) for n in flag.data.get("requests", [])}
        outbox = self.outbox(campaign_id)
        manifest = outbox.manifest()
        if manifest is None:
            raise NotFound(f"campaign {campaign_id} has no outbox")
        now = self.clock.now()
        if not resend:
            factory = RowFactory(
                campaign_id=campaign_id,
                channel_name=manifest.account.name,
                message_types=manifest.message_types,
            )
            rows: list[dict[str, Any]] = []
            for request in outbox.iter_requests(manifest):
                if request.number not in numbers:
                    continue
                for user_id, profile_id in zip(request.to, request.profile_ids, strict=True):
                    factory.extend(
                        rows,
                        time=unix_seconds(now),
                        line_user_id=user_id,
                        profile_id=profile_id,
                        success=False,
                        error_code=OUTCOME_UNKNOWN,
                        request_index=request.number,
                    )
            self.store.delivery_log(campaign_id).append(rows)
        outbox.record_decision(numbers, resend=resend, at=now.timestamp(), actor=actor)
        self.store.flags.clear(campaign_id, UNKNOWN_OUTCOMES)
        decision = "resend" if resend else "mark unknown"
        return self.store.campaigns.transition(
            campaign_id,
            states.Action.RESUME,
            at=self.clock.now(),
            actor=actor,
            reason=f"{len(numbers):,} request(s) of unknown outcome: {decision}",
        )

    async def fetch_insights(
        self, campaign_id: str, *, force: bool = False
    ) -> tuple[FetchOutcome, CampaignReport]:
        """LINE's statistics of the campaign's unit, fetched, stored, and the report afresh
        (`lcc insights fetch` and the console's Report tab). Raises `NothingToFetch` before it
        was launched, `BudgetExhausted` when the hour's requests are used up, `LineApiError`
        when LINE refuses."""
        from core.report import refresh_insights

        campaign = self.store.campaigns.get(campaign_id)
        account = self.account_for(campaign)
        async with self.line_client(account) as client:
            return await refresh_insights(
                self.store, campaign_id, client, account, now=self.clock.now(), force=force
            )

    async def test_send(self, campaign_id: str, line_user_id: str, *, actor: str) -> SendResult:
        """The whole bundle to one LINE user, rendered for the blank profile, UTM applied.

        Logged with `is_test=true` (never counted in campaign figures). Allowed in any state,
        Draft included; it is not a campaign send, so it carries no aggregation unit.
        """
        user_id = line_user_id.strip()
        if LINE_USER_ID.match(user_id) is None:
            raise InputError(
                "a LINE user id is U followed by 32 lowercase hex digits",
                source="test send",
                location="line_user_id",
            )
        campaign = self.store.campaigns.get(campaign_id)
        account = self.account_for(campaign)
        try:
            messages = Composer(campaign, campaign_id=campaign.id).bundle(None)
        except TemplateError as exc:
            raise InputError(
                exc.message, source=f"campaign {campaign.name}", location=exc.field
            ) from None
        if not messages:
            raise InputError("the campaign has no messages yet", source="test send")
        client = self.line_client(account)
        key = str(uuid.uuid4())
        try:
            result = await send_with_retries(
                lambda: client.push(user_id, messages, retry_key=key), campaign.activation
            )
        finally:
            await client.aclose()
        factory = RowFactory(
            campaign_id=campaign.id,
            channel_name=account.name,
            message_types=[m.get("type", "") for m in messages],
            is_test=True,
        )
        rows: list[dict[str, Any]] = []
        factory.extend(
            rows,
            time=unix_seconds(self.clock.now()),
            line_user_id=user_id,
            profile_id=None,
            success=result.accepted,
            error_code=result.error_code,
            request_id=result.effective_request_id,
        )
        self.store.delivery_log(campaign.id).append(rows)
        log.info("test send of %s by %s: %s", campaign.id, actor, result.error_code or "accepted")
        return result

    def counts(self, campaign_id: str) -> LogCounts:
        return count_rows(self.store.delivery_log(campaign_id).rows())

    # --- console ---
    # Use cases the console needed first; plain rules any front door may share.

    NAME_MAX = 100

    @staticmethod
    def name_problem(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str | None:
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

    def campaign_documents(self) -> list[dict[str, Any]]:
        """Every stored campaign as its JSON document: one file read and no model validation,
        so a list of 10,000 campaigns loads in a blink (callers read only the fields they show)."""
        from core.store import read_json_file

        data = read_json_file(self.store.data_dir / "campaigns.json") or {}
        table = data.get("campaigns") or {}
        return [doc for doc in table.values() if isinstance(doc, dict)]
