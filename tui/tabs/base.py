"""What every tab shares: the view it draws, the host it edits through, inline issues."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from textual.containers import VerticalScroll
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Static

from core import states
from core.models import Campaign, CampaignSpec, SenderAccount
from core.validation import Issue, Tab
from tui.widgets import literal

if TYPE_CHECKING:
    from core.service import Services
    from core.store import CampaignFlag

SpecChange = Callable[[CampaignSpec], CampaignSpec]
MUTED = "$foreground-muted"
"""Secondary text in `Content` spans (`$text-muted` is `auto`, which needs a CSS background)."""


@dataclass(frozen=True)
class SegmentChoice:
    """A segment's name only: the pickers never need its profiles."""

    parent_segment: str
    segment: str


@dataclass(frozen=True)
class CampaignView:
    """Everything a tab draws, read in one worker so that a tab never touches the store."""

    campaign: Campaign
    issues: tuple[Issue, ...] = ()
    accounts: tuple[SenderAccount, ...] = ()
    """Sender accounts assigned to the campaign's workspace: the only ones offered."""
    account: SenderAccount | None = None
    """The campaign's chosen account, even when it is not (or no longer) assigned."""
    segments: tuple[SegmentChoice, ...] = ()
    validated: bool = False
    """Whether `issues` belong to this revision of the campaign."""
    flags: tuple[CampaignFlag, ...] = ()
    """Decisions waiting for the operator (late start, unknown outcomes, held)."""

    def flag(self, kind: str) -> CampaignFlag | None:
        return next((f for f in self.flags if f.kind == kind), None)

    @property
    def editable(self) -> bool:
        return self.campaign.state in states.EDITABLE_STATES

    def tab_issues(self, tab: Tab) -> list[Issue]:
        return [issue for issue in self.issues if issue.tab is tab]

    def issues_under(self, *prefixes: str) -> list[Issue]:
        return [i for i in self.issues if any(field_matches(i.field, p) for p in prefixes)]


def field_matches(path: str, prefix: str) -> bool:
    """`messages[0].text` is under `messages[0]` and `messages`, not under `messages[01]`."""
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


class CampaignHost(Protocol):
    """The campaign screen, as its tabs see it."""

    campaign_id: str

    @property
    def view(self) -> CampaignView | None: ...

    @property
    def services(self) -> Services: ...

    @property
    def actor(self) -> str: ...

    def edit(self, change: SpecChange, what: str) -> None: ...


def issue_line(issue: Issue, *, with_field: bool = False) -> Content:
    where = f"{issue.field}: " if with_field else ""
    return Content.assemble(("● ", "$error"), (literal(f"{where}{issue.message}"), "$text-error"))


class FieldIssues(Static):
    """The issues of some fields, drawn under them; hidden while there are none."""

    DEFAULT_CSS = """
    FieldIssues { height: auto; display: none; }
    FieldIssues.-has-issues { display: block; }
    """

    def __init__(self, *prefixes: str, catch_all: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="field-issues")
        self.prefixes = prefixes
        self.catch_all = catch_all
        self.shown: list[Issue] = []

    def claim(self, issues: Iterable[Issue]) -> list[Issue]:
        return [i for i in issues if any(field_matches(i.field, p) for p in self.prefixes)]

    def show_issues(self, issues: Sequence[Issue]) -> None:
        self.shown = list(issues)
        self.set_class(bool(self.shown), "-has-issues")
        lines = [issue_line(issue, with_field=self.catch_all) for issue in self.shown]
        self.update(Content("\n").join(lines))


class CampaignTab(VerticalScroll):
    """A tab's body. Subclasses draw a view in `render_view` and edit through `edit`."""

    TAB: ClassVar[Tab | None] = None
    COMMIT_DEBOUNCE_S: ClassVar[float] = 0.3
    view: CampaignView | None = None
    _commit_timer: Timer | None = None

    @property
    def host(self) -> CampaignHost:
        return cast("CampaignHost", self.screen)

    _ready = False
    _pending: CampaignView | None = None

    def on_mount(self) -> None:
        # Grandchildren (a RadioSet's buttons) may not be mounted yet: draw after the refresh.
        self.call_after_refresh(self._first_show)

    @property
    def latest(self) -> CampaignView | None:
        """The newest view, drawn or not: keys pressed while a new tab is being built work."""
        if self.view is not None:
            return self.view
        return self._pending or self.host.view

    def _first_show(self) -> None:
        self._ready = True
        view = self._pending or self.host.view
        self._pending = None
        if view is not None:
            self.show(view)
        self.refresh_bindings()  # the tab's keys depend on it being there (`can`)

    def show(self, view: CampaignView) -> None:
        if not self._ready:
            self._pending = view  # drawn once the tab is whole
            return
        previous = self.view
        self.view = view
        for widget in self.query(".editable"):
            widget.disabled = not view.editable
        self.render_view(view, previous)
        self.show_issues(view)

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        """Draw `view`; `previous` is what was drawn before (None the first time)."""

    def show_issues(self, view: CampaignView) -> None:
        """Each issue next to the field it names; those no field claims, at the tab's foot."""
        remaining = self.issues_to_show(view)
        catch_all: list[FieldIssues] = []
        for widget in self.query(FieldIssues):
            if widget.catch_all:
                catch_all.append(widget)
                continue
            mine = widget.claim(remaining)
            widget.show_issues(mine)
            remaining = [issue for issue in remaining if issue not in mine]
        for widget in catch_all:
            widget.show_issues(remaining)
            remaining = []

    def schedule_commit(self) -> None:
        """Save the form a moment after the operator stops typing."""
        if self._commit_timer is not None:
            self._commit_timer.stop()
        self._commit_timer = self.set_timer(self.COMMIT_DEBOUNCE_S, self.flush)

    def flush(self) -> None:
        """Save what the form holds now (leaving the screen calls this)."""
        if self._commit_timer is not None:
            self._commit_timer.stop()
            self._commit_timer = None
        self.commit()

    def commit(self) -> None:
        """Turn the form into a spec change and `edit` with it; forms override this."""

    def unsaved_problem(self) -> str | None:
        """What the tab's form holds that cannot be saved (a launch would not send it)."""
        for error in self.query(FormError):
            if error.problem:
                return error.problem
        return None

    def issues_to_show(self, view: CampaignView) -> list[Issue]:
        """The tab's issues; a tab that checks its form live adds those problems."""
        return view.tab_issues(self.TAB) if self.TAB is not None else []

    def can(self, action: str) -> bool | None:
        """Whether the tab's `action` is offered: True, None (shown greyed out), False (hidden)."""
        return True

    def edit(self, change: SpecChange, what: str) -> None:
        """Hand a change to the host, unless it changes nothing (a form echoing the view)."""
        view = self.view
        if view is None or not view.editable:
            return
        spec = view.campaign.spec()
        if change(spec) == spec:
            return
        self.host.edit(change, what)


def set_input(widget: Input, value: str) -> None:
    """Show a stored value, unless the operator is typing in that very field."""
    if widget.value != value and not widget.has_focus:
        widget.value = value


def note(text: str, *, classes: str = "note", id: str | None = None) -> Static:
    """A plain explanatory paragraph (never markup)."""
    return Static(Content(text), classes=classes, id=id)


class FormError(Static):
    """What is wrong with what the operator typed, before anything is saved."""

    DEFAULT_CSS = """
    FormError { height: auto; display: none; color: $text-error; }
    FormError.-shown { display: block; }
    """

    problem: str | None = None
    """What is shown: the form holds something that is not saved."""

    def say(self, problem: str | None) -> None:
        self.problem = problem or None
        self.set_class(bool(problem), "-shown")
        self.update(Content(f"● {problem}") if problem else "")


def heading(text: str, *, id: str | None = None) -> Static:
    return Static(Content(text), classes="heading", id=id)


def focus_first(widgets: Iterable[Widget]) -> None:
    for widget in widgets:
        if widget.focusable:
            widget.focus()
            return
