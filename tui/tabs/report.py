"""Report: what the delivery log says, and (with `core.report`) the funnel, links and notes.

`core.report.build_report` is imported when the tab first counts, not when the console starts;
should it fail, the tab still shows delivered, failed and excluded from `Services.counts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from core.audience import Exclusion
from core.delivery_log import LogCounts
from core.errors import LccError
from core.models import CampaignState
from core.validation import Tab
from tui.tabs.base import MUTED, CampaignTab, CampaignView, heading, note
from tui.times import REPORT_ZONE, moment_text
from tui.widgets import literal

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from core.report import CampaignReport
    from core.service import Services

EXCLUSION_CODES = frozenset(reason.value for reason in Exclusion)


def figure_rows(rows: list[tuple[str, int, str]]) -> Content:
    return Content("\n").join(
        Content.assemble((f"{label:<11}", "bold"), f"{value:>9,}  ", (hint, MUTED))
        for label, value, hint in rows
    )


def counts_table(counts: LogCounts) -> Content:
    excluded = sum(n for code, n in counts.errors.items() if code in EXCLUSION_CODES)
    return figure_rows(
        [
            ("Delivered", counts.delivered, "profiles whose messages LINE accepted"),
            ("Failed", counts.failed, "profiles with a failure row, excluded ones included"),
            ("Excluded", excluded, "profiles without a usable LINE user id"),
            ("Log rows", counts.rows, "one per profile and message; test sends not counted"),
        ]
    )


def report_table(report: CampaignReport) -> Content:
    return figure_rows(
        [
            ("Delivered", report.delivered, "profiles whose messages LINE accepted"),
            ("Failed", report.failed, "profiles with a failure row, excluded ones included"),
            ("Excluded", report.excluded, "profiles without a usable LINE user id"),
            ("Pending", report.pending, "profiles of the audience without an outcome yet"),
            ("Test sends", report.test_sends, "logged apart, never counted above"),
        ]
    )


def errors_table(errors: dict[str, int], meaning: Any = None) -> Content:
    if not errors:
        return Content.styled("No errors recorded.", MUTED)
    lines = []
    width = max(len(code) for code in errors) + 1
    for code, count in sorted(errors.items(), key=lambda item: -item[1]):
        why = meaning(code) if meaning is not None else ""
        lines.append(
            Content.assemble(f"{literal(code):<{width}}", f"{count:>7,}  ", (literal(why), MUTED))
        )
    return Content("\n").join(lines)


def funnel_line(report: CampaignReport) -> Content:
    funnel = report.funnel
    steps = [
        ("segment", funnel.segment),
        ("with LINE id", funnel.with_id),
        ("valid", funnel.valid),
        ("unique", funnel.unique),
        ("delivered", funnel.delivered),
    ]
    parts: list[Content | tuple[str, str] | str] = []
    for number, (label, count) in enumerate(steps):
        if number:
            parts.append((" → ", MUTED))
        parts.append((f"{count:,}", "bold"))
        parts.append(f" {label}")
    source = "from the delivery log" if funnel.source == "log" else "from the segment as it is"
    parts.append((f"  ({source})", MUTED))
    return Content.assemble(*parts)


def links_table(report: CampaignReport) -> Content:
    if not report.links:
        return Content.styled("No links.", MUTED)
    lines = []
    for link in report.links:
        clicks = link.get("click")
        tally = (
            f"{clicks:,} clicks, {link.get('uniqueClick') or 0:,} unique"
            if isinstance(clicks, int)
            else "clicks: not in LINE's statistics yet"
        )
        lines.append(
            Content.assemble(
                (f"{int(link['message']) + 1}.\u00a0", "bold"),  # the URL folds, not the line
                (literal(str(link["url"])), "$text-accent underline"),
            )
        )
        lines.append(Content.styled(f"   {tally}", MUTED))
    return Content("\n").join(lines)


def insights_text(report: CampaignReport) -> RenderableType:
    """LINE's figures for the campaign's unit as `lcc report` shows them, or why there are
    none yet."""
    if report.insights is None and report.unit is not None:
        return Content.styled("Not fetched yet: f asks LINE for them.", MUTED)
    from tui.commands.report import insights_part

    return insights_part(report)


TableT = TypeVar("TableT", bound="Table | None")


def untitled(table: TableT) -> TableT:
    """A report table without its own title: the tab heads it."""
    if table is not None:
        table.title = None
        table.show_edge = False  # no blank rows above and below
    return table


def when(moment: datetime | None) -> str:
    return moment_text(moment, REPORT_ZONE)


class ReportTab(CampaignTab):
    TAB: ClassVar[Tab | None] = None

    def compose(self) -> ComposeResult:
        yield Static(id="report-state", classes="note")
        yield heading("Delivery log")
        yield Static(Content.styled("Counting…", MUTED), id="report-counts")
        yield Static(id="report-funnel", classes="note")
        yield heading("Errors by code")
        yield Static(id="report-errors")
        yield heading("Sends over time (UTC+9)")
        yield Static(id="report-timeline")
        yield heading("Links, in their final form")
        yield Static(id="report-links")
        yield heading("LINE's statistics")
        yield Static(Content.styled("Counting…", MUTED), id="report-insights")
        yield heading("Our log beside LINE's day counts", id="report-reconciliation-heading")
        yield Static(id="report-reconciliation")
        yield heading("Webhook events from recipients, 24 h after their send")
        yield Static(id="report-webhook")
        yield Static(id="report-notes", classes="note")
        yield note(
            "LINE reports no per-user opens or clicks; link traffic is measured through the "
            "UTM parameters on the UTM Tracking tab. `lcc report` has the full report.",
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
        from core.report import build_report  # here, not at start-up: only this tab needs it

        try:
            try:
                report = build_report(services.store, campaign_id, now=services.clock.now())
            except LccError:
                raise
            except Exception as exc:  # the full report failed: the log's own counts still show
                self.app.call_from_thread(
                    self.notify,
                    f"The full report could not be built ({type(exc).__name__}: {exc}); "
                    "showing the delivery log's counts.",
                    severity="warning",
                )
                counts = services.counts(campaign_id)
            else:
                self.app.call_from_thread(self._show_report, report)
                return
        except LccError as exc:
            self.app.call_from_thread(
                self.notify,
                f"The delivery log cannot be read: {exc}. F5 tries again.",
                severity="error",
            )
            return
        self.app.call_from_thread(self._show_counts, counts)

    def _show_counts(self, counts: LogCounts) -> None:
        self.query_one("#report-counts", Static).update(counts_table(counts))
        self.query_one("#report-errors", Static).update(errors_table(dict(counts.errors)))
        self.query_one("#report-insights", Static).update(
            Content.styled("Not shown: the full report could not be built.", MUTED)
        )

    def _show_report(self, report: CampaignReport) -> None:
        from core.report import error_meaning, not_fetched_note

        self.query_one("#report-counts", Static).update(report_table(report))
        sends = (
            f"First send {when(report.first_send)}, last {when(report.last_send)}."
            if report.first_send
            else ""
        )
        funnel = self.query_one("#report-funnel", Static)
        funnel.update(Content.assemble(funnel_line(report), "\n", sends))
        self.query_one("#report-errors", Static).update(errors_table(report.errors, error_meaning))
        self.query_one("#report-links", Static).update(links_table(report))
        self.query_one("#report-insights", Static).update(insights_text(report))
        self._show_cli_parts(report)
        shown = [n for n in report.notes if n != not_fetched_note(report.campaign_id)]
        notes = self.query_one("#report-notes", Static)
        notes.display = bool(shown)
        notes.update(Content("\n").join(Content(f"• {literal(n)}") for n in shown))

    def _show_cli_parts(self, report: CampaignReport) -> None:
        """The sections drawn as `lcc report` draws them (their titles are the tab's headings)."""
        from tui.commands.report import reconciliation_table, timeline_table, webhook_table

        timeline = untitled(timeline_table(report))
        self.query_one("#report-timeline", Static).update(
            timeline if timeline is not None else Content.styled("Nothing sent yet.", MUTED)
        )
        reconciliation = untitled(reconciliation_table(report))  # once LINE's counts are in
        self.query_one("#report-reconciliation-heading").display = reconciliation is not None
        shown = self.query_one("#report-reconciliation", Static)
        shown.display = reconciliation is not None
        shown.update(reconciliation if reconciliation is not None else "")
        self.query_one("#report-webhook", Static).update(untitled(webhook_table(report)))

    def can(self, action: str) -> bool | None:
        if action == "fetch_insights":
            view = self.view
            return view is not None and view.campaign.aggregation_unit is not None
        return True

    def action_fetch_insights(self) -> None:
        self.query_one("#report-insights", Static).update(Content.styled("Asking LINE…", MUTED))
        self._fetch_insights(self.host.services, self.host.campaign_id)

    @work(group="insights", exclusive=True, exit_on_error=False)
    async def _fetch_insights(self, services: Services, campaign_id: str) -> None:
        try:
            outcome, report = await services.fetch_insights(campaign_id)
        except LccError as exc:  # not launched, the hour's budget used up, LINE refused
            self.notify(literal(str(exc)), title="LINE's statistics", severity="error")
            self.refresh_counts()
            return
        self._show_report(report)
        said = "fetched" if outcome.fetched else "already final, not asked again"
        extra = "".join(f"\n{note}" for note in outcome.notes)
        self.notify(literal(f"LINE's statistics {said}.{extra}"), title="LINE's statistics")
