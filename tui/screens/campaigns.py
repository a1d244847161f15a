"""The campaign list: the console's home screen.

Built to stay smooth with tens of thousands of campaigns:

* the store is read in a thread worker, which turns campaigns into plain `ListRow`s once;
* the table is a Line API widget that draws only the rows on screen, so filtering, sorting and
  searching re-order a Python list and redraw ~20 lines, whatever the number of campaigns;
* progress comes from the delivery log, counted only when a campaign's log has new parts;
* the periodic refresh costs one `stat` when nothing changed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment as RichSegment
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Horizontal
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Header, Input, Static

from core.audience import iter_profiles
from core.errors import LccError
from core.models import CampaignState, segment_key
from tui.times import in_zone, moment_text
from tui.widgets import STATE_ORDER, SandboxBadge, console_of, literal, state_label

if TYPE_CHECKING:
    from core.service import Services
    from tui.app import ConsoleApp
    from tui.screens.kill_switch import AccountReach, KillSwitchOrder

POLL_SECONDS = 2.0
"""How often the list checks the store for changes made elsewhere (a stat when idle)."""
ACTIVE_RECOUNT_SECONDS = 10.0
"""How often the log of a campaign being delivered is recounted for its progress."""

LAUNCHED_STATES = frozenset({CampaignState.ACTIVE, CampaignState.FINISHED, CampaignState.SUSPENDED})


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRow:
    """One campaign as the list shows it: built off the UI thread, drawn on demand."""

    campaign_id: str
    name: str
    state: CampaignState
    sender: str
    schedule_full: str
    schedule_short: str
    schedule_at: datetime | None
    delivered: int | None
    audience: int | None
    updated_at: datetime
    haystack: str
    """Casefolded name and id, for the search box."""

    @property
    def progress_ratio(self) -> float:
        if self.delivered is None:
            return -1.0
        return self.delivered / self.audience if self.audience else 0.0


def changed_text(moment: datetime, now: datetime) -> str:
    """A last-change time an operator reads at a glance: relative when recent."""
    age = now - moment
    if age < timedelta(minutes=1):
        return "just now"
    if age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)}m ago"
    if age < timedelta(days=1):
        return f"{int(age.total_seconds() // 3600)}h ago"
    if age < timedelta(days=7):
        return f"{age.days}d ago"
    return f"{moment.astimezone(now.tzinfo):%Y-%m-%d}"


def progress_text(row: ListRow, width: int) -> str:
    if row.delivered is None:
        return "—"
    if row.audience is None:
        return f"{row.delivered:,}/?"
    text = f"{row.delivered:,}/{row.audience:,}"
    if len(text) > width and row.audience:
        text = f"{100 * row.delivered / row.audience:.0f}%"
    return text


def schedule_texts(
    kind: str, at: datetime | None, zone_name: str | None
) -> tuple[str, str, datetime | None]:
    """(long form, short form, moment) of a schedule, in the campaign's own time zone."""
    if kind != "scheduled" or at is None:
        label = "Immediately" if kind == "immediate" else kind.capitalize()
        return label, label, None
    moment = in_zone(at, zone_name)
    return (moment_text(moment, None), moment_text(moment, None, short=True), at)


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment


@dataclass(frozen=True)
class CampaignDoc:
    """The few fields of a stored campaign the list shows, read straight from its JSON."""

    id: str
    name: str
    workspace: str
    state: CampaignState
    sender_account: str | None
    audience_key: str | None
    schedule_kind: str
    schedule_at: datetime | None
    schedule_zone: str | None
    updated_at: datetime

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> CampaignDoc:
        """Raises KeyError/ValueError/TypeError for a document that is not a campaign."""
        schedule = doc.get("schedule") or {"type": "immediate"}
        audience = doc.get("audience")
        kind = str(schedule["type"])
        return cls(
            id=str(doc["id"]),
            name=str(doc["name"]),
            workspace=str(doc["workspace"]),
            state=CampaignState(doc.get("state", CampaignState.DRAFT.value)),
            sender_account=doc.get("sender_account"),
            audience_key=segment_key(audience["parent_segment"], audience["segment"])
            if audience
            else None,
            schedule_kind=kind,
            schedule_at=_moment(schedule["at"]) if kind == "scheduled" else None,
            schedule_zone=schedule.get("timezone") if kind == "scheduled" else None,
            updated_at=_moment(doc["updated_at"]),
        )


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Building tens of thousands of small objects at once triggers collection after
    collection (5x the parse itself); nothing here makes reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _folders(path: Path) -> set[str]:
    """The names of the folders in `path` (one listing instead of a stat per campaign)."""
    try:
        with os.scandir(path) as entries:
            return {entry.name for entry in entries if entry.is_dir()}
    except OSError:
        return set()


@dataclass
class _LogEntry:
    parts: tuple[str, ...]
    delivered: int
    counted_at: float


@dataclass
class CampaignLoader:
    """Reads the store for the list and remembers enough to make the next read cheap.

    Campaigns are read as JSON documents (one file read, no model validation); progress is
    counted from a campaign's delivery log only when the log has new parts, and its audience
    is the one frozen at launch. Thread workers call `load`; the lock serialises them.
    """

    services: Services
    workspace: str | None = None
    unreadable: list[str] = field(default_factory=list)
    """Ids (or positions) of stored documents that are not campaigns; shown to the operator."""
    _marker: tuple[int, int] | None = None
    _campaigns: list[CampaignDoc] = field(default_factory=list)
    _accounts: dict[str, str] = field(default_factory=dict)
    _segment_sizes: dict[str, int | None] = field(default_factory=dict)
    _audiences: dict[str, int | None] = field(default_factory=dict)
    _logs: dict[str, _LogEntry] = field(default_factory=dict)
    _frozen: set[str] = field(default_factory=set)
    """Campaigns with an outbox (frozen at launch), from one directory listing."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loaded: bool = False
    _guessed: bool = False
    _generation: int = 0

    def load(self, *, force: bool = False) -> Iterator[tuple[int, list[ListRow]]]:
        """Numbered rows for the current workspace: first as soon as the campaigns are read,
        again once progress from the delivery logs is known (if it changed). Nothing when
        nothing changed since the last load. Numbers grow, so a slow read finishing late never
        replaces a newer one."""
        with self._lock:
            marker = self.services.campaigns_marker()
            reread = force or not self._loaded or marker != self._marker
            if self.workspace is None or (reread and self._guessed and not self._campaigns):
                # no workspace chosen: the first one in the data dir, looked at again while
                # the one guessed is empty (a fresh data dir being filled by an import)
                self.workspace = self.services.current_workspace()
                self._guessed = not self.services.settings.workspace
            if reread:
                self._marker = marker
                with paused_gc():
                    self._campaigns = self._read(self.workspace)
                self._accounts = {a.id: a.name for a in self.services.store.directory.accounts()}
                self._frozen = _folders(self.services.store.data_dir / "outbox")
                if force:
                    self._segment_sizes.clear()
                self._loaded = True
                yield self._numbered()
            if self._refresh_progress(force=force):
                yield self._numbered()

    def _numbered(self) -> tuple[int, list[ListRow]]:
        self._generation += 1
        with paused_gc():
            return self._generation, [self._row(campaign) for campaign in self._campaigns]

    def _read(self, workspace: str) -> list[CampaignDoc]:
        campaigns: list[CampaignDoc] = []
        self.unreadable = []
        for position, doc in enumerate(self.services.campaign_documents()):
            if doc.get("workspace") != workspace:
                continue
            try:
                campaigns.append(CampaignDoc.parse(doc))
            except (KeyError, ValueError, TypeError):
                self.unreadable.append(str(doc.get("id") or f"#{position + 1}"))
        return campaigns

    def switch_workspace(self, workspace: str) -> None:
        with self._lock:
            self.workspace = workspace
            self._guessed = False
            self._loaded = False

    def _refresh_progress(self, *, force: bool) -> bool:
        changed = False
        now = time.monotonic()
        with_logs = _folders(self.services.store.data_dir / "delivery")
        for campaign in self._campaigns:
            if campaign.state not in LAUNCHED_STATES:
                continue
            entry = self._logs.get(campaign.id)
            if entry is not None and not force:
                if campaign.state is CampaignState.FINISHED:
                    continue  # a finished campaign's log does not change
                if now - entry.counted_at < ACTIVE_RECOUNT_SECONDS:
                    continue
            parts: tuple[str, ...] = ()
            if campaign.id in with_logs:
                log = self.services.store.delivery_log(campaign.id)
                parts = tuple(path.name for path in log.parts())
            if entry is not None and entry.parts == parts and not force:
                entry.counted_at = now
                continue
            delivered = self.services.counts(campaign.id).delivered if parts else 0
            self._logs[campaign.id] = _LogEntry(parts, delivered, now)
            changed = True
        return changed

    def _audience(self, campaign: CampaignDoc) -> int | None:
        """The audience frozen at launch (the outbox manifest), else the segment's size now."""
        if campaign.id not in self._audiences:
            manifest = None
            if campaign.id in self._frozen:
                try:
                    manifest = self.services.manifest(campaign.id)
                except LccError:
                    manifest = None
            self._audiences[campaign.id] = (
                manifest.totals.segment if manifest is not None else self._segment_size(campaign)
            )
        return self._audiences[campaign.id]

    def _segment_size(self, campaign: CampaignDoc) -> int | None:
        key = campaign.audience_key
        if key is None:
            return None
        if key not in self._segment_sizes:
            parent, _, name = key.partition("/")
            try:
                segment = self.services.store.directory.segment(parent, name)
                size = sum(1 for _ in iter_profiles(segment)) if segment else None
            except LccError:
                size = None
            self._segment_sizes[key] = size
        return self._segment_sizes[key]

    def _row(self, campaign: CampaignDoc) -> ListRow:
        full, short, at = schedule_texts(
            campaign.schedule_kind, campaign.schedule_at, campaign.schedule_zone
        )
        sender = campaign.sender_account or ""
        entry = self._logs.get(campaign.id) if campaign.state in LAUNCHED_STATES else None
        return ListRow(
            campaign_id=campaign.id,
            name=campaign.name,
            state=campaign.state,
            sender=self._accounts.get(sender, sender) if sender else "—",
            schedule_full=full,
            schedule_short=short,
            schedule_at=at,
            delivered=entry.delivered if entry else None,
            audience=self._audience(campaign) if entry else None,
            updated_at=campaign.updated_at,
            haystack=f"{campaign.name}\n{campaign.id}".casefold(),
        )


# --- sorting ------------------------------------------------------------------------------

SortKey = Literal["name", "state", "sender", "schedule", "progress", "changed"]


@dataclass(frozen=True)
class Column:
    key: SortKey
    label: str
    short_label: str
    width: int | None
    """None: shares the space left over (see `weight`)."""
    weight: int = 1
    min_width: int = 8
    right: bool = False
    descending_first: bool = False
    """Sorting on this column starts with the largest value (newest, most delivered)."""


COLUMNS: tuple[Column, ...] = (
    Column("name", "Campaign", "Campaign", None, weight=3, min_width=12),
    Column("state", "State", "State", 11),
    Column("sender", "Sender account", "Sender", None, weight=2, min_width=10),
    Column("schedule", "Schedule", "Schedule", 17),
    Column("progress", "Progress", "Progress", 9, right=True, descending_first=True),
    Column("changed", "Last change", "Changed", 10, descending_first=True),
)
COLUMN_BY_KEY = {column.key: column for column in COLUMNS}
SORT_CYCLE: tuple[SortKey, ...] = ("changed", "name", "state", "sender", "schedule", "progress")
WIDE_SCHEDULE = 22
GAP = 1

_FAR_FUTURE = datetime.max.replace(tzinfo=ZoneInfo("UTC"))

SORTERS: dict[SortKey, Callable[[ListRow], object]] = {
    "name": lambda row: (row.name.casefold(), row.campaign_id),
    "state": lambda row: (STATE_ORDER[row.state], row.name.casefold()),
    "sender": lambda row: (row.sender.casefold(), row.name.casefold()),
    "schedule": lambda row: (row.schedule_at or _FAR_FUTURE, row.name.casefold()),
    "progress": lambda row: (row.progress_ratio, row.delivered or 0),
    "changed": lambda row: (row.updated_at, row.campaign_id),
}


def column_widths(width: int) -> list[int]:
    """Column widths for a table `width` cells wide; flexible columns share what is left."""
    widths = [column.width or 0 for column in COLUMNS]
    schedule = [c.key for c in COLUMNS].index("schedule")
    if width >= 110:
        widths[schedule] = WIDE_SCHEDULE
        widths[-1] = 13
    flexible = [i for i, column in enumerate(COLUMNS) if column.width is None]
    left = width - sum(widths) - GAP * (len(COLUMNS) - 1) - 1
    total_weight = sum(COLUMNS[i].weight for i in flexible)
    for i in flexible:
        widths[i] = max(COLUMNS[i].min_width, left * COLUMNS[i].weight // total_weight)
    spare = left - sum(widths[i] for i in flexible)
    if spare > 0:
        widths[flexible[0]] += spare
    return widths


def view_rows(
    rows: Iterable[ListRow],
    *,
    state: CampaignState | None,
    search: str,
    sort: SortKey,
    descending: bool,
) -> list[ListRow]:
    """The rows to show: filtered by state and search text, then sorted."""
    needle = search.strip().casefold()
    chosen = [
        row
        for row in rows
        if (state is None or row.state is state) and (not needle or needle in row.haystack)
    ]
    chosen.sort(key=SORTERS[sort], reverse=descending)  # type: ignore[arg-type]
    return chosen


# --- the table ----------------------------------------------------------------------------


class CampaignTable(ScrollView, can_focus=True, inherit_bindings=False):
    """A table of campaigns that draws only the visible lines (Line API)."""

    HELP_TITLE = "Campaign table"

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "campaign-table--header",
        "campaign-table--cursor",
        "campaign-table--even-row",
        "campaign-table--muted",
        "campaign-table--state-draft",
        "campaign-table--state-planned",
        "campaign-table--state-active",
        "campaign-table--state-finished",
        "campaign-table--state-suspended",
    }

    DEFAULT_CSS = """
    CampaignTable {
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
        color: $foreground;
        & > .campaign-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .campaign-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .campaign-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .campaign-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .campaign-table--even-row { background: $surface-lighten-1 50%; }
        &:dark > .campaign-table--even-row { background: $surface-darken-1 40%; }
        & > .campaign-table--muted { color: $foreground-muted; }
        & > .campaign-table--state-draft { color: $foreground-muted; }
        & > .campaign-table--state-planned { color: $accent; }
        & > .campaign-table--state-active { color: $warning; text-style: bold; }
        & > .campaign-table--state-finished { color: $success; }
        & > .campaign-table--state-suspended { color: $error; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home", "jump(0)", "First", show=False, id="table.first"),
        Binding("end", "jump(-1)", "Last", show=False, id="table.last"),
    ]

    class Selected(Message):
        """A row was chosen with a click on the highlighted row (or a double click)."""

        def __init__(self, campaign_id: str) -> None:
            super().__init__()
            self.campaign_id = campaign_id

    class HeaderClicked(Message):
        def __init__(self, column: SortKey) -> None:
            super().__init__()
            self.column = column

    cursor = reactive(0, always_update=True, init=False)

    def __init__(self, *, now: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(id=id)
        self._now = now
        self.rows: list[ListRow] = []
        self.chosen = False
        """The operator moved the cursor (or a campaign was selected for them)."""
        self.empty_message = "Loading campaigns…"
        self.sort: SortKey = "changed"
        self.descending = True
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        self._styles: dict[str, Style] = {}
        self._width_cache: dict[int, list[int]] = {}

    # data

    def set_rows(self, rows: list[ListRow], *, keep: str | None = None) -> None:
        """Show `rows`, keeping the cursor on campaign `keep`, or on the one the operator
        chose; until they choose, it stays on the first row while the list changes."""
        keep = keep or (self.current_id if self.chosen else None)
        self.rows = rows
        self._cache.clear()
        index = 0
        if keep is not None:
            for position, row in enumerate(rows):
                if row.campaign_id == keep:
                    index = position
                    break
        self._update_virtual_size()
        self.set_reactive(CampaignTable.cursor, min(index, max(len(rows) - 1, 0)))
        self._scroll_cursor_into_view()
        self.refresh()

    @property
    def current(self) -> ListRow | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    @property
    def current_id(self) -> str | None:
        row = self.current
        return row.campaign_id if row else None

    def select_id(self, campaign_id: str) -> bool:
        for position, row in enumerate(self.rows):
            if row.campaign_id == campaign_id:
                self.chosen = True
                self.cursor = position
                return True
        return False

    # geometry

    @property
    def _visible_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)

    def on_resize(self) -> None:
        self._cache.clear()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def watch_cursor(self, old: int, new: int) -> None:
        clamped = min(max(new, 0), max(len(self.rows) - 1, 0))
        if clamped != new:
            self.set_reactive(CampaignTable.cursor, clamped)
        self._scroll_cursor_into_view()
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        visible = self._visible_rows
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def notify_style_update(self) -> None:
        self._cache.clear()
        self._styles.clear()
        super().notify_style_update()

    def on_focus(self) -> None:
        self._cache.clear()
        self._styles.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self._styles.clear()
        self.refresh()

    # actions

    def action_cursor(self, delta: int) -> None:
        self.chosen = True
        self.cursor = self.cursor + delta

    def action_page(self, direction: int) -> None:
        self.chosen = True
        self.cursor = self.cursor + direction * self._visible_rows

    def action_jump(self, where: int) -> None:
        self.chosen = True
        self.cursor = len(self.rows) - 1 if where < 0 else 0

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = 0
            for column, width in zip(COLUMNS, column_widths(self.size.width), strict=True):
                if x <= offset.x < x + width + GAP:
                    self.post_message(self.HeaderClicked(column.key))
                    return
                x += width + GAP
            return
        index = int(self.scroll_y) + offset.y - 1
        if not 0 <= index < len(self.rows):
            return
        self.chosen = True
        if index == self.cursor or event.chain >= 2:
            self.cursor = index
            self.post_message(self.Selected(self.rows[index].campaign_id))
        else:
            self.cursor = index

    # drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._cached(("header", width, self.sort, self.descending), self._header)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.rows):
            if not self.rows and y == 2:
                return self._message_line(width)
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        selected = index == self.cursor
        changed = changed_text(row.updated_at, self._now())
        key = ("row", row, width, selected, self.has_focus, index % 2, changed)
        return self._cached(key, lambda width: self._row_line(row, width, selected, index))

    def _cached(self, key: tuple[object, ...], build: Callable[[int], Strip]) -> Strip:
        strip = self._cache.get(key)
        if strip is None:
            strip = build(self.size.width)
            self._cache[key] = strip
        return strip

    def _style(self, name: str) -> Style:
        """A component style, looked up once per theme and focus (both clear the cache)."""
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                style = self.get_component_rich_style(f"campaign-table--{name}", partial=True)
            self._styles[name] = style
        return style

    def _widths(self, width: int) -> list[int]:
        widths = self._width_cache.get(width)
        if widths is None:
            widths = self._width_cache[width] = column_widths(width)
        return widths

    def _line(self, cells: Sequence[tuple[str, Style]], width: int, base: Style) -> Strip:
        """Cells cut or padded to their columns, as segments (no Rich layout per line)."""
        segments: list[RichSegment] = []
        gap = RichSegment(" " * GAP, base)
        for position, (column, (text, style), cell_width) in enumerate(
            zip(COLUMNS, cells, self._widths(width), strict=True)
        ):
            if position:
                segments.append(gap)
            segments.append(RichSegment(fit(text, cell_width, right=column.right), style))
        return Strip(segments).adjust_cell_length(width, base)

    def _header(self, width: int) -> Strip:
        style = self._style("base") + self._style("header")
        cells: list[tuple[str, Style]] = []
        for column, cell_width in zip(COLUMNS, self._widths(width), strict=True):
            arrow = f" {'↓' if self.descending else '↑'}" if column.key == self.sort else ""
            label = column.label
            if len(label) + len(arrow) > cell_width:
                label = column.short_label
            cells.append((label + arrow, style))
        return self._line(cells, width, style)

    def _row_line(self, row: ListRow, width: int, selected: bool, index: int) -> Strip:
        base = self._style("base")
        if index % 2:
            base += self._style("even-row")
        muted = base + self._style("muted")
        state = base + self._style(f"state-{row.state.value.lower()}")
        widths = self._widths(width)
        schedule = row.schedule_full if widths[3] >= WIDE_SCHEDULE else row.schedule_short
        cells = [
            (literal(row.name), base),
            (state_label(row.state), state),
            (literal(row.sender), base),
            (schedule, muted if row.schedule_at is None else base),
            (progress_text(row, widths[4]), base),
            (changed_text(row.updated_at, self._now()), muted),
        ]
        if selected:
            cursor = self._style("cursor")
            base += cursor
            cells = [(text, style + cursor) for text, style in cells]
        return self._line(cells, width, base)

    def _message_line(self, width: int) -> Strip:
        base = self._style("base")
        text = fit(literal(self.empty_message), width, right=False).rstrip()
        left = max((width - cell_len(text)) // 2, 0)
        segments = [RichSegment(" " * left, base), RichSegment(text, base + self._style("muted"))]
        return Strip(segments).adjust_cell_length(width, base)


def fit(text: str, width: int, *, right: bool) -> str:
    """`text` in exactly `width` cells: cut with an ellipsis, or padded (left when `right`)."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    pad = " " * (width - length)
    return pad + text if right else text + pad


# --- the screen ---------------------------------------------------------------------------


class SearchInput(Input):
    """The search box: typing filters at once; Esc clears it, Enter or Down returns to the list."""

    HELP_TITLE = "Search box"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave(True)", "Clear search", show=False, id="search.clear"),
        Binding("down", "leave(False)", "Back to the list", show=False, id="search.leave"),
    ]

    class Leave(Message):
        """Focus goes back to the table."""

    def action_leave(self, clear: bool) -> None:
        if clear:
            self.value = ""
        self.post_message(self.Leave())


STATE_KEYS: tuple[CampaignState, ...] = tuple(CampaignState)


class CampaignListScreen(Screen[None]):
    """Every campaign of the workspace: filter by state (0-5), sort (s), search (/), open."""

    HELP_TITLE = "Campaign list"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="campaigns.open"),
        Binding("n", "new", "New", id="campaigns.new"),
        Binding("d", "duplicate", "Duplicate", show=False, id="campaigns.duplicate"),
        Binding("slash", "search", "Search", id="campaigns.search"),
        Binding("s", "sort", "Sort", id="campaigns.sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="campaigns.sort_reverse"),
        Binding("0", "filter('')", "All states", show=False, id="campaigns.filter_all"),
        *(
            Binding(
                str(number),
                f"filter('{state.value}')",
                f"Only {state.value}",
                show=False,
                id=f"campaigns.filter_{state.value.lower()}",
            )
            for number, state in enumerate(STATE_KEYS, start=1)
        ),
        Binding("r,f5", "refresh", "Refresh", show=False, id="campaigns.refresh"),
        Binding("w", "workspace", "Workspace", show=False, id="campaigns.workspace"),
        Binding("c", "conversions", "Conversions", id="campaigns.conversions"),
        Binding("K", "kill_switch", "Kill switch", show=False, id="campaigns.kill_switch"),
    ]

    state_filter: reactive[CampaignState | None] = reactive(None, init=False)
    search_text = reactive("", init=False)

    def __init__(self) -> None:
        super().__init__()
        self._all_rows: list[ListRow] = []
        self._loader: CampaignLoader | None = None
        self._pending_select: str | None = None
        self._shown_generation = -1
        self._reported_unreadable: tuple[str, ...] = ()

    @property
    def console(self) -> ConsoleApp:
        return console_of(self.app)

    @property
    def loader(self) -> CampaignLoader:
        if self._loader is None:
            self._loader = CampaignLoader(self.console.services)
        return self._loader

    @property
    def table(self) -> CampaignTable:
        return self.query_one(CampaignTable)

    def compose(self) -> ComposeResult:
        yield Header()
        if notice := self.console.sandbox_notice:
            yield SandboxBadge(notice)
        with Horizontal(id="list-toolbar"):
            yield SearchInput(placeholder="/ search name or id", id="search", compact=True)
            yield Static("", id="list-status")
        yield CampaignTable(now=self.console.services.clock.now, id="campaigns")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self.load_campaigns()
        self.set_interval(POLL_SECONDS, self._poll, name="campaign-list-poll")

    def on_screen_resume(self) -> None:
        if self._loader is not None:
            self.load_campaigns()

    # loading

    @work(
        thread=True,
        group="campaign-list",
        exit_on_error=False,
        description="Reading the campaigns",
    )
    def load_campaigns(self, force: bool = False) -> None:
        for generation, rows in self.loader.load(force=force):
            self.app.call_from_thread(self._show_rows, generation, rows)

    def _poll(self) -> None:
        if not any(w.group == "campaign-list" and not w.is_finished for w in self.workers):
            self.load_campaigns()

    def _show_rows(self, generation: int, rows: list[ListRow]) -> None:
        if generation <= self._shown_generation:
            return
        self._shown_generation = generation
        self._all_rows = rows
        unreadable = tuple(self.loader.unreadable)
        if unreadable and unreadable != self._reported_unreadable:
            path = self.console.services.store.data_dir / "campaigns.json"
            self.notify(
                f"{len(unreadable)} stored campaign(s) could not be read and are not listed: "
                f"{', '.join(unreadable[:5])} (in {path}; nothing was changed)",
                title="Unreadable campaigns",
                severity="warning",
                markup=False,
            )
        self._reported_unreadable = unreadable
        # Tens of thousands of long-lived rows make every full collection walk them all, which
        # showed as 100 ms+ frames: move what exists now out of the collector's sight (rows
        # hold no cycles, so a replaced list is still freed by reference counting).
        gc.freeze()
        self.console.remember_campaigns([(row.campaign_id, row.name, row.state) for row in rows])
        self._apply_view()

    def _apply_view(self, *, keep: str | None = None) -> None:
        table = self.table
        shown = view_rows(
            self._all_rows,
            state=self.state_filter,
            search=self.search_text,
            sort=table.sort,
            descending=table.descending,
        )
        if not self._all_rows and self.console.preparing:
            table.empty_message = (
                "Preparing the demo: importing every fixture and delivering it to the sandbox…"
            )
        elif not self._all_rows:
            table.empty_message = (
                f"No campaigns in workspace {self.loader.workspace or ''} yet. "
                "Press n to create one."
            )
        else:
            table.empty_message = "No campaign matches. Press 0 for every state, Esc in search."
        keep = keep or self._pending_select
        table.set_rows(shown, keep=keep)
        if self._pending_select and table.current_id == self._pending_select:
            self._pending_select = None
        self._update_status(len(shown))

    def _update_status(self, shown: int) -> None:
        table = self.table
        total = len(self._all_rows)
        text = Text(end="", no_wrap=True, overflow="ellipsis")
        text.append(literal(self.loader.workspace or ""), style="bold")
        text.append(f" · {shown:,} of {total:,}")
        if self.state_filter is not None:
            text.append(f" · {self.state_filter.value}")
        arrow = "↓" if table.descending else "↑"
        text.append(f" · by {COLUMN_BY_KEY[table.sort].short_label.lower()} {arrow}")
        self.query_one("#list-status", Static).update(text)

    def watch_state_filter(self) -> None:
        self._apply_view()

    def watch_search_text(self) -> None:
        self._apply_view()

    # search

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search_text = event.value

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.table.focus()

    @on(SearchInput.Leave)
    def _search_left(self) -> None:
        self.table.focus()

    # actions

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_filter(self, state: str) -> None:
        wanted = CampaignState(state) if state else None
        self.state_filter = None if wanted is self.state_filter else wanted

    def action_sort(self) -> None:
        table = self.table
        position = SORT_CYCLE.index(table.sort)
        table.sort = SORT_CYCLE[(position + 1) % len(SORT_CYCLE)]
        table.descending = COLUMN_BY_KEY[table.sort].descending_first
        self._apply_view()

    def action_sort_reverse(self) -> None:
        self.table.descending = not self.table.descending
        self._apply_view()

    @on(CampaignTable.HeaderClicked)
    def _header_clicked(self, event: CampaignTable.HeaderClicked) -> None:
        table = self.table
        if table.sort == event.column:
            table.descending = not table.descending
        else:
            table.sort = event.column
            table.descending = COLUMN_BY_KEY[event.column].descending_first
        self._apply_view()

    def action_refresh(self) -> None:
        self.load_campaigns(force=True)

    def action_open(self) -> None:
        campaign_id = self.table.current_id
        if campaign_id is not None:
            self.table.chosen = True  # back from the campaign, the cursor is still on it
            self.console.open_campaign(campaign_id)

    @on(CampaignTable.Selected)
    def _selected(self, event: CampaignTable.Selected) -> None:
        self.console.open_campaign(event.campaign_id)

    def action_conversions(self) -> None:
        """The saved conversion export jobs (LINE Conversion API), their runs and next runs."""
        from tui.screens.conversions import ConversionsScreen

        self.app.push_screen(ConversionsScreen())

    def action_new(self) -> None:
        from tui.screens.new_campaign import NewCampaignDialog

        workspace = self.loader.workspace
        if workspace is None:
            self.notify("Still reading the campaigns; try again in a moment.")
            return
        taken = {row.name.strip().casefold() for row in self._all_rows}

        def created(campaign_id: str | None) -> None:
            if campaign_id is not None:
                self._pending_select = campaign_id
                self.console.open_campaign(campaign_id)

        self.app.push_screen(NewCampaignDialog(workspace, taken), created)

    def action_duplicate(self) -> None:
        row = self.table.current
        if row is not None:
            self._duplicate(row.campaign_id)

    @work(thread=True, group="campaign-write", exit_on_error=False, description="Duplicating")
    def _duplicate(self, campaign_id: str) -> None:
        copy = self.console.services.duplicate_campaign(campaign_id)
        self.app.call_from_thread(self._duplicated, copy.id, copy.name)

    def _duplicated(self, campaign_id: str, name: str) -> None:
        self._pending_select = campaign_id
        self.notify(f"Copied as {literal(name)!r}, a new Draft.", markup=False)
        self.load_campaigns()

    def action_kill_switch(self) -> None:
        self._prepare_kill_switch()

    @work(thread=True, group="campaign-list-meta", exit_on_error=False)
    def _prepare_kill_switch(self) -> None:
        from tui.screens.kill_switch import AccountReach

        services = self.console.services
        targets = services.kill_switch_targets()
        reach = []
        for account in services.store.directory.accounts(self.loader.workspace):
            active, planned = targets.get(account.id, ([], []))
            reach.append(AccountReach(account, len(active), len(planned)))
        row = self.table.current
        current = services.store.campaigns.find(row.campaign_id) if row is not None else None
        chosen = current.sender_account if current is not None else None
        self.app.call_from_thread(self._show_kill_switch, reach, chosen)

    def _show_kill_switch(self, reach: list[AccountReach], chosen: str | None) -> None:
        from tui.screens.kill_switch import KillSwitchDialog

        if not reach:
            self.notify("This workspace has no sender accounts.")
            return
        self.app.push_screen(KillSwitchDialog(reach, chosen=chosen), self._kill_switch_ordered)

    def _kill_switch_ordered(self, order: KillSwitchOrder | None) -> None:
        if order is not None:
            self._pull_kill_switch(order)

    @work(thread=True, group="campaign-write", exit_on_error=False, description="Kill switch")
    def _pull_kill_switch(self, order: KillSwitchOrder) -> None:
        from tui.output import actor

        services = self.console.services
        account = services.store.directory.account(order.account_id)
        name = account.name if account is not None else order.account_id
        try:
            outcome = services.pull_kill_switch(
                order.account_id, actor=actor("console"), reason=order.reason
            )
        except LccError as exc:
            self.app.call_from_thread(
                self.notify, f"{exc}", title="Kill switch not pulled", severity="error"
            )
            return
        self.app.call_from_thread(
            self.notify,
            f"{literal(name)}: {len(outcome.suspended)} Active campaign(s) suspended, "
            f"{len(outcome.held)} Planned held. Resume or start each when it is safe.",
            title="Kill switch pulled",
            severity="warning",
            timeout=15,
            markup=False,
        )
        self.app.call_from_thread(self.load_campaigns)

    def action_workspace(self) -> None:
        self._pick_workspace()

    @work(thread=True, group="campaign-list-meta", exit_on_error=False)
    def _pick_workspace(self) -> None:
        names = sorted(w.name for w in self.console.services.store.directory.workspaces())
        self.app.call_from_thread(self._show_workspaces, names)

    def _show_workspaces(self, names: list[str]) -> None:
        from textual.command import CommandListItem, SimpleCommand

        if not names:
            self.notify("There is only the default workspace.")
            return
        commands: list[CommandListItem] = [
            SimpleCommand(
                literal(name),
                (lambda chosen=name: self.switch_workspace(chosen)),
                "current" if name == self.loader.workspace else None,
            )
            for name in names
        ]
        self.app.search_commands(commands, placeholder="Switch to workspace…")

    def switch_workspace(self, workspace: str) -> None:
        self.loader.switch_workspace(workspace)
        self._all_rows = []
        self.table.set_rows([])
        self.load_campaigns()
