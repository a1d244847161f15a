"""Target Audience: the parent segment and segment pickers, the reach funnel, and who is left out.

The funnel streams the segment (a CSV can hold a million profiles) in a thread worker, so the
screen stays live while it counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, Select, Static
from textual.widgets.select import InvalidSelectValueError

from core.audience import Exclusion, Funnel
from core.errors import LccError
from core.models import AudienceRef, CampaignSpec
from core.validation import Tab
from tui.tabs.base import MUTED, CampaignTab, CampaignView, FieldIssues, SpecChange, heading, note
from tui.widgets import literal

if TYPE_CHECKING:
    from core.service import Services

BAR_WIDTH = 16

REASONS = {
    Exclusion.MISSING: "no LINE user id",
    Exclusion.INVALID: "is not U + 32 hex digits",
    Exclusion.DUPLICATE: "seen before: sent once",
}
ID_SHOWN = 12


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    –"


def bar(part: int, whole: int) -> str:
    filled = round(BAR_WIDTH * part / whole) if whole else 0
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def funnel_table(funnel: Funnel) -> Content:
    whole = funnel.segment
    rows = (
        ("Segment", funnel.segment),
        ("With a LINE user id", funnel.with_id),
        ("Valid LINE user id", funnel.valid),
        ("Unique: will receive", funnel.unique),
    )
    lines = [
        Content.assemble(
            f"{label:<21}{count:>8,} {percent(count, whole)} ",
            (bar(count, whole), "$text-primary"),
        )
        for label, count in rows
    ]
    lines.append(
        Content.assemble(
            (
                f"{'Excluded':<21}{funnel.excluded:>8,} {percent(funnel.excluded, whole)} ",
                "$text-warning" if funnel.excluded else "",
            ),
            (
                f"missing {funnel.missing:,} · invalid {funnel.invalid:,} · "
                f"duplicate {funnel.duplicate:,}",
                MUTED,
            ),
        )
    )
    return Content("\n").join(lines)


def samples_table(funnel: Funnel) -> Content:
    if not funnel.samples:
        if funnel.excluded:
            return Content.styled(
                "Launched: the delivery log lists every excluded profile and why.", MUTED
            )
        return Content.styled("Nobody is excluded.", MUTED)
    lines = []
    for sample in funnel.samples:
        user_id = literal(sample.line_user_id or "")
        if len(user_id) > ID_SHOWN:
            user_id = user_id[: ID_SHOWN - 1] + "…"
        detail = f"{user_id} {REASONS[sample.reason]}" if user_id else REASONS[sample.reason]
        lines.append(
            Content.assemble(
                (f"{literal(sample.profile_id):<10} ", "bold"),
                (f"{sample.reason.value:<23} ", "$text-warning"),
                (detail, MUTED),
            )
        )
    return Content("\n").join(lines)


class AudienceTab(CampaignTab):
    TAB: ClassVar[Tab | None] = Tab.AUDIENCE

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pending_parent: str | None = None
        self._counted: AudienceRef | None = None
        self._ever_counted = False
        self._segment_names: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield note(
            "The campaign targets every profile in the segment that has a LINE user ID. "
            "Profiles without one are excluded and logged as missing_recipient_id.",
        )
        with Horizontal(classes="form-row"):
            yield Label("Parent segment", classes="field-label")
            yield Select[str](
                [],
                prompt="Choose a parent segment",
                id="audience-parent",
                compact=True,
                classes="editable",
            )
        with Horizontal(classes="form-row"):
            yield Label("Segment", classes="field-label")
            yield Select[str](
                [],
                prompt="Choose a segment",
                id="audience-segment",
                compact=True,
                classes="editable",
            )
        yield FieldIssues("audience", catch_all=True)
        yield Static(id="audience-readonly", classes="note")
        yield heading("Reach")
        yield Static(id="audience-funnel", classes="funnel")
        yield heading("Excluded profiles (first 20)")
        yield Static(id="audience-samples", classes="samples")

    # --- drawing -----------------------------------------------------------------------

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        audience = view.campaign.audience
        parents = sorted({choice.parent_segment for choice in view.segments})
        parent_select = self.query_one("#audience-parent", Select)
        if previous is None or previous.segments != view.segments:
            parent_select.set_options(
                (Text(literal(name), no_wrap=True, overflow="ellipsis"), name) for name in parents
            )
        parent = audience.parent_segment if audience else self._pending_parent
        self._show_value(parent_select, parent)
        self._segment_options(view, parent)
        self._show_value(
            self.query_one("#audience-segment", Select), audience.segment if audience else None
        )
        readonly = self.query_one("#audience-readonly", Static)
        readonly.display = not view.editable
        readonly.update(
            Content(
                f"Read-only: the campaign is {view.campaign.state.value}; "
                "only Drafts can change their audience."
            )
        )
        if audience != self._counted or not self._ever_counted:
            self._counted = audience
            self._ever_counted = True
            self.recount()

    def _segment_options(self, view: CampaignView, parent: str | None) -> None:
        names = sorted(c.segment for c in view.segments if c.parent_segment == parent)
        if names != self._segment_names:
            self._segment_names = names
            select = self.query_one("#audience-segment", Select)
            select.set_options(
                (Text(literal(name), no_wrap=True, overflow="ellipsis"), name) for name in names
            )

    @staticmethod
    def _show_value(select: Select[str], value: str | None) -> None:
        if value is None:
            if select.value is not Select.NULL:
                select.clear()
        elif select.value != value:
            try:
                select.value = value
            except InvalidSelectValueError:  # a stored name the directory no longer has
                select.clear()

    def recount(self) -> None:
        funnel_widget = self.query_one("#audience-funnel", Static)
        samples = self.query_one("#audience-samples", Static)
        audience = self.view.campaign.audience if self.view else None
        if audience is None:
            funnel_widget.update(Content.styled("Choose a segment to see its reach.", MUTED))
            samples.update("")
            return
        funnel_widget.update(Content.styled("Counting the segment's profiles…", MUTED))
        samples.update("")
        self._count(self.host.services, self.host.campaign_id, audience)

    @work(thread=True, exclusive=True, group="reach", exit_on_error=False)
    def _count(self, services: Services, campaign_id: str, audience: AudienceRef) -> None:
        try:
            funnel = services.reach(campaign_id)
        except LccError as exc:
            self.app.call_from_thread(self._count_failed, audience, str(exc))
            return
        self.app.call_from_thread(self._counted_reach, audience, funnel)

    def _counted_reach(self, audience: AudienceRef, funnel: Funnel | None) -> None:
        if self.view is None or self.view.campaign.audience != audience:
            return
        if funnel is None:
            self.query_one("#audience-funnel", Static).update(
                Content.styled("Choose a segment to see its reach.", MUTED)
            )
            return
        self.query_one("#audience-funnel", Static).update(funnel_table(funnel))
        self.query_one("#audience-samples", Static).update(samples_table(funnel))

    def _count_failed(self, audience: AudienceRef, reason: str) -> None:
        self.query_one("#audience-funnel", Static).update(
            Content.styled(literal(f"Cannot count this segment: {reason}"), "$text-error")
        )
        self.notify(
            f"{reason}. Fix the segment's file, then press n to count again.",
            title="Reach not counted",
            severity="error",
        )

    # --- editing -----------------------------------------------------------------------

    @on(Select.Changed, "#audience-parent")
    def _parent_changed(self, event: Select.Changed) -> None:
        event.stop()
        view = self.view
        if view is None:
            return
        parent = event.value if isinstance(event.value, str) else None
        stored = view.campaign.audience
        if stored is not None and stored.parent_segment == parent:
            return
        self._pending_parent = parent
        self._segment_options(view, parent)
        self.query_one("#audience-segment", Select).clear()
        if stored is not None:
            self.edit(_set_audience(None), "The target segment")

    @on(Select.Changed, "#audience-segment")
    def _segment_changed(self, event: Select.Changed) -> None:
        event.stop()
        parent = self.query_one("#audience-parent", Select).value
        if not isinstance(parent, str) or not isinstance(event.value, str):
            return
        self.edit(
            _set_audience(AudienceRef(parent_segment=parent, segment=event.value)),
            "The target segment",
        )

    def action_recount(self) -> None:
        self.recount()


def _set_audience(audience: AudienceRef | None) -> SpecChange:
    def change(spec: CampaignSpec) -> CampaignSpec:
        return spec.model_copy(update={"audience": audience})

    return change
