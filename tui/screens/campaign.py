"""One campaign on the seeds' five tabs plus Report: compose, validate, launch, watch delivery.

The screen owns every store access of its tabs: reads and writes run in workers, writes in the
order they were made (an asyncio lock is FIFO), and each change is followed by a debounced
revalidation whose issues appear on the tab and field they name. Delivery runs in an app-level
worker (see `DeliveryHub`), so leaving the screen does not stop it and coming back shows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from weakref import WeakKeyDictionary

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, ProgressBar, Static, TabbedContent, TabPane

from core import states
from core.delivery import DeliveryProgress, DeliverySummary
from core.errors import LccError, NotFound
from core.models import Campaign, CampaignState, ScheduledSchedule
from core.service import HELD, LATE_START, UNKNOWN_OUTCOMES
from core.validation import Issue, Tab
from tui.output import actor
from tui.tabs.activation import ActivationTab
from tui.tabs.audience import AudienceTab
from tui.tabs.base import MUTED, CampaignTab, CampaignView, SegmentChoice, SpecChange
from tui.tabs.content import CampaignContentTab
from tui.tabs.report import ReportTab
from tui.tabs.schedule import ScheduleTab
from tui.tabs.utm import UtmTab
from tui.times import REPORT_ZONE, in_zone, moment_text
from tui.widgets import SandboxBadge, StateBadge, console_of, literal

if TYPE_CHECKING:
    from core.service import Services
    from tui.app import ConsoleApp

T = TypeVar("T")

TABS: tuple[tuple[str, str, type[CampaignTab]], ...] = (
    ("audience", "Target Audience", AudienceTab),
    ("content", "Campaign Content", CampaignContentTab),
    ("schedule", "Delivery Schedule", ScheduleTab),
    ("activation", "Activation", ActivationTab),
    ("utm", "UTM Tracking", UtmTab),
    ("report", "Report", ReportTab),
)
"""(pane id, label as the seeds name it, tab widget); the pane ids equal `core.validation.Tab`."""
SHORT_TITLES = {
    "audience": "Audience",
    "content": "Content",
    "schedule": "Schedule",
    "activation": "Activation",
    "utm": "UTM",
    "report": "Report",
}
"""The tab labels where the seeds' names do not fit in one row (an 80-column terminal): every
tab and its problem count stay in sight."""
TAB_GAP = 2
"""Cells a tab takes beside its label (its padding)."""
TAB_IDS = tuple(pane for pane, _title, _cls in TABS)
TAB_TITLES = {pane: title for pane, title, _cls in TABS}
TAB_CLASSES = {pane: tab_class for pane, _title, tab_class in TABS}

VALIDATE_DEBOUNCE_S = 0.25
POLL_S = 2.0
"""How often the screen looks whether someone else (the scheduler, the demo seeding, another
console) changed the campaign; a look is one `stat` of the campaigns file."""


def launch_label(campaign: Campaign) -> str:
    return "Schedule" if isinstance(campaign.schedule, ScheduledSchedule) else "Launch"


def describe_progress(progress: DeliveryProgress) -> Content:
    eta = "" if progress.eta_s is None else f" · {format_duration(progress.eta_s)} left"
    return Content(
        f"sent {progress.sent:,} · failed {progress.failed:,} · remaining "
        f"{progress.remaining:,} · {progress.rate:,.0f}/s{eta}"
    )


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# --- messages -------------------------------------------------------------------------------


class CampaignLoaded(Message):
    def __init__(self, view: CampaignView, marker: object) -> None:
        super().__init__()
        self.view = view
        self.marker = marker


class StoreLooked(Message):
    """What `Services.campaigns_marker` says now."""

    def __init__(self, marker: object) -> None:
        super().__init__()
        self.marker = marker


class IssuesReady(Message):
    def __init__(self, revision: datetime, issues: list[Issue]) -> None:
        super().__init__()
        self.revision = revision
        self.issues = issues


class DeliveryProgressed(Message):
    """The latest figures; a flood of them collapses to the newest."""

    def __init__(self, campaign_id: str, progress: DeliveryProgress) -> None:
        super().__init__()
        self.campaign_id = campaign_id
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DeliveryProgressed) and message.campaign_id == self.campaign_id


class DeliveryEnded(Message):
    def __init__(self, campaign_id: str) -> None:
        super().__init__()
        self.campaign_id = campaign_id


# --- deliveries outlive the screen ------------------------------------------------------------


@dataclass
class DeliveryRun:
    campaign_id: str
    progress: DeliveryProgress | None = None
    summary: DeliverySummary | None = None
    error: str | None = None
    done: bool = False
    listeners: set[CampaignScreen] = field(default_factory=set)


class DeliveryHub:
    """The deliveries running in one console, and the screens watching them.

    A delivery is an app worker, so the operator can leave a campaign while it sends and come
    back to its live figures; one campaign never has two deliveries at once.
    """

    def __init__(self) -> None:
        self.runs: dict[str, DeliveryRun] = {}

    def running(self, campaign_id: str) -> DeliveryRun | None:
        run = self.runs.get(campaign_id)
        return run if run is not None and not run.done else None

    def start(self, campaign_id: str) -> DeliveryRun | None:
        """A new run, or None when one is already going."""
        if self.running(campaign_id) is not None:
            return None
        run = DeliveryRun(campaign_id)
        previous = self.runs.get(campaign_id)
        if previous is not None:
            run.listeners = previous.listeners
        self.runs[campaign_id] = run
        return run

    def watch(self, campaign_id: str, screen: CampaignScreen) -> DeliveryRun:
        run = self.runs.setdefault(campaign_id, DeliveryRun(campaign_id, done=True))
        run.listeners.add(screen)
        return run

    def unwatch(self, campaign_id: str, screen: CampaignScreen) -> None:
        run = self.runs.get(campaign_id)
        if run is not None:
            run.listeners.discard(screen)

    def publish(self, run: DeliveryRun, progress: DeliveryProgress) -> None:
        run.progress = progress
        for screen in list(run.listeners):
            screen.post_message(DeliveryProgressed(run.campaign_id, progress))

    def finish(self, run: DeliveryRun) -> None:
        run.done = True
        for screen in list(run.listeners):
            screen.post_message(DeliveryEnded(run.campaign_id))


_HUBS: WeakKeyDictionary[App[Any], DeliveryHub] = WeakKeyDictionary()


def delivery_hub(app: App[Any]) -> DeliveryHub:
    """The app's deliveries (the campaign list can show their progress too)."""
    hub = _HUBS.get(app)
    if hub is None:
        hub = _HUBS[app] = DeliveryHub()
    return hub


# --- the screen -------------------------------------------------------------------------------


class StatusLine(Static):
    """Ready to launch, what blocks it, or where the campaign is in its life."""


def _tab_binding(key: str, pane: str, number: int) -> Binding:
    return Binding(
        key,
        f"show_tab('{pane}')",
        f"{number} {TAB_TITLES[pane]}",
        show=False,
        id=f"campaign.tab.{pane}",
    )


class CampaignScreen(Screen[None]):
    """`CampaignScreen(campaign_id)`: the campaign list pushes it."""

    CSS_PATH = "../campaign.tcss"
    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (110, "-wide"),
    ]
    LAUNCH_ID = "campaign.launch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="campaign.back"),
        *(_tab_binding(str(n), pane, n) for n, pane in enumerate(TAB_IDS, start=1)),
        Binding("right_square_bracket", "next_tab", "Next tab", show=False, id="campaign.tab.next"),
        Binding(
            "left_square_bracket",
            "previous_tab",
            "Previous tab",
            show=False,
            id="campaign.tab.previous",
        ),
        Binding("l", "launch", "Launch", id=LAUNCH_ID),
        Binding("s", "suspend", "Suspend", id="campaign.suspend"),
        Binding("r", "resume", "Resume", id="campaign.resume"),
        Binding("c", "continue_delivery", "Continue delivery", id="campaign.continue"),
        Binding("u", "unschedule", "Unschedule", id="campaign.unschedule"),
        Binding("x", "cancel_campaign", "Cancel campaign", show=False, id="campaign.cancel"),
        Binding("f5", "reload", "Reload", show=False, id="campaign.reload"),
        Binding("R", "resolve_unknown(True)", "Resend unknown", id="campaign.resend_unknown"),
        Binding("M", "resolve_unknown(False)", "Mark unknown", id="campaign.mark_unknown"),
        # the Campaign Content tab's actions live here so they work wherever focus is
        Binding("t", "content('add_text')", "Add text", id="content.add_text"),
        Binding("i", "content('add_imagemap')", "Add imagemap", id="content.add_imagemap"),
        Binding("e", "content('edit')", "Edit", id="content.edit"),
        Binding("d,delete", "content('delete')", "Delete", id="content.delete"),
        Binding("alt+up,K", "content('move_up')", "Move up", show=False, id="content.move_up"),
        Binding(
            "alt+down,J", "content('move_down')", "Move down", show=False, id="content.move_down"
        ),
        Binding("T", "content('test_send')", "Test send", show=False, id="content.test_send"),
        Binding("p", "content('pick_profile')", "Preview as", show=False, id="content.preview_as"),
        Binding("a", "utm('add_parameter')", "Add parameter", id="utm.add_parameter"),
        Binding("n", "audience('recount')", "Recount", id="audience.recount"),
        Binding("f", "report('fetch_insights')", "Fetch LINE stats", id="report.fetch_insights"),
    ]

    def __init__(self, campaign_id: str) -> None:
        super().__init__()
        self.campaign_id = campaign_id
        self._view: CampaignView | None = None
        self._write_lock = asyncio.Lock()
        self._validate_timer: Timer | None = None
        self._launching = False
        self._binding_signature: object = None
        self._marker: object = None
        """`Services.campaigns_marker` as of the last read or save of this screen."""
        self._saving = 0
        self._actor = actor("console")

    # --- what the tabs see (tui.tabs.base.CampaignHost) ------------------------------------

    @property
    def view(self) -> CampaignView | None:
        return self._view

    @property
    def console(self) -> ConsoleApp:
        return console_of(self.app)

    @property
    def services(self) -> Services:
        return self.console.services

    @property
    def actor(self) -> str:
        return self._actor

    @property
    def hub(self) -> DeliveryHub:
        return delivery_hub(self.app)

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if notice := self.console.sandbox_notice:
            yield SandboxBadge(notice)
        with Horizontal(id="campaign-header"):
            yield Static(Content(f"Loading {self.campaign_id}…"), id="campaign-name")
            yield StateBadge(CampaignState.DRAFT, id="campaign-state")
            yield Static(id="campaign-meta")
        with Horizontal(id="campaign-status"):
            yield StatusLine(id="status-line")
            yield ProgressBar(total=1, show_eta=False, id="delivery-bar")
        with TabbedContent(id="tabs"):
            for pane, title, _tab_class in TABS:
                yield TabPane(title, id=pane)  # its tab is mounted when first shown
        yield Footer()

    def on_mount(self) -> None:
        self._ensure_tab(self.query_one(TabbedContent).active or TAB_IDS[0])
        self.query_one("#delivery-bar").display = False
        self.query_one(StateBadge).display = False
        run = self.hub.watch(self.campaign_id, self)
        if not run.done and run.progress is not None:
            self._show_progress(run.progress)
        self.load()
        self.set_interval(POLL_S, self._poll, name="campaign-poll")

    def _poll(self) -> None:
        if self._view is not None and not self._saving:
            self._look()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _look(self) -> None:
        self.post_message(StoreLooked(self.services.campaigns_marker()))

    @on(StoreLooked)
    def _looked(self, message: StoreLooked) -> None:
        """Another writer changed the campaigns: read ours again. While it is Active and sent
        by someone else, the report follows the log too."""
        view = self._view
        if view is None or self._saving:
            return
        if message.marker != self._marker:
            self._marker = message.marker
            self.load()
        if (
            view.campaign.state is CampaignState.ACTIVE
            and self.hub.running(self.campaign_id) is None
        ):
            for tab in self.query(ReportTab):
                tab.refresh_counts()

    def on_unmount(self) -> None:
        self.hub.unwatch(self.campaign_id, self)

    # --- loading and saving ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """Read the campaign and the directory it is composed from."""
        try:
            marker = self.services.campaigns_marker()
            view = self._read_view()
        except NotFound as exc:
            self.app.call_from_thread(self._gone, str(exc))
            return
        except LccError as exc:
            self.app.call_from_thread(
                self.notify,
                f"{exc}. Press F5 to try again.",
                title="Cannot read the campaign",
                severity="error",
            )
            return
        self.post_message(CampaignLoaded(view, marker))

    def _read_view(self) -> CampaignView:
        services = self.services
        directory = services.store.directory
        campaign = services.store.campaigns.get(self.campaign_id)
        account = directory.account(campaign.sender_account) if campaign.sender_account else None
        segments = tuple(SegmentChoice(s.parent_segment, s.segment) for s in directory.segments())
        draft = campaign.state in states.EDITABLE_STATES
        issues = tuple(services.validate(campaign)) if draft else ()
        flags = tuple(services.flags(campaign.id))
        return CampaignView(
            campaign=campaign,
            issues=issues,
            accounts=tuple(directory.accounts(campaign.workspace)),
            account=account,
            segments=segments,
            validated=True,
            flags=flags,
        )

    def _gone(self, reason: str) -> None:
        self.notify(f"{reason}. It may have been removed by another console.", severity="error")
        self.dismiss()

    @on(CampaignLoaded)
    def _loaded(self, message: CampaignLoaded) -> None:
        self._marker = message.marker
        self._set_view(message.view)

    def edit(self, change: SpecChange, what: str) -> None:
        """Save a change to the Draft; changes are applied in the order they are made."""
        self._save(change, what)

    @work(group="save", exit_on_error=False)
    async def _save(self, change: SpecChange, what: str) -> None:
        self._saving += 1
        try:
            await self._save_now(change, what)
        finally:
            self._saving -= 1

    async def _save_now(self, change: SpecChange, what: str) -> None:
        async with self._write_lock:
            try:
                campaign = await asyncio.to_thread(
                    self.services.update_draft, self.campaign_id, change
                )
                self._marker = await asyncio.to_thread(self.services.campaigns_marker)
            except LccError as exc:
                self.notify(
                    f"{what} was not saved: {exc}. The tab shows what is stored now.",
                    title="Not saved",
                    severity="error",
                )
                self.load()
                return
            view = self._view
            if view is None:
                return
            account = view.account
            if campaign.sender_account != (account.id if account else None):
                account = next((a for a in view.accounts if a.id == campaign.sender_account), None)
            self._set_view(
                dataclasses.replace(view, campaign=campaign, account=account, validated=False)
            )
            self._schedule_validation()

    def _schedule_validation(self) -> None:
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self.set_timer(VALIDATE_DEBOUNCE_S, self._revalidate)

    def _revalidate(self) -> None:
        view = self._view
        if view is not None and view.editable:
            self.validate(view.campaign)

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self, campaign: Campaign) -> None:
        try:
            issues = self.services.validate(campaign)
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, f"Validation could not run: {exc}", severity="warning"
            )
            return
        self.post_message(IssuesReady(campaign.updated_at, issues))

    @on(IssuesReady)
    def _issues_ready(self, message: IssuesReady) -> None:
        view = self._view
        if view is None or view.campaign.updated_at != message.revision:
            return  # a newer revision is on its way to validation
        self._set_view(dataclasses.replace(view, issues=tuple(message.issues), validated=True))

    def _set_view(self, view: CampaignView) -> None:
        self._view = view
        self._draw_header(view)
        self._label_tabs(view)
        for tab in self.query(CampaignTab):
            tab.show(view)
        self._relabel_launch(view.campaign)
        self._update_bindings()

    def _update_bindings(self) -> None:
        """Tell the footer only when what `check_action` answers may have changed: each
        refresh rebuilds the footer, which is the costliest thing this screen does."""
        view = self._view
        signature = (
            None
            if view is None
            else (
                view.campaign.state,
                bool(view.issues),
                view.validated,
                len(view.campaign.messages),
                view.account is not None,
                tuple(flag.kind for flag in view.flags),
                launch_label(view.campaign),
            ),
            self._launching,
            self.hub.running(self.campaign_id) is not None,
            self._active_tab(),
        )
        if signature != self._binding_signature:
            self._binding_signature = signature
            self.refresh_bindings()

    # --- header, status, tab labels ----------------------------------------------------

    def _draw_header(self, view: CampaignView) -> None:
        campaign = view.campaign
        account = view.account.name if view.account else (campaign.sender_account or "no sender")
        self.query_one("#campaign-name", Static).update(
            Content.styled(literal(campaign.name), "bold")
        )
        badge = self.query_one(StateBadge)
        badge.display = True
        badge.set_state(campaign.state)
        self.query_one("#campaign-meta", Static).update(
            Content.assemble(
                ("from ", MUTED),
                literal(account),
                ("  ·  ", MUTED),
                (campaign.id, MUTED),
            )
        )
        if self.hub.running(self.campaign_id) is None:
            self.query_one(StatusLine).update(self._status(view))

    def _status(self, view: CampaignView) -> Content:
        campaign = view.campaign
        state = campaign.state
        if view.flag(UNKNOWN_OUTCOMES):
            return Content.styled(
                "⚠ Requests of unknown outcome: R resends them (some may arrive twice), "
                "M records them as unknown.",
                "$text-warning",
            )
        for kind in (LATE_START, HELD):
            flag = view.flag(kind)
            if flag is not None:
                return Content.styled(
                    literal(f"⚠ {flag.reason}. l starts it now, x cancels it."), "$text-warning"
                )
        if state is CampaignState.DRAFT:
            if not view.validated:
                return Content.styled("Checking…", MUTED)
            if not view.issues:
                action = launch_label(campaign)
                return Content.assemble(
                    ("✓ Ready. ", "$text-success"), f"Press l to {action.lower()}."
                )
            counts = [
                f"{TAB_TITLES[tab.value]} {len(view.tab_issues(tab))}"
                for tab in Tab
                if view.tab_issues(tab)
            ]
            return Content.assemble(
                (f"✗ {len(view.issues)} problem(s) block launch: ", "$text-error"),
                ", ".join(counts),
            )
        if state is CampaignState.PLANNED and isinstance(campaign.schedule, ScheduledSchedule):
            when = moment_text(in_zone(campaign.schedule.at, campaign.schedule.timezone), None)
            return Content(f"Planned for {when}. The scheduler starts it then; u unschedules.")
        if state is CampaignState.ACTIVE:
            if self.services.delivering(self.campaign_id):
                return Content("Active: the scheduler is delivering it; the figures follow.")
            return Content("Active: delivery has not finished. Press c to continue it.")
        if state is CampaignState.FINISHED:
            done = (
                f" {moment_text(campaign.finished_at, REPORT_ZONE)}" if campaign.finished_at else ""
            )
            return Content(f"Finished{done}. The Report tab has the figures.")
        reason = literal(campaign.suspend_reason or "")
        hint = " Press r to resume." if campaign.launched_at else ""
        return Content(f"Suspended: {reason}.{hint}")

    def _label_tabs(self, view: CampaignView) -> None:
        tabbed = self.query_one(TabbedContent)
        checked = {tab.value: len(view.tab_issues(tab)) for tab in Tab}
        counts = {pane: checked.get(pane, 0) for pane in TAB_IDS}  # Report has no issues

        def labelled(titles: dict[str, str]) -> dict[str, Content]:
            return {
                pane: Content.assemble(titles[pane], (f" ●{count}", "$text-error"))
                if count
                else Content(titles[pane])
                for pane, count in counts.items()
            }

        labels = labelled(TAB_TITLES)
        if sum(label.cell_length + TAB_GAP for label in labels.values()) > self.size.width:
            labels = labelled(SHORT_TITLES)
        for pane, label in labels.items():
            tabbed.get_tab(pane).label = label

    def on_resize(self) -> None:
        if self._view is not None:
            self._label_tabs(self._view)

    def _relabel_launch(self, campaign: Campaign) -> None:
        """One action, Launch or Schedule, named after the campaign's schedule."""
        label = launch_label(campaign)
        key_map = self._bindings.key_to_bindings
        for key, bindings in key_map.items():
            key_map[key] = [
                dataclasses.replace(b, description=label) if b.id == self.LAUNCH_ID else b
                for b in bindings
            ]

    # --- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        active = self._active_tab()
        delegated = {
            "content": CampaignContentTab,
            "utm": UtmTab,
            "audience": AudienceTab,
            "report": ReportTab,
        }
        if action in delegated:
            if active != action:
                return False
            for tab in self.query(delegated[action]):
                return tab.can(str(parameters[0]) if parameters else "")
            return None
        view = self._view
        if view is None:
            return action in ("back", "show_tab", "next_tab", "previous_tab", "reload")
        campaign = view.campaign
        running = self.hub.running(self.campaign_id) is not None
        if action == "launch":
            if campaign.state is CampaignState.PLANNED and (
                view.flag(LATE_START) or view.flag(HELD)
            ):
                return None if self._launching else True  # the operator starts it now
            if campaign.state is not CampaignState.DRAFT:
                return False
            return None if (view.issues or not view.validated or self._launching) else True
        if action == "resolve_unknown":
            return view.flag(UNKNOWN_OUTCOMES) is not None and not running
        if action == "suspend":
            return states.can(campaign, states.Action.SUSPEND) and (
                campaign.state is CampaignState.ACTIVE
            )
        if action == "resume":
            return states.can(campaign, states.Action.RESUME) and not running
        if action == "continue_delivery":
            return (
                campaign.state is CampaignState.ACTIVE
                and not running
                and not self.services.delivering(self.campaign_id)
            )
        if action == "unschedule":
            return states.can(campaign, states.Action.UNSCHEDULE)
        if action == "cancel_campaign":
            return states.can(campaign, states.Action.CANCEL)
        return True

    def _active_tab(self) -> str:
        try:
            return self.query_one(TabbedContent).active
        except NoMatches:
            return ""

    async def action_back(self) -> None:
        """Leave, after saving what the forms still hold (a debounce may be pending)."""
        await self._save_forms()
        self.dismiss()

    async def _save_forms(self) -> None:
        """Save what every form holds now and wait until it is stored."""
        for tab in self.query(CampaignTab):
            tab.flush()
        saves = [w for w in self.workers if w.group == "save" and not w.is_finished]
        if saves:
            await self.app.workers.wait_for_complete(saves)

    def _unsaved_form(self) -> tuple[str, str] | None:
        """(pane, problem) of the first tab whose form holds what cannot be saved."""
        for tab in self.query(CampaignTab):
            problem = tab.unsaved_problem()
            pane = tab.parent
            if problem and pane is not None and pane.id in TAB_TITLES:
                return pane.id, problem
        return None

    def action_show_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def _step_tab(self, step: int) -> None:
        tabbed = self.query_one(TabbedContent)
        index = TAB_IDS.index(tabbed.active) if tabbed.active in TAB_IDS else 0
        tabbed.active = TAB_IDS[(index + step) % len(TAB_IDS)]

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._ensure_tab(event.pane.id)
        self._update_bindings()

    def _ensure_tab(self, pane_id: str) -> None:
        """Mount a tab the first time it is shown: opening a campaign builds one tab, not six
        (the labels and the status line come from the view, not from the tabs)."""
        pane = self.query_one(f"TabPane#{pane_id}", TabPane)
        if not pane.children:
            pane.mount(TAB_CLASSES[pane_id](id=f"{pane_id}-tab"))

    def action_reload(self) -> None:
        self.load()
        for tab in self.query(ReportTab):
            tab.refresh_counts()

    async def action_content(self, name: str) -> None:
        await self._delegate(CampaignContentTab, name)

    async def action_utm(self, name: str) -> None:
        await self._delegate(UtmTab, name)

    async def action_audience(self, name: str) -> None:
        await self._delegate(AudienceTab, name)

    async def action_report(self, name: str) -> None:
        await self._delegate(ReportTab, name)

    async def _delegate(self, tab_class: type[CampaignTab], name: str) -> None:
        for tab in self.query(tab_class):
            method: Callable[[], Any] = getattr(tab, f"action_{name}")
            result = method()
            if asyncio.iscoroutine(result):
                await result

    # --- launch ------------------------------------------------------------------------

    async def action_launch(self) -> None:
        # What the forms hold is what the operator means: save it first (a debounce may still
        # be pending), and launch nothing while a form holds what cannot be saved, since the
        # stored value, not the one on screen, is what a launch would send.
        await self._save_forms()
        unsaved = self._unsaved_form()
        if unsaved is not None:
            pane, problem = unsaved
            self.action_show_tab(pane)
            self.notify(
                f"{TAB_TITLES[pane]}: {problem}. Correct it, or put back the stored value, "
                "then launch.",
                title="Not launched",
                severity="error",
            )
            return
        view = self._view
        if view is None or view.account is None:
            return
        if view.campaign.state is CampaignState.DRAFT and view.issues:
            return
        from tui.screens.confirm import ConfirmByTyping

        campaign = view.campaign
        label = launch_label(campaign)
        audience = campaign.audience
        segment = f"{audience.parent_segment} / {audience.segment}" if audience else "?"
        schedule = campaign.schedule
        when = (
            f" at {moment_text(in_zone(schedule.at, schedule.timezone), None)}"
            if isinstance(schedule, ScheduledSchedule)
            else " now"
        )
        prompt = (
            f"{label} {literal(campaign.name)}{when}: {len(campaign.messages)} message(s) to "
            f"{literal(segment)} from {literal(view.account.name)}. Type the sender account's "
            "name to confirm."
        )
        self.app.push_screen(
            ConfirmByTyping(f"{label} campaign", prompt, view.account.name),
            callback=self._launch_confirmed,
        )

    def _launch_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self._launching = True
            self._update_bindings()
            self.query_one(StatusLine).update(
                Content("Launching: checking it once more and freezing the audience…")
            )
            self.launch()

    @work(group="launch", exclusive=True, exit_on_error=False)
    async def launch(self) -> None:
        from core.service import LaunchRefused

        told = len(self.services.notices)
        try:
            async with self._write_lock:
                campaign = await self.services.launch_async(self.campaign_id, actor=self.actor)
        except LaunchRefused as exc:
            view = self._view
            if view is not None:
                self._set_view(dataclasses.replace(view, issues=tuple(exc.issues)))
            self.notify(
                f"{len(exc.issues)} problem(s) found at launch; the tabs marked ● show them.",
                title="Not launched",
                severity="error",
            )
            return
        except LccError as exc:
            self.notify(f"{exc}", title="Not launched", severity="error")
            self.load()  # the campaign may have moved on elsewhere: show what it is now
            return
        finally:
            self._launching = False
            if self._view is not None:
                self._draw_header(self._view)
        self._after_transition(campaign)
        for notice in self.services.notices[told:]:  # e.g. a skipped quota check, unit names
            self.notify(notice, title="Worth knowing", severity="warning", timeout=12)
        if campaign.state is CampaignState.ACTIVE:
            self.notify(f"{campaign.name} launched; delivering now.", title="Launched")
            self.start_delivery()
        elif campaign.state is CampaignState.PLANNED:
            self.notify(f"{campaign.name} is planned.", title="Scheduled")

    def _after_transition(self, campaign: Campaign) -> None:
        view = self._view
        if view is not None:
            self._set_view(dataclasses.replace(view, campaign=campaign, issues=()))

    # --- delivery ----------------------------------------------------------------------

    def start_delivery(self) -> None:
        run = self.hub.start(self.campaign_id)
        if run is None:
            self.notify("This campaign is already delivering.", severity="warning")
            return
        run.listeners.add(self)
        self._show_progress(None)
        self._update_bindings()
        self.app.run_worker(
            self._deliver(self.services, self.hub, run, self.actor),
            name=f"deliver {self.campaign_id}",
            group="delivery",
            exit_on_error=False,
        )

    @staticmethod
    async def _deliver(services: Services, hub: DeliveryHub, run: DeliveryRun, actor: str) -> None:
        """Runs on the app, not the screen: leaving the screen must not stop a delivery."""
        try:
            run.summary = await services.deliver(
                run.campaign_id, actor=actor, progress=lambda p: hub.publish(run, p)
            )
        except LccError as exc:
            run.error = str(exc)
        finally:
            hub.finish(run)

    def _show_progress(self, progress: DeliveryProgress | None) -> None:
        bar = self.query_one("#delivery-bar", ProgressBar)
        bar.display = True
        status = self.query_one(StatusLine)
        if progress is None:
            status.update(Content("Starting delivery…"))
            return
        total = progress.total or progress.sent + progress.failed + progress.remaining
        bar.update(total=max(total, 1), progress=progress.sent + progress.failed)
        status.update(describe_progress(progress))

    @on(DeliveryProgressed)
    def _progressed(self, message: DeliveryProgressed) -> None:
        if message.campaign_id == self.campaign_id and self.hub.running(self.campaign_id):
            self._show_progress(message.progress)

    @on(DeliveryEnded)
    def _delivery_ended(self, message: DeliveryEnded) -> None:
        if message.campaign_id != self.campaign_id:
            return
        self.query_one("#delivery-bar").display = False
        run = self.hub.runs.get(self.campaign_id)
        if run is not None and run.error:
            self.notify(
                f"{run.error}. Fix the cause, then press c to continue the delivery; "
                "requests LINE already accepted are not sent again.",
                title="Delivery stopped",
                severity="error",
                timeout=15,
            )
        elif run is not None and run.summary is not None:
            summary = run.summary
            figures = (
                f"delivered {summary.delivered:,}, failed {summary.failed:,} "
                f"(excluded {summary.excluded:,})"
            )
            if summary.complete:  # a resumed run counts only its own sends
                self.notify(
                    f"This run: {figures}. The Report tab has the whole campaign.",
                    title="Delivery finished",
                )
            else:
                why = literal(summary.stopped or "requests are still pending")
                self.notify(
                    f"{why}. So far in this run: {figures}.",
                    title="Delivery stopped",
                    severity="warning",
                    timeout=15,
                )
        self.load()
        for tab in self.query(ReportTab):
            tab.refresh_counts()

    # --- other state changes -----------------------------------------------------------

    def action_resolve_unknown(self, resend: bool) -> None:
        view = self._view
        flag = view.flag(UNKNOWN_OUTCOMES) if view else None
        if flag is None:
            return
        from tui.screens.message_editor import AskYesNo

        count = len(flag.data.get("requests", []))
        question = (
            f"Send the {count:,} request(s) again under new retry keys? A recipient whose first "
            "request did arrive gets the messages twice."
            if resend
            else f"Record the {count:,} request(s) as failed with outcome_unknown, without "
            "sending them again?"
        )
        self.app.push_screen(
            AskYesNo("Requests of unknown outcome", question),
            callback=partial(self._resolve_confirmed, resend),
        )

    def _resolve_confirmed(self, resend: bool, confirmed: bool | None) -> None:
        if confirmed:
            self._resolve(resend)

    @work(group="act", exit_on_error=False)
    async def _resolve(self, resend: bool) -> None:
        try:
            async with self._write_lock:
                campaign = await asyncio.to_thread(
                    self.services.resolve_unknown,
                    self.campaign_id,
                    resend=resend,
                    actor=self.actor,
                )
        except LccError as exc:
            self.notify(str(exc), title="Not decided", severity="error")
            return
        self._after_transition(campaign)
        self.load()
        if campaign.state is CampaignState.ACTIVE:
            self.start_delivery()

    def action_suspend(self) -> None:
        self._act(states.Action.SUSPEND, "suspended by the operator in the console")

    def action_resume(self) -> None:
        self._act(states.Action.RESUME, None, then_deliver=True)

    def action_continue_delivery(self) -> None:
        self.start_delivery()

    def action_unschedule(self) -> None:
        self._act(states.Action.UNSCHEDULE, None)

    def action_cancel_campaign(self) -> None:
        view = self._view
        if view is None:
            return
        from tui.screens.confirm import ConfirmByTyping

        name = view.campaign.name
        self.app.push_screen(
            ConfirmByTyping(
                "Cancel campaign",
                f"Cancel {literal(name)}? It becomes Suspended and can never be sent. "
                "Type the campaign's name to confirm.",
                name,
            ),
            callback=self._cancel_confirmed,
        )

    def _cancel_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self._act(states.Action.CANCEL, "cancelled by the operator")

    @work(group="act", exit_on_error=False)
    async def _act(
        self, action: states.Action, reason: str | None, *, then_deliver: bool = False
    ) -> None:
        try:
            async with self._write_lock:
                campaign = await asyncio.to_thread(
                    self.services.act, self.campaign_id, action, actor=self.actor, reason=reason
                )
        except LccError as exc:
            self.notify(str(exc), title=f"Could not {action.value}", severity="error")
            self.load()
            return
        self._after_transition(campaign)
        if campaign.state is CampaignState.DRAFT:
            self.load()
        self.notify(f"{campaign.name} is {campaign.state.value}.", title=action.value.title())
        if then_deliver and campaign.state is CampaignState.ACTIVE:
            self.start_delivery()
