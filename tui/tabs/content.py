"""Campaign Content: the sender account, the messages (at most 5) and the phone preview.

Messages are added and edited in `MessageEditor`, reordered with keys or by dragging a row with
the mouse, and previewed as the blank profile or as one of the segment's first profiles.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Select, Static
from textual.widgets.select import InvalidSelectValueError

from core.audience import LINE_USER_ID, Exclusion, classify, iter_profiles
from core.errors import LccError, NotFound
from core.models import (
    MAX_MESSAGES,
    AudienceRef,
    CampaignSpec,
    ImagemapMessage,
    Message,
    Profile,
    TextV2Message,
)
from core.preview import MessagePreview, preview_campaign
from core.validation import Tab
from tui.previews import PhonePreview
from tui.tabs.base import MUTED, CampaignTab, CampaignView, FieldIssues, issue_line
from tui.widgets import console_of, literal

if TYPE_CHECKING:
    from core.service import Services

PREVIEW_PROFILES = 20
BLANK_PROFILE = ""


def message_summary(message: Message) -> tuple[str, str]:
    """(kind, one line about it) for the message list."""
    if isinstance(message, TextV2Message):
        first = message.text.strip().splitlines()[0] if message.text.strip() else "(empty)"
        return "Text", first
    if isinstance(message, ImagemapMessage):
        areas = len(message.actions)
        return "Imagemap", f"{message.altText or '(no alt text)'} · {areas} area(s)"
    return message.type, "not sent on this channel"


NOT_SENT = {
    Exclusion.MISSING: "no LINE user id",
    Exclusion.INVALID: "invalid LINE user id",
    Exclusion.DUPLICATE: "duplicate LINE user id",
}
"""Why a profile offered for the preview would not receive the campaign."""


def profile_label(profile: Profile, exclusion: Exclusion | None = None) -> Text:
    names = [str(v) for k, v in profile.attributes.items() if "name" in k and v]
    extra = f" · {names[0]}" if names else ""
    why = f" · {NOT_SENT[exclusion]}" if exclusion is not None else ""
    return Text(literal(f"{profile.profile_id}{extra}{why}"), no_wrap=True, overflow="ellipsis")


class MessageList(Widget, can_focus=True):
    """The campaign's messages, one row each; drag a row with the mouse to move it."""

    DEFAULT_CSS = """
    MessageList { height: auto; min-height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, id="content.cursor_up"),
        Binding("down", "cursor(1)", "Down", show=False, id="content.cursor_down"),
        Binding("enter", "open", "Edit", show=False, id="content.open"),
    ]

    cursor: reactive[int] = reactive(0)

    class Highlighted(TextualMessage):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Opened(TextualMessage):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Moved(TextualMessage):
        def __init__(self, source: int, target: int) -> None:
            super().__init__()
            self.source = source
            self.target = target

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[tuple[str, str, int]] = []
        self._drag_from: int | None = None

    def set_rows(self, rows: list[tuple[str, str, int]]) -> None:
        """(kind, summary, number of issues) per message."""
        self.rows = rows
        if rows:
            self.cursor = min(self.cursor, len(rows) - 1)
        else:
            self.cursor = 0
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> Content:
        if not self.rows:
            return Content.styled("No messages. t adds a Text message, i an Imagemap.", MUTED)
        width = max(10, self.size.width)
        lines: list[Content] = []
        for index, (kind, summary, issues) in enumerate(self.rows):
            marker = Content.styled(f" ●{issues}", "$text-error") if issues else Content("")
            head = Content.assemble(
                ("▶ " if index == self.cursor else "  ", "bold"),
                (f"{index + 1}. ", "bold"),
                (f"{kind:<9}", MUTED),
            )
            room = max(1, width - head.cell_length - marker.cell_length)
            body = Content(literal(summary)).truncate(room, ellipsis=True, pad=True)
            line = Content.assemble(head, body, marker)
            if index == self.cursor and self.has_focus:
                line = line.stylize("reverse")
            elif index == self.cursor:
                line = line.stylize("bold")
            lines.append(line)
        return Content("\n").join(lines)

    def watch_cursor(self, cursor: int) -> None:
        self.post_message(self.Highlighted(cursor))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_cursor(self, step: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + step))
            self.refresh()

    def action_open(self) -> None:
        if self.rows:
            self.post_message(self.Opened(self.cursor))

    def _row_at(self, y: int) -> int | None:
        return y if 0 <= y < len(self.rows) else None

    def on_mouse_down(self, event: events.MouseDown) -> None:
        row = self._row_at(event.y)
        if row is None:
            return
        self.focus()
        self.cursor = row
        self._drag_from = row
        self.capture_mouse()
        self.refresh()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        source, self._drag_from = self._drag_from, None
        self.release_mouse()
        if source is None or not self.rows:
            return
        target = max(0, min(len(self.rows) - 1, event.y))
        if target != source:
            self.post_message(self.Moved(source, target))

    def on_click(self, event: events.Click) -> None:
        if event.chain >= 2 and self._row_at(event.y) is not None:
            self.post_message(self.Opened(event.y))


def _moved(messages: list[Message], source: int, target: int) -> list[Message]:
    items = list(messages)
    if not (0 <= source < len(items)) or not (0 <= target < len(items)):
        return items
    items.insert(target, items.pop(source))
    return items


class CampaignContentTab(CampaignTab):
    TAB: ClassVar[Tab | None] = Tab.CONTENT

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._profiles: dict[str, Profile] = {}
        self._profiles_for: AudienceRef | None = None
        self._preview_profile = BLANK_PROFILE
        self._accounts_drawn: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="content-columns"):
            with Vertical(id="content-left"):
                with Horizontal(classes="form-row"):
                    yield Label("LINE sender", classes="field-label narrow")
                    yield Select[str](
                        [],
                        prompt="Choose the LINE OA",
                        id="content-account",
                        compact=True,
                        classes="editable",
                    )
                yield FieldIssues("sender_account")
                yield Static(id="content-count", classes="heading")
                yield MessageList(id="content-messages")
                yield Static(id="content-message-issues", classes="field-issues")
                yield FieldIssues("messages", catch_all=True)
                with Horizontal(classes="form-row"):
                    yield Label("Preview as", classes="field-label narrow")
                    yield Select[str](
                        [(Text("Blank profile (defaults)"), BLANK_PROFILE)],
                        allow_blank=False,
                        id="content-profile",
                        compact=True,
                    )
                yield Static(id="content-readonly", classes="note")
                yield Static(
                    Content(
                        "t text · i imagemap · e edit · d delete · K/J or alt+↑/↓ (or drag) "
                        "move · p preview as · T test send"
                    ),
                    id="content-keys",
                    classes="note",
                )
            yield PhonePreview(id="content-phone")

    # --- drawing -----------------------------------------------------------------------

    def render_view(self, view: CampaignView, previous: CampaignView | None) -> None:
        campaign = view.campaign
        self._draw_accounts(view)
        count = len(campaign.messages)
        full = " · the most LINE takes in one request" if count >= MAX_MESSAGES else ""
        self.query_one("#content-count", Static).update(
            Content.assemble(
                "Messages ",
                (f"{count} of {MAX_MESSAGES}", "$text-error" if count > MAX_MESSAGES else ""),
                (full, MUTED),
            )
        )
        self._draw_list(view)
        readonly = self.query_one("#content-readonly", Static)
        readonly.display = not view.editable
        readonly.update(
            Content(f"Read-only: the campaign is {campaign.state.value}; only Drafts change.")
        )
        if campaign.audience != self._profiles_for or previous is None:
            self._profiles_for = campaign.audience
            self._load_profiles(self.host.services, campaign.audience)
        if (
            previous is None
            or previous.campaign.spec() != campaign.spec()
            or previous.account != view.account
        ):
            self.refresh_preview()

    def _draw_accounts(self, view: CampaignView) -> None:
        select = self.query_one("#content-account", Select)
        accounts = list(view.accounts)
        chosen = view.account
        if chosen is not None and all(a.id != chosen.id for a in accounts):
            accounts.append(chosen)  # shown so the operator sees what is wrong with it
        drawn = tuple(f"{a.id}\0{a.name}" for a in accounts)
        if drawn != self._accounts_drawn:
            self._accounts_drawn = drawn
            select.set_options(
                (Text(literal(f"{a.name} ({a.id})"), no_wrap=True, overflow="ellipsis"), a.id)
                for a in accounts
            )
        wanted = view.campaign.sender_account
        if wanted is None:
            if select.value is not Select.NULL:
                select.clear()
        elif select.value != wanted:
            try:
                select.value = wanted
            except InvalidSelectValueError:
                select.clear()

    def _draw_list(self, view: CampaignView) -> None:
        rows = []
        for index, message in enumerate(view.campaign.messages):
            kind, summary = message_summary(message)
            issues = len(view.issues_under(f"messages[{index}]"))
            rows.append((kind, summary, issues))
        listing = self.query_one(MessageList)
        listing.set_rows(rows)
        self._draw_message_issues(listing.cursor)

    def _draw_message_issues(self, index: int) -> None:
        widget = self.query_one("#content-message-issues", Static)
        view = self.view
        issues = view.issues_under(f"messages[{index}]") if view else []
        widget.display = bool(issues)
        if issues:
            title = Content.styled(f"Message {index + 1}:", "bold $text-error")
            prefix = f"messages[{index}]."
            lines = [
                issue_line(
                    i.model_copy(update={"field": i.field.removeprefix(prefix)}), with_field=True
                )
                for i in issues
            ]
            widget.update(Content("\n").join([title, *lines]))

    def show_issues(self, view: CampaignView) -> None:
        """Per-message issues sit on their row and under the list; the rest on their field."""
        shown = [
            issue
            for issue in view.tab_issues(Tab.CONTENT)
            if not issue.field.startswith("messages[")
        ]
        account = self.query_one("FieldIssues", FieldIssues)
        mine = account.claim(shown)
        account.show_issues(mine)
        rest = [issue for issue in shown if issue not in mine]
        for widget in self.query(FieldIssues):
            if widget.catch_all:
                widget.show_issues(rest)

    # --- the preview -------------------------------------------------------------------

    def refresh_preview(self) -> None:
        view = self.view
        if view is None:
            return
        profile = self._profiles.get(self._preview_profile)
        self._preview(view, profile)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _preview(self, view: CampaignView, profile: Profile | None) -> None:
        previews = preview_campaign(view.campaign, profile, campaign_id=view.campaign.id)
        sender = view.account.name if view.account else "No sender account chosen"
        caption = f"as {profile.profile_id}" if profile is not None else "as the blank profile"
        self.app.call_from_thread(self._show_preview, sender, previews, caption)

    def _show_preview(self, sender: str, previews: list[MessagePreview], caption: str) -> None:
        self.query_one(PhonePreview).show(sender, previews, caption)

    @work(thread=True, exclusive=True, group="profiles", exit_on_error=False)
    def _load_profiles(self, services: Services, audience: AudienceRef | None) -> None:
        profiles: list[Profile] = []
        if audience is not None:
            try:
                segment = services.store.directory.segment(
                    audience.parent_segment, audience.segment
                )
                if segment is None:
                    raise NotFound(f"segment {audience.segment!r} is gone")
                profiles = list(islice(iter_profiles(segment), PREVIEW_PROFILES))
            except LccError as exc:
                self.app.call_from_thread(
                    self.notify,
                    f"Profiles for the preview cannot be read: {exc}",
                    severity="warning",
                )
        self.app.call_from_thread(self._show_profiles, profiles)

    def _show_profiles(self, profiles: list[Profile]) -> None:
        self._profiles = {profile.profile_id: profile for profile in profiles}
        select = self.query_one("#content-profile", Select)
        options = [(Text("Blank profile (defaults)"), BLANK_PROFILE)]
        options += [(profile_label(p, why), p.profile_id) for p, why in classify(profiles)]
        select.set_options(options)
        if self._preview_profile not in self._profiles:
            self._preview_profile = BLANK_PROFILE
        select.value = self._preview_profile

    @on(Select.Changed, "#content-profile")
    def _profile_changed(self, event: Select.Changed) -> None:
        event.stop()
        value = event.value if isinstance(event.value, str) else BLANK_PROFILE
        if value != self._preview_profile:
            self._preview_profile = value
            self.refresh_preview()

    # --- editing -----------------------------------------------------------------------

    @on(Select.Changed, "#content-account")
    def _account_changed(self, event: Select.Changed) -> None:
        event.stop()
        account = event.value if isinstance(event.value, str) else None

        def change(spec: CampaignSpec) -> CampaignSpec:
            return spec.model_copy(update={"sender_account": account})

        self.edit(change, "The sender account")

    @on(MessageList.Highlighted)
    def _highlighted(self, event: MessageList.Highlighted) -> None:
        event.stop()
        self._draw_message_issues(event.index)

    @on(MessageList.Opened)
    def _opened(self, event: MessageList.Opened) -> None:
        event.stop()
        self._open_editor(event.index)

    @on(MessageList.Moved)
    def _dragged(self, event: MessageList.Moved) -> None:
        event.stop()
        self._move(event.source, event.target)

    def can(self, action: str) -> bool | None:
        view = self.latest
        if view is None:
            return None
        count = len(view.campaign.messages)
        if action in ("add_text", "add_imagemap"):
            return (view.editable and count < MAX_MESSAGES) or None
        if action in ("edit", "delete"):
            return (view.editable and count > 0) or None
        if action in ("move_up", "move_down"):
            return (view.editable and count > 1) or None
        if action == "test_send":
            return (count > 0 and view.account is not None) or None
        return True

    def _cursor(self) -> int:
        return self.query_one(MessageList).cursor

    def action_add_text(self) -> None:
        self._add("textV2")

    def action_add_imagemap(self) -> None:
        self._add("imagemap")

    def _add(self, kind: str) -> None:
        view = self.latest
        if view is None or not view.editable:
            return
        if len(view.campaign.messages) >= MAX_MESSAGES:
            self.notify(
                f"A campaign holds at most {MAX_MESSAGES} messages (LINE's limit per request).",
                severity="warning",
            )
            return
        from tui.screens.message_editor import MessageEditor

        index = len(view.campaign.messages)
        self.app.push_screen(
            MessageEditor(view.campaign, index, kind=kind, services=self.host.services),
            callback=lambda message: self._saved(index, message, new=True),
        )

    def action_edit(self) -> None:
        view = self.latest
        if view is not None and view.campaign.messages:
            self._open_editor(self._cursor())

    def _open_editor(self, index: int) -> None:
        view = self.latest
        if view is None or not view.editable or index >= len(view.campaign.messages):
            return
        message = view.campaign.messages[index]
        if not isinstance(message, TextV2Message | ImagemapMessage):
            self.notify(
                f"{message.type} messages cannot be edited here; delete it (d).",
                severity="warning",
            )
            return
        from tui.screens.message_editor import MessageEditor

        self.app.push_screen(
            MessageEditor(view.campaign, index, kind=message.type, services=self.host.services),
            callback=lambda edited: self._saved(index, edited, new=False),
        )

    def _saved(self, index: int, message: Message | None, *, new: bool) -> None:
        if message is None:
            return

        def change(spec: CampaignSpec) -> CampaignSpec:
            messages = list(spec.messages)
            if new:
                if len(messages) >= MAX_MESSAGES:
                    return spec
                messages.append(message)
            elif index < len(messages):
                messages[index] = message
            return spec.model_copy(update={"messages": messages})

        self.edit(change, f"Message {index + 1}")
        listing = self.query_one(MessageList)
        listing.cursor = index
        listing.focus()

    def action_delete(self) -> None:
        view = self.latest
        if view is None or not view.editable or not view.campaign.messages:
            return
        index = self._cursor()
        kind, summary = message_summary(view.campaign.messages[index])
        from tui.screens.message_editor import AskYesNo

        self.app.push_screen(
            AskYesNo("Delete message", f"Delete message {index + 1} ({kind}: {summary})?"),
            callback=lambda ok: self._delete(index) if ok else None,
        )

    def _delete(self, index: int) -> None:
        def change(spec: CampaignSpec) -> CampaignSpec:
            messages = list(spec.messages)
            if index < len(messages):
                del messages[index]
            return spec.model_copy(update={"messages": messages})

        self.edit(change, f"Deleting message {index + 1}")

    def action_move_up(self) -> None:
        index = self._cursor()
        self._move(index, index - 1)

    def action_move_down(self) -> None:
        index = self._cursor()
        self._move(index, index + 1)

    def _move(self, source: int, target: int) -> None:
        view = self.latest
        if view is None or not view.editable:
            return
        count = len(view.campaign.messages)
        if not (0 <= source < count and 0 <= target < count) or source == target:
            return

        def change(spec: CampaignSpec) -> CampaignSpec:
            return spec.model_copy(update={"messages": _moved(spec.messages, source, target)})

        self.edit(change, "The message order")
        self.query_one(MessageList).cursor = target

    def action_pick_profile(self) -> None:
        self.query_one("#content-profile", Select).focus()

    def action_test_send(self) -> None:
        view = self.latest
        if view is None or view.account is None or not view.campaign.messages:
            return
        from tui.screens.message_editor import AskText

        self.app.push_screen(
            AskText(
                "Test send",
                f"Send the messages, as the blank profile, from {view.account.name} to one LINE "
                "user id (a test send is marked as such in the delivery log).",
                placeholder="U followed by 32 hex digits",
                pattern=LINE_USER_ID.pattern,
                problem="a LINE user id is U followed by 32 hex digits (0-9, a-f)",
                value=console_of(self.app).last_test_recipient or "",
            ),
            callback=self._test_send_to,
        )

    def _test_send_to(self, user_id: str | None) -> None:
        if user_id:
            console_of(self.app).last_test_recipient = user_id
            self._test_send(user_id)

    @work(group="test_send", exclusive=True, exit_on_error=False)
    async def _test_send(self, user_id: str) -> None:
        host = self.host
        shown = f"{user_id[:5]}…{user_id[-4:]}"
        try:
            result = await host.services.test_send(host.campaign_id, user_id, actor=host.actor)
        except LccError as exc:
            self.notify(f"{exc}", title="Test send not sent", severity="error")
            return
        if result.accepted:
            self.notify(f"LINE accepted the test send to {shown}.", title="Test send")
        else:
            detail = result.message or "no answer"
            self.notify(
                literal(f"LINE refused the test send to {shown}: {result.error_code} {detail}"),
                title="Test send failed",
                severity="error",
            )
