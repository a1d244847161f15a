"""Activation: the retry policy (editable in Draft) and, in plain words, what each error does."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Input, Label, Static

from core.models import ActivationPolicy, CampaignSpec
from core.retry import backoff_ceiling
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

FIELDS: tuple[tuple[str, str, Literal["integer", "number"], str], ...] = (
    ("max_attempts", "Max attempts", "integer", "per request, the first one included"),
    ("initial_backoff_s", "Initial backoff", "number", "seconds before the first retry, at most"),
    ("max_backoff_s", "Max backoff", "number", "seconds: no wait is ever longer"),
)

EXPLANATION = (
    (
        "Transient errors",
        "timeouts, 5xx answers and LINE's 429 rate limit: retried with "
        "exponential backoff and full jitter, each time with the same X-Line-Retry-Key, so LINE "
        "accepts the request at most once however often it is sent.",
    ),
    (
        "Permanent errors",
        "an invalid or blocked LINE user id, a message LINE refuses (400): "
        "recorded in the delivery log as failures, without retry.",
    ),
    (
        "Fatal errors",
        "the monthly message limit is reached, or the channel token is refused "
        "(401/403): no request of the campaign can succeed, so the campaign is suspended with the "
        "reason. Fix the cause and resume it.",
    ),
    (
        "LINE's 24-hour window",
        "LINE remembers a retry key for 24 hours. Within that time a "
        "retry or a resumed delivery can never send twice; after it, LINE would treat the same key "
        "as a new request, so resume a suspended campaign within a day.",
    ),
)


def wait_schedule(policy: ActivationPolicy) -> str:
    """The longest wait after each failed attempt, as `core.retry` computes it."""
    attempts = max(1, policy.max_attempts)
    if attempts == 1:
        return "One attempt: a transient error is recorded as a failure at once."
    waits = [backoff_ceiling(n, policy) for n in range(1, attempts)]
    shown = " · ".join(f"{_seconds(w)}" for w in waits[:8])
    more = " · …" if len(waits) > 8 else ""
    return (
        f"Longest waits between attempts: {shown}{more} "
        f"(at most {_seconds(sum(waits))} in all per request)."
    )


def _seconds(value: float) -> str:
    return f"{value:g}s" if value < 120 else f"{value / 60:.1f}min"


class ActivationTab(CampaignTab):
    TAB: ClassVar[Tab | None] = Tab.ACTIVATION

    def compose(self) -> ComposeResult:
        yield heading("Retry policy")
        for name, label, kind, hint in FIELDS:
            with Horizontal(classes="form-row"):
                yield Label(label, classes="field-label")
                yield Input(
                    id=f"activation-{name}",
                    type=kind,
                    compact=True,
                    classes="editable short",
                )
                yield Static(Content(hint), classes="hint")
            yield FieldIssues(f"activation.{name}")
        yield FormError(id="activation-form-error")
        yield Static(id="activation-waits", classes="note")
        yield FieldIssues("activation", catch_all=True)
        yield heading("What happens to errors")
        for title, text in EXPLANATION:
            yield Static(Content.assemble((f"{title}: ", "bold"), text), classes="explanation")
        yield note(
            "Delivery sends one push request per recipient with the campaign's messages as one "
            "bundle, at LINE's rate limits, and records every outcome in the delivery log."
        )

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        policy = view.campaign.activation
        for name, _label, _kind, _hint in FIELDS:
            value = getattr(policy, name)
            set_input(self.query_one(f"#activation-{name}", Input), f"{value:g}")
        self.query_one("#activation-waits", Static).update(Content(wait_schedule(policy)))

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        policy = self._form_policy()
        if policy is not None:
            self.query_one("#activation-waits", Static).update(Content(wait_schedule(policy)))
        self.schedule_commit()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.flush()

    def _form_policy(self) -> ActivationPolicy | None:
        values: dict[str, float | int] = {}
        for name, label, kind, _hint in FIELDS:
            text = self.query_one(f"#activation-{name}", Input).value.strip()
            try:
                values[name] = int(text) if kind == "integer" else float(text)
            except ValueError:
                wanted = "a whole number" if kind == "integer" else "a number of seconds"
                self.query_one(FormError).say(f"{label}: enter {wanted}")
                return None
        self.query_one(FormError).say(None)
        return ActivationPolicy.model_validate(values)

    def commit(self) -> None:
        policy = self._form_policy()
        if policy is None:
            return

        def change(spec: CampaignSpec) -> CampaignSpec:
            return spec.model_copy(update={"activation": policy})

        self.edit(change, "The retry policy")
