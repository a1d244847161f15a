"""Report: what the delivery log says (delivered, failed, excluded, errors by code)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from core.audience import Exclusion
from core.delivery_log import LogCounts
from core.errors import LccError
from core.models import CampaignState
from core.validation import Tab
from tui.tabs.base import CampaignTab, CampaignView, heading, note
from tui.widgets import literal

if TYPE_CHECKING:
    from core.service import Services

EXCLUSION_CODES = frozenset(reason.value for reason in Exclusion)


def counts_table(counts: LogCounts) -> Content:
    excluded = sum(n for code, n in counts.errors.items() if code in EXCLUSION_CODES)
    rows = (
        ("Delivered", counts.delivered, "profiles whose messages LINE accepted"),
        ("Failed", counts.failed, "profiles with a failure row, excluded ones included"),
        ("Excluded", excluded, "profiles without a usable LINE user id"),
        ("Log rows", counts.rows, "one per profile and message; test sends not counted"),
    )
    lines = [
        Content.assemble((f"{label:<11}", "bold"), f"{value:>9,}  ", (hint, "$text-muted"))
        for label, value, hint in rows
    ]
    return Content("\n").join(lines)


def errors_table(counts: LogCounts) -> Content:
    if not counts.errors:
        return Content.styled("No errors recorded.", "$text-muted")
    lines = [
        Content.assemble(f"{literal(code):<28}", f"{n:>9,}")
        for code, n in counts.errors.most_common()
    ]
    return Content("\n").join(lines)


class ReportTab(CampaignTab):
    TAB: ClassVar[Tab | None] = None

    def compose(self) -> ComposeResult:
        yield Static(id="report-state", classes="note")
        yield heading("Delivery log")
        yield Static(Content.styled("Counting…", "$text-muted"), id="report-counts")
        yield heading("Errors by code")
        yield Static(id="report-errors")
        yield note(
            "LINE reports no per-user opens or clicks; link traffic is measured through the "
            "UTM parameters on the UTM Tracking tab.",
        )

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_counts()

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        state = view.campaign.state
        text = {
            CampaignState.DRAFT: "Nothing has been sent: the figures fill once it is launched.",
            CampaignState.PLANNED: "Planned: nothing has been sent yet.",
            CampaignState.ACTIVE: "Delivering: F5 refreshes the figures.",
            CampaignState.FINISHED: "Delivery finished.",
            CampaignState.SUSPENDED: "Suspended: the figures cover what was sent before.",
        }[state]
        self.query_one("#report-state", Static).update(Content(text))
        if previous is not None and previous.campaign.state is not state:
            self.refresh_counts()

    def refresh_counts(self) -> None:
        self._count(self.host.services, self.host.campaign_id)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _count(self, services: Services, campaign_id: str) -> None:
        try:
            counts = services.counts(campaign_id)
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, f"The delivery log cannot be read: {exc}", severity="error"
            )
            return
        self.app.call_from_thread(self._show_counts, counts)

    def _show_counts(self, counts: LogCounts) -> None:
        self.query_one("#report-counts", Static).update(counts_table(counts))
        self.query_one("#report-errors", Static).update(errors_table(counts))
