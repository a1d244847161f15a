"""Delivery Schedule: Send Immediately, or Schedule for Later in an IANA time zone.

Recurring is shown, disabled, because the seeds say Always-On campaigns do that.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from core.models import CampaignSpec, CampaignState, ImmediateSchedule, ScheduledSchedule
from core.validation import Tab
from tui.tabs.base import (
    CampaignTab,
    CampaignView,
    FieldIssues,
    FormError,
    heading,
    note,
    set_input,
)
from tui.times import REPORT_ZONE, in_zone, moment_text

DEFAULT_TIMEZONE = "Asia/Tokyo"


@lru_cache(maxsize=1)
def zone_names() -> list[str]:
    return sorted(available_timezones())


def parse_moment(day: str, clock_time: str, zone_name: str) -> tuple[datetime | None, str | None]:
    """The aware moment the operator means, or why it cannot be one."""
    try:
        zone = ZoneInfo(zone_name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"time zone {zone_name.strip()!r} is not an IANA zone (e.g. Asia/Tokyo)"
    try:
        parsed_day = date.fromisoformat(day.strip())
    except ValueError:
        return None, "date: use YYYY-MM-DD, e.g. 2026-12-01"
    try:
        parsed_time = time.fromisoformat(clock_time.strip())
    except ValueError:
        return None, "time: use HH:MM in 24-hour form, e.g. 18:30"
    naive = datetime.combine(parsed_day, parsed_time.replace(tzinfo=None))
    moment = naive.replace(tzinfo=zone)
    if moment.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != naive:
        return None, f"{naive:%Y-%m-%d %H:%M} does not exist in {zone_name} (the clocks skip it)"
    return moment, None


def default_moment(now: datetime, zone_name: str) -> datetime:
    """Tomorrow at 10:00 in the zone: a sensible first proposal for a scheduled send."""
    zone = ZoneInfo(zone_name)
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(10, 0), tzinfo=zone)


def describe_gap(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "in the past"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if not days:
        parts.append(f"{minutes}m")
    return "in " + " ".join(parts)


class ScheduleTab(CampaignTab):
    TAB: ClassVar[Tab | None] = Tab.SCHEDULE

    def compose(self) -> ComposeResult:
        yield heading("When to send")
        with RadioSet(id="schedule-kind", compact=True, classes="editable"):
            yield RadioButton("Send Immediately", id="schedule-immediate", value=True)
            yield RadioButton("Schedule for Later", id="schedule-later")
            yield RadioButton("Recurring (to be supported)", id="schedule-recurring", disabled=True)
        yield note(
            "Send Immediately: delivery begins as soon as you launch. Schedule for Later: it "
            "begins at the date and time below. Recurring sends are done by Always-On "
            "campaigns, not one-off campaigns."
        )
        with Horizontal(classes="form-row", id="schedule-when"):
            yield Label("Date", classes="field-label narrow")
            yield Input(
                placeholder="YYYY-MM-DD",
                id="schedule-date",
                compact=True,
                classes="editable date",
            )
            yield Label("Time", classes="inline")
            yield Input(
                placeholder="HH:MM", id="schedule-time", compact=True, classes="editable clock"
            )
        with Horizontal(classes="form-row"):
            yield Label("Time zone", classes="field-label narrow")
            yield Input(
                DEFAULT_TIMEZONE,
                id="schedule-zone",
                compact=True,
                classes="editable zone",
                suggester=SuggestFromList(zone_names(), case_sensitive=False),
            )
        yield FormError(id="schedule-form-error")
        yield Static(id="schedule-summary", classes="note")
        yield FieldIssues("schedule", catch_all=True)

    # --- drawing -----------------------------------------------------------------------

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        schedule = view.campaign.schedule
        later = isinstance(schedule, ScheduledSchedule)
        button = "#schedule-later" if later else "#schedule-immediate"
        radio = self.query_one(button, RadioButton)
        if not radio.value:
            radio.value = True  # the echo of this change saves nothing: the spec is unchanged
        if isinstance(schedule, ScheduledSchedule):
            zone_name = schedule.timezone or DEFAULT_TIMEZONE
            local = in_zone(schedule.at, zone_name)
            set_input(self.query_one("#schedule-date", Input), f"{local:%Y-%m-%d}")
            set_input(self.query_one("#schedule-time", Input), f"{local:%H:%M}")
            set_input(self.query_one("#schedule-zone", Input), zone_name)
        for widget_id in ("#schedule-date", "#schedule-time", "#schedule-zone"):
            self.query_one(widget_id).disabled = not (view.editable and later)
        self._summarise()

    def _summarise(self) -> None:
        summary = self.query_one("#schedule-summary", Static)
        view = self.view
        if view is None:
            return
        summary.update(Content(self._summary_text(view)))

    def _summary_text(self, view: CampaignView) -> str:
        """What the schedule means for this campaign now: a Draft's next step, or what
        happened (a launched campaign's schedule is history, not an offer to launch)."""
        campaign = view.campaign
        launched = campaign.launched_at
        later = self.query_one("#schedule-later", RadioButton).value
        if not later:
            if launched is not None:
                return f"Sent immediately: launched {moment_text(launched, REPORT_ZONE)}."
            if not view.editable:
                return "Send Immediately; it was not launched."
            return "Delivery starts when you press l (Launch)."
        moment, _problem = self._form_moment()
        if moment is None:
            return ""
        now = self.host.services.clock.now()
        utc = moment.astimezone(ZoneInfo("UTC"))
        offset = moment.isoformat()[-6:]
        when = f"{moment:%Y-%m-%d %H:%M %Z} (UTC{offset}; {utc:%Y-%m-%d %H:%M} UTC)"
        if campaign.state is CampaignState.PLANNED:
            return f"Planned: starts {when}, {describe_gap(moment, now)}."
        if launched is not None:
            return f"Scheduled for {when}; launched {moment_text(launched, REPORT_ZONE)}."
        if not view.editable:
            return f"Scheduled for {when}; it was not launched."
        if moment <= now:
            return f"Starts {when}, in the past: choose a later time, or Send Immediately."
        return f"Starts {when}, {describe_gap(moment, now)}. Press l to schedule it."

    # --- editing -----------------------------------------------------------------------

    def _form_moment(self) -> tuple[datetime | None, str | None]:
        moment, problem = parse_moment(
            self.query_one("#schedule-date", Input).value,
            self.query_one("#schedule-time", Input).value,
            self.query_one("#schedule-zone", Input).value or DEFAULT_TIMEZONE,
        )
        self.query_one(FormError).say(problem)
        return moment, problem

    @on(RadioSet.Changed, "#schedule-kind")
    def _kind_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        later = event.pressed.id == "schedule-later"
        for widget_id in ("#schedule-date", "#schedule-time", "#schedule-zone"):
            self.query_one(widget_id).disabled = not later
        if later:
            date_input = self.query_one("#schedule-date", Input)
            if not date_input.value:
                zone_name = self.query_one("#schedule-zone", Input).value or DEFAULT_TIMEZONE
                try:
                    proposal = default_moment(self.host.services.clock.now(), zone_name)
                except (ZoneInfoNotFoundError, ValueError):
                    proposal = default_moment(self.host.services.clock.now(), DEFAULT_TIMEZONE)
                date_input.value = f"{proposal:%Y-%m-%d}"
                self.query_one("#schedule-time", Input).value = f"{proposal:%H:%M}"
        else:
            self.query_one(FormError).say(None)
        self._summarise()
        self.flush()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._summarise()
        self.schedule_commit()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.flush()

    def commit(self) -> None:
        if not self.query_one("#schedule-later", RadioButton).value:

            def immediate(spec: CampaignSpec) -> CampaignSpec:
                return spec.model_copy(update={"schedule": ImmediateSchedule()})

            self.edit(immediate, "Send Immediately")
            return
        moment, _problem = self._form_moment()
        if moment is None:
            return
        zone_name = (self.query_one("#schedule-zone", Input).value or DEFAULT_TIMEZONE).strip()
        schedule = ScheduledSchedule(at=moment, timezone=zone_name)

        def scheduled(spec: CampaignSpec) -> CampaignSpec:
            return spec.model_copy(update={"schedule": schedule})

        self.edit(scheduled, "The scheduled time")
