"""UTM Tracking: the parameters every link gets, and every link before and after, live.

The list is recomputed from the form as the operator types (`core.compose.campaign_links` on the
campaign with the form's settings), before anything is saved, so the effect of a change is seen
at once; the form itself is saved a moment after typing stops.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Input, Label, Static

from core.compose import campaign_links
from core.models import CampaignSpec, UtmSettings
from core.personalize import TemplateError
from core.utm import check_settings
from core.validation import Issue, Tab
from tui.tabs.base import (
    MUTED,
    CampaignTab,
    CampaignView,
    FieldIssues,
    FormError,
    heading,
    note,
    set_input,
)
from tui.widgets import literal

STANDARD = (
    ("utm_source", "line"),
    ("utm_medium", "social"),
    ("utm_campaign", ""),
    ("utm_content", ""),
    ("utm_term", ""),
)


def place(where: str, ordinal: int) -> str:
    """Where a link sits, in words: `actions[0].linkUri` is tap area 1."""
    if where == "text":
        return f"text link {ordinal}"
    if where.startswith("actions["):
        return f"area {int(where[8 : where.index(']')]) + 1}"
    if where.startswith("video"):
        return "video link"
    return where


def link_lines(spec: CampaignSpec, campaign_id: str) -> Content:
    """Every link, numbered by message, with its original and final form."""
    try:
        links = campaign_links(spec, None, campaign_id=campaign_id)
    except TemplateError as error:
        return Content.styled(literal(f"Links cannot be worked out: {error}"), "$text-error")
    if not links:
        return Content.styled(
            "No links yet: URLs in Text messages and imagemap link actions appear here.",
            MUTED,
        )
    lines: list[Content] = []
    ordinals: dict[int, int] = {}
    for link in links:
        ordinals[link.message] = ordinals.get(link.message, 0) + 1
        lines.append(
            Content.assemble(
                (f"{link.message + 1}. {place(link.where, ordinals[link.message])}  ", "bold"),
                (literal(link.original), MUTED),
            )
        )
        changed = link.url != link.original
        lines.append(
            Content.assemble(
                ("→\u00a0", MUTED),  # no break: a long URL folds after the arrow
                (literal(link.url), "$text-accent underline" if changed else ""),
            )
        )
    return Content("\n").join(lines)


class RemoveParameter(Button):
    """Removes one extra parameter; it knows which by name, not by position."""

    def __init__(self, key: str, *, disabled: bool) -> None:
        super().__init__("Remove", compact=True, classes="editable remove", disabled=disabled)
        self.key = key


class UtmTab(CampaignTab):
    TAB: ClassVar[Tab | None] = Tab.UTM

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._extra: dict[str, str] = {}
        self._live: list[Issue] = []

    def compose(self) -> ComposeResult:
        yield heading("Parameters")
        yield note(
            "Appended to every link: text message URLs and imagemap link actions. Defaults for "
            "LINE: utm_source=line, utm_medium=social, utm_campaign empty = the campaign name. "
            "Values may use {{campaign.id}} and {{campaign.name}}.",
            id="utm-defaults",
        )
        for key, default in STANDARD:
            with Horizontal(classes="form-row"):
                yield Label(key, classes="field-label")
                yield Input(
                    placeholder=default or "optional",
                    id=f"utm-{key}",
                    compact=True,
                    classes="editable",
                )
            yield FieldIssues(f"utm.{key}")
        with Horizontal(classes="form-row"):
            yield Checkbox(
                "Per-area attribution: utm_content = the area (m1-a2) or link (m1-l1)",
                id="utm-per-area",
                compact=True,
                classes="editable",
            )
        yield heading("Extra parameters")
        yield Vertical(id="utm-extra-list")
        with Horizontal(classes="form-row", id="utm-extra-add"):
            yield Input(placeholder="key", id="utm-extra-key", compact=True, classes="editable")
            yield Label("=", classes="equals")
            yield Input(
                placeholder="value (Enter adds)",
                id="utm-extra-value",
                compact=True,
                classes="editable",
            )
            yield Button("Add", id="utm-extra-add-button", compact=True, classes="editable")
        yield FormError(id="utm-form-error")
        yield FieldIssues("utm.extra")
        yield FieldIssues("utm", catch_all=True)
        yield heading("Every link, before → after")
        yield Static(id="utm-links", classes="links")

    # --- drawing -----------------------------------------------------------------------

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        campaign = view.campaign
        utm = campaign.utm
        for key, _default in STANDARD:
            value = getattr(utm, key) or ""
            set_input(self.query_one(f"#utm-{key}", Input), value)
        self.query_one(
            "#utm-utm_campaign", Input
        ).placeholder = f"empty: the campaign name ({campaign.name})"
        switch = self.query_one("#utm-per-area", Checkbox)
        if switch.value != utm.per_area_content:
            switch.value = utm.per_area_content
        if previous is None or previous.campaign.utm.extra != utm.extra:
            self._extra = dict(utm.extra)
            self._draw_extra(view.editable)
        self._refresh_links()

    def _draw_extra(self, editable: bool) -> None:
        box = self.query_one("#utm-extra-list", Vertical)
        box.remove_children()
        rows: list[Static | Horizontal] = []
        for key, value in self._extra.items():
            row = Horizontal(
                Static(
                    Content.assemble((literal(key), "bold"), " = ", literal(value)),
                    classes="extra-pair",
                ),
                RemoveParameter(key, disabled=not editable),
                classes="form-row extra-row",
            )
            rows.append(row)
        if not rows:
            rows.append(Static(Content.styled("None.", MUTED), classes="extra-pair"))
        box.mount_all(rows)

    def _form_utm(self) -> UtmSettings:
        values = {key: self.query_one(f"#utm-{key}", Input).value for key, _d in STANDARD}
        return UtmSettings(
            utm_source=values["utm_source"],
            utm_medium=values["utm_medium"],
            utm_campaign=values["utm_campaign"],
            utm_content=values["utm_content"] or None,
            utm_term=values["utm_term"] or None,
            extra=dict(self._extra),
            per_area_content=self.query_one("#utm-per-area", Checkbox).value,
        )

    def _refresh_links(self) -> None:
        view = self.view
        if view is None:
            return
        campaign = view.campaign
        utm = self._form_utm()
        spec = campaign.spec().model_copy(update={"utm": utm})
        self.query_one("#utm-links", Static).update(link_lines(spec, campaign.id))
        self._live = [
            Issue(tab=Tab.UTM, field=p.field, code=p.code, message=p.message)
            for p in check_settings(utm, campaign_id=campaign.id, campaign_name=campaign.name)
        ]
        self.show_issues(view)

    def issues_to_show(self, view: CampaignView) -> list[Issue]:
        """Stored issues plus what the form's current values would give, each once."""
        shown: list[Issue] = []
        seen: set[tuple[str, str]] = set()
        for issue in [*self._live, *view.tab_issues(Tab.UTM)]:
            if (issue.field, issue.code) not in seen:
                seen.add((issue.field, issue.code))
                shown.append(issue)
        return shown

    # --- editing -----------------------------------------------------------------------

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id in ("utm-extra-key", "utm-extra-value"):
            return
        self._refresh_links()
        self.schedule_commit()

    @on(Checkbox.Changed, "#utm-per-area")
    def _switched(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._refresh_links()
        self.flush()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "utm-extra-key":
            self.query_one("#utm-extra-value", Input).focus()
        elif event.input.id == "utm-extra-value":
            self._add_extra()
        else:
            self.flush()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button_id = event.button.id or ""
        if button_id == "utm-extra-add-button":
            self._add_extra()
        elif isinstance(event.button, RemoveParameter):
            self._extra.pop(event.button.key, None)
            self._draw_extra(True)
            self._refresh_links()
            self.flush()

    def _add_extra(self) -> None:
        key_input = self.query_one("#utm-extra-key", Input)
        value_input = self.query_one("#utm-extra-value", Input)
        key = key_input.value.strip()
        value = value_input.value.strip()
        error = self.query_one(FormError)
        if not key:
            error.say("give the parameter a name, then a value")
            key_input.focus()
            return
        if not value:
            error.say(f"give {key} a value")
            value_input.focus()
            return
        error.say(None)
        self._extra[key] = value
        key_input.value = ""
        value_input.value = ""
        key_input.focus()
        self._draw_extra(True)
        self._refresh_links()
        self.flush()

    def action_add_parameter(self) -> None:
        self.query_one("#utm-extra-key", Input).focus()

    def can(self, action: str) -> bool | None:
        view = self.latest
        return True if view is not None and view.editable else None

    def commit(self) -> None:
        utm = self._form_utm()

        def change(spec: CampaignSpec) -> CampaignSpec:
            return spec.model_copy(update={"utm": utm})

        self.edit(change, "The UTM parameters")
