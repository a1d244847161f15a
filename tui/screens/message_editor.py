"""Add or edit one message (Text v2 or Imagemap), with LINE's rules checked as you type.

The issues shown are the ones launch validation would report for this message
(`core.validation.validate_campaign` on the campaign with the edited message in place), so what
the editor accepts quietly is what the campaign tab accepts. Also the small dialogs the campaign
screen asks with: yes/no, and one line of text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from core.errors import LccError
from core.models import (
    Area,
    BaseSize,
    Campaign,
    ClipboardAction,
    ImagemapMessage,
    Message,
    MessageAction,
    TextV2Message,
    UriAction,
)
from core.personalize import is_personalised
from core.rules import utf16_length
from core.validation import Issue, ValidationContext, validate_campaign
from tui.screens.confirm import Dialog
from tui.tabs.base import MUTED, field_matches, issue_line
from tui.widgets import literal

if TYPE_CHECKING:
    from core.service import Services

TEXT_LIMIT = 5000
IMAGEMAP_WIDTH = 1040
CHECK_DEBOUNCE_S = 0.2
ACTION_TYPES = (("uri", "link"), ("message", "message"), ("clipboard", "copy"))
TARGET_FIELD = {"uri": "linkUri", "message": "text", "clipboard": "clipboardText"}
TARGET_HINT = {"uri": "https://… link", "message": "text the user sends", "clipboard": "text"}


class AreaRow(Horizontal):
    """One tap area: type, x, y, width, height and what it does."""

    def __init__(self, action: Any | None, number: int, *, image_height: int) -> None:
        super().__init__(classes="area-row")
        self.original = action
        self.number = number
        kind = getattr(action, "type", "uri")
        self.kind = kind if kind in TARGET_FIELD else "uri"
        area = getattr(action, "area", None) or Area(
            x=0, y=0, width=IMAGEMAP_WIDTH, height=image_height
        )
        self.area = area
        self.target = str(getattr(action, TARGET_FIELD[self.kind], "") or "")

    def compose(self) -> ComposeResult:
        yield Label(f"{self.number}", classes="area-number")
        yield Select[str](
            [(label, value) for value, label in ACTION_TYPES],
            value=self.kind,
            allow_blank=False,
            compact=True,
            classes="area-type",
        )
        for name in ("x", "y", "width", "height"):
            yield Input(
                str(getattr(self.area, name)),
                type="integer",
                compact=True,
                classes=f"area-{name} area-number-input",
                tooltip=name,
            )
        yield Input(
            self.target, placeholder=TARGET_HINT[self.kind], compact=True, classes="area-target"
        )
        yield Button("✕", compact=True, classes="area-remove", tooltip="Remove this area")

    def build(self) -> UriAction | MessageAction | ClipboardAction:
        """The action this row describes; ValueError names the field that is not a number."""
        kind = self.query_one(".area-type", Select).value
        values: dict[str, int] = {}
        for name in ("x", "y", "width", "height"):
            text = self.query_one(f".area-{name}", Input).value.strip()
            try:
                values[name] = int(text)
            except ValueError:
                raise ValueError(f"area {self.number}: {name} must be a whole number") from None
        area = Area(**values)
        target = self.query_one(".area-target", Input).value
        label = getattr(self.original, "label", None)
        if kind == "message":
            return MessageAction(text=target, area=area, label=label)
        if kind == "clipboard":
            return ClipboardAction(clipboardText=target, area=area, label=label)
        return UriAction(linkUri=target, area=area, label=label)


class MessageEditor(ModalScreen[Message | None]):
    """Returns the new message, or None when the operator cancels."""

    CSS_PATH = "../campaign.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2,alt+enter", "save", "Save", id="editor.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
        Binding("f3", "add_area", "Add area", id="editor.add_area"),
    ]

    def __init__(self, campaign: Campaign, index: int, *, kind: str, services: Services) -> None:
        super().__init__()
        self.campaign = campaign
        self.index = index
        self.kind = kind
        self.services = services
        existing = campaign.messages[index] if index < len(campaign.messages) else None
        self.original: Message | None = existing
        self._validation: ValidationContext | None = None
        self._check_timer: Timer | None = None
        self._areas = 0

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        title = "Text message" if self.kind == "textV2" else "Imagemap message"
        verb = "Edit" if self.original is not None else "Add"
        with Vertical(id="editor"):
            yield Static(
                Content.assemble((f"{verb} message {self.index + 1}: {title}", "bold")),
                id="editor-title",
            )
            if self.kind == "textV2":
                yield from self._compose_text()
            else:
                yield from self._compose_imagemap()
            yield Static(id="editor-form-error", classes="form-error")
            yield Static(id="editor-issues", classes="field-issues")
            with Horizontal(id="editor-buttons"):
                yield Button("Save (F2)", id="editor-save", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="editor-cancel", compact=True)
                if self.kind == "imagemap":
                    yield Button("Add area (F3)", id="editor-add-area", compact=True)

    def _compose_text(self) -> ComposeResult:
        text = self.original.text if isinstance(self.original, TextV2Message) else ""
        yield TextArea(
            text, id="editor-text", soft_wrap=True, show_line_numbers=False, compact=True
        )
        yield Static(id="editor-count", classes="hint")

    def _compose_imagemap(self) -> ComposeResult:
        message = self.original if isinstance(self.original, ImagemapMessage) else None
        with VerticalScroll(id="editor-imagemap"):
            for field_id, label, value, hint in (
                (
                    "base-url",
                    "Base URL",
                    message.baseUrl if message else "https://",
                    "images at /1040, /700, /460, /300, /240",
                ),
                (
                    "alt-text",
                    "Alt text",
                    message.altText if message else "",
                    "shown in notifications",
                ),
                (
                    "height",
                    "Height",
                    str(message.baseSize.height) if message else "1040",
                    "pixels at width 1040",
                ),
            ):
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="field-label narrow")
                    yield Input(
                        value,
                        id=f"editor-{field_id}",
                        compact=True,
                        type="integer" if field_id == "height" else "text",
                        placeholder=hint,
                    )
            yield Static(
                Content.styled("Tap areas  (type · x · y · width · height · target)", "bold"),
                classes="heading",
            )
            yield Vertical(id="editor-areas")

    def on_mount(self) -> None:
        if self.kind == "textV2":
            area = self.query_one("#editor-text", TextArea)
            area.focus()
            area.move_cursor(area.document.end)
            self._count()
        else:
            message = self.original if isinstance(self.original, ImagemapMessage) else None
            actions = list(message.actions) if message else [None]
            for action in actions:
                self._add_area_row(action)
            self.query_one("#editor-base-url", Input).focus()
        self._load_context()

    def _add_area_row(self, action: Any | None) -> None:
        """A row for `action`; a new area covers the whole image, as tall as it is now."""
        self._areas += 1
        try:
            height = int(self.query_one("#editor-height", Input).value)
        except ValueError:
            height = IMAGEMAP_WIDTH
        row = AreaRow(action, self._areas, image_height=max(1, height))
        self.query_one("#editor-areas", Vertical).mount(row)

    # --- live checks -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="editor-context", exit_on_error=False)
    def _load_context(self) -> None:
        try:
            context = self.services.validation_context(self.campaign.workspace, self.campaign.id)
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, f"Cannot check the message: {exc}", severity="warning"
            )
            return
        self.app.call_from_thread(self._context_ready, context)

    def _context_ready(self, context: ValidationContext) -> None:
        self._validation = context
        self._schedule_check()

    def _schedule_check(self) -> None:
        if self._check_timer is not None:
            self._check_timer.stop()
        self._check_timer = self.set_timer(CHECK_DEBOUNCE_S, self._start_check)

    def _start_check(self) -> None:
        if self._validation is None:
            return
        try:
            message = self.build()
        except ValueError as exc:
            self._form_error(str(exc))
            return
        self._form_error(None)
        self._check(message, self._validation)

    @work(thread=True, exclusive=True, group="editor-check", exit_on_error=False)
    def _check(self, message: Message, context: ValidationContext) -> None:
        messages = list(self.campaign.messages)
        if self.index < len(messages):
            messages[self.index] = message
        else:
            messages.append(message)
        spec = self.campaign.spec().model_copy(update={"messages": messages})
        prefix = f"messages[{self.index}]"
        issues = [i for i in validate_campaign(spec, context) if field_matches(i.field, prefix)]
        self.app.call_from_thread(self._show_issues, issues)

    def _show_issues(self, issues: list[Issue]) -> None:
        widget = self.query_one("#editor-issues", Static)
        widget.display = bool(issues)
        prefix = f"messages[{self.index}]."
        lines = [
            issue_line(
                issue.model_copy(update={"field": issue.field.removeprefix(prefix)}),
                with_field=True,
            )
            for issue in issues[:6]
        ]
        if len(issues) > 6:
            lines.append(Content.styled(f"… and {len(issues) - 6} more", "$text-error"))
        widget.update(Content("\n").join(lines))

    def _form_error(self, problem: str | None) -> None:
        widget = self.query_one("#editor-form-error", Static)
        widget.display = bool(problem)
        widget.update(Content.styled(f"● {problem}", "$text-error") if problem else "")

    def _count(self) -> None:
        text = self.query_one("#editor-text", TextArea).text
        length = utf16_length(text)
        style = "$text-error" if length > TEXT_LIMIT or length == 0 else MUTED
        personal = (
            " · personalised: measured per recipient at launch" if is_personalised(text) else ""
        )
        self.query_one("#editor-count", Static).update(
            Content.assemble(
                (f"{length:,} / {TEXT_LIMIT:,}", style),
                (f" UTF-16 units as written{personal}", MUTED),
            )
        )

    @on(TextArea.Changed)
    def _text_changed(self) -> None:
        self._count()
        self._schedule_check()

    @on(Input.Changed)
    @on(Select.Changed)
    def _field_changed(self) -> None:
        self._schedule_check()

    # --- building the message ----------------------------------------------------------

    def build(self) -> Message:
        if self.kind == "textV2":
            text = self.query_one("#editor-text", TextArea).text
            if isinstance(self.original, TextV2Message):
                return self.original.model_copy(update={"text": text})
            return TextV2Message(text=text)
        height_text = self.query_one("#editor-height", Input).value.strip()
        try:
            height = int(height_text)
        except ValueError:
            raise ValueError("height must be a whole number of pixels") from None
        actions = [row.build() for row in self.query(AreaRow)]
        fields: dict[str, Any] = {
            "baseUrl": self.query_one("#editor-base-url", Input).value.strip(),
            "altText": self.query_one("#editor-alt-text", Input).value,
            "baseSize": BaseSize(width=IMAGEMAP_WIDTH, height=height),
            "actions": actions,
        }
        if isinstance(self.original, ImagemapMessage):
            return self.original.model_copy(update=fields)
        return ImagemapMessage(**fields)

    # --- actions -----------------------------------------------------------------------

    def action_save(self) -> None:
        try:
            message = self.build()
        except ValueError as exc:
            self._form_error(str(exc))
            return
        self.dismiss(message)

    def action_cancel(self) -> None:
        try:
            unchanged = self.original is not None and self.build() == self.original
        except ValueError:
            unchanged = False
        if unchanged or (self.original is None and self._is_blank()):
            self.dismiss(None)
            return
        self.app.push_screen(
            AskYesNo("Discard changes", "Close the editor and lose what you changed?"),
            callback=self._discard,
        )

    def _discard(self, confirmed: bool | None) -> None:
        if confirmed:
            self.dismiss(None)

    def _is_blank(self) -> bool:
        if self.kind == "textV2":
            return not self.query_one("#editor-text", TextArea).text.strip()
        return False

    def action_add_area(self) -> None:
        if self.kind == "imagemap":
            self._add_area_row(None)
            self._schedule_check()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button
        if button.id == "editor-save":
            self.action_save()
        elif button.id == "editor-cancel":
            self.action_cancel()
        elif button.id == "editor-add-area":
            self.action_add_area()
        elif button.has_class("area-remove"):
            row = next((a for a in button.ancestors if isinstance(a, AreaRow)), None)
            if row is not None:
                row.remove()
                self._schedule_check()


# --- small dialogs ------------------------------------------------------------------------------


class AskYesNo(Dialog[bool]):
    """A question answered with y or n (or the buttons)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no"),
    ]

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content.styled(literal(self.title_text), "bold"), classes="dialog-title")
            yield Static(Content(literal(self.question)), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="dialog-yes", variant="error", compact=True)
                yield Button("No (n)", id="dialog-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#dialog-no", Button).focus()  # Enter on a destructive question: no

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "dialog-yes")


class AskText(Dialog[str | None]):
    """One line of text that must match `pattern`; None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
    ]

    def __init__(
        self,
        title: str,
        prompt: str,
        *,
        placeholder: str,
        pattern: str,
        problem: str,
        value: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.placeholder = placeholder
        self.pattern = re.compile(pattern)
        self.problem = problem
        self.value = value
        """Offered as it opens (selected: typing replaces it)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content.styled(literal(self.title_text), "bold"), classes="dialog-title")
            yield Static(Content(literal(self.prompt)), classes="dialog-body")
            yield Input(self.value, placeholder=self.placeholder, id="dialog-input")
            yield Static(id="dialog-problem", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK (Enter)", id="dialog-ok", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="dialog-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#dialog-problem").display = False
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._ok()

    def _ok(self) -> None:
        value = self.query_one(Input).value.strip()
        if not self.pattern.fullmatch(value):
            problem = self.query_one("#dialog-problem", Static)
            problem.display = True
            problem.update(Content.styled(f"● {self.problem}", "$text-error"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "dialog-ok":
            self._ok()
        else:
            self.dismiss(None)
