"""Delivery progress on stderr for headless commands (`lcc replay`, `lcc scheduler`).

On a terminal it is a Rich progress bar per campaign (sent, failed, rate, time left); when stderr
is not a terminal (a pipe, CI, a log file) it prints one plain line per campaign when its delivery
ends, so logs stay readable. stdout is never touched: `--json` output stays one document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from core.delivery import DeliveryProgress

Callback = Callable[[DeliveryProgress], None]


FIGURES_CELLS = 66
"""Cells kept beside the name for the figures: `3,000/3,000`, the sent, failed and rate text,
the time left and the gaps take about 56, and Rich narrows the bar (16 at most) to fit the rest;
at 80 columns a name keeps 14 cells."""


def _fitted(name: str, width: int) -> str:
    """The campaign's name as the bar's markup (the summary after the run names its id): cut
    with an ellipsis so that the figures keep their place on a narrow terminal, and escaped,
    since a name such as `[sale] winter` is not markup."""
    text = Text(name)
    text.truncate(max(8, width - FIGURES_CELLS), overflow="ellipsis")
    return escape(text.plain)


class DeliveryBars:
    """One bar per campaign; `callback(campaign_id, name)` gives the engine its progress hook."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=16),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                refresh_per_second=8,
            )

    def __enter__(self) -> DeliveryBars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def callback(self, campaign_id: str, name: str) -> Callback:
        label = f"{name} ({campaign_id})"
        bar_label = _fitted(name, self.console.width)

        def update(event: DeliveryProgress) -> None:
            done = event.sent + event.failed
            detail = f"sent {event.sent:,} · failed {event.failed:,} · {event.rate:,.0f}/s"
            if self._progress is not None:
                task = self._tasks.get(campaign_id)
                if task is None:
                    task = self._progress.add_task(bar_label, total=event.total or None, detail="")
                    self._tasks[campaign_id] = task
                self._progress.update(task, completed=done, total=event.total, detail=detail)
            elif event.final:
                self.console.print(
                    f"{label}: {done:,}/{event.total:,} profiles, sent {event.sent:,}, "
                    f"failed {event.failed:,}",
                    markup=False,
                    highlight=False,
                )

        return update


@contextmanager
def delivery_bars(console: Console) -> Iterator[DeliveryBars]:
    with DeliveryBars(console) as bars:
        yield bars
