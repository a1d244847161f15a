"""CSV conversion files read in stretches, each validated, hashed and serialised on its own CPU.

One process validates about 58,000 rows per CPU-second, so a million-row export is CPU-bound;
a large file is split into stretches of a few megabytes that worker processes turn into LINE's
JSON while this process assembles the batches, in file order, and sends them.

Splitting a CSV file needs care, since a quoted field may hold a newline. A stretch ends just
after a newline preceded by an even number of quote characters: in well-formed CSV, a newline
outside every quoted field. A literal quote inside an unquoted field (`ab"c`, which Python's
reader accepts) defeats that guess, so workers read with `strict=True`, which refuses to end a
stretch inside a quoted field. The first stretch starts at a record boundary (just after the
header), and a stretch read without complaint ends at one; so, by induction, every stretch up to
the first complaint is read exactly as one reader reading the whole file reads it. From the
first complaint on, the rest of the file is read here, from that stretch's start, the way a
small file always is. The same holds when a worker cannot be started at all.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import logging
import multiprocessing
import os
import pickle
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from core.csv_errors import unreadable_csv

if TYPE_CHECKING:
    from core.capi import EventBuilder, InputFile

PARALLEL_MIN_BYTES = 16 << 20
"""Smaller files are read in this process: starting workers costs more than they would save."""
STRETCH_BYTES = 4 << 20
MAX_WORKERS = 8
PIECE_ROWS = 1024
"""Rows per piece: progress and batches flow while a stretch is read, and memory stays small."""
HEADER_MAX_BYTES = 1 << 20

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stretch:
    """What reading part of the file found; row and line numbers count from its start."""

    rows: int = 0
    """Data rows read (blank lines are not rows)."""
    lines: int = 0
    """Physical lines read."""
    payloads: list[bytes] = field(default_factory=list)
    payload_rows: list[int] = field(default_factory=list)
    line_uid_rows: list[int] = field(default_factory=list)
    """Rows among `payload_rows` whose event carries a LINE user ID (X-Line-ChannelID)."""
    invalid: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)


@dataclass(slots=True)
class WorkerAnswer:
    """A stretch as a worker hands it back: its pieces, each pickled as soon as it is complete.

    orjson's bytes keep a 4 KB allocation each until copied; pickling a piece of 1,024 events
    at once keeps a worker's memory to a few megabytes, whatever the stretch's size.
    """

    pieces: list[bytes] = field(default_factory=list)
    refused: str | None = None
    """The strict reader's complaint: this stretch must be read again, as the file's rest."""


class _ReadError(Exception):
    def __init__(self, error: csv.Error, line: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.line = line


def read_pieces(
    reader: Any, build_row: Callable[[list[str]], Any], width: int, *, piece_rows: int | None
) -> Iterator[Stretch]:
    """The rows `reader` yields, in pieces of `piece_rows` rows (None: one piece); a piece's
    row numbers count from its start.

    A `csv.Error` becomes `_ReadError` with the reader's line count at that point.
    """
    from core.capi import ROW_COLUMN, BuiltEvent, width_problem

    built_type = BuiltEvent
    piece = Stretch()
    payloads, payload_rows, invalid = piece.payloads, piece.payload_rows, piece.invalid
    row = 0
    start_row = 0
    start_line = 0
    limit = piece_rows or -1
    try:
        for values in reader:
            if not values:
                continue
            row += 1
            if len(values) != width:
                invalid.append((row - start_row, [(ROW_COLUMN, width_problem(len(values), width))]))
            else:
                outcome = build_row(values)
                kind = type(outcome)
                if kind is bytes:
                    payloads.append(outcome)
                    payload_rows.append(row - start_row)
                elif kind is built_type:
                    payloads.append(outcome.payload)
                    payload_rows.append(row - start_row)
                    if outcome.line_uid:
                        piece.line_uid_rows.append(row - start_row)
                else:
                    invalid.append((row - start_row, outcome))
            if row - start_row == limit:
                piece.rows = row - start_row
                piece.lines = reader.line_num - start_line
                yield piece
                start_row = row
                start_line = reader.line_num
                piece = Stretch()
                payloads, payload_rows, invalid = piece.payloads, piece.payload_rows, piece.invalid
    except csv.Error as exc:
        raise _ReadError(exc, reader.line_num) from None
    piece.rows = row - start_row
    piece.lines = reader.line_num - start_line
    yield piece


# --- in a worker process ------------------------------------------------------------------

_builds: dict[tuple[Any, ...], Callable[[list[str]], Any]] = {}


def read_stretch(
    path: str,
    start: int,
    end: int,
    columns: tuple[str, ...],
    now: datetime,
    channel_id: str | None,
    phone_region: str,
) -> WorkerAnswer:
    """One stretch of the file, read strictly (see the module's docstring)."""
    key = (columns, now, channel_id, phone_region)
    build_row = _builds.get(key)
    if build_row is None:
        from core.capi import EventBuilder

        builder = EventBuilder(now=now, channel_id=channel_id, phone_region=phone_region)
        build_row = _builds[key] = builder.row_function(columns)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    lines = io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")
    reader = csv.reader(lines, strict=True)
    answer = WorkerAnswer()
    try:
        for piece in read_pieces(reader, build_row, len(columns), piece_rows=PIECE_ROWS):
            answer.pieces.append(pickle.dumps(piece, pickle.HIGHEST_PROTOCOL))
    except _ReadError as exc:
        return WorkerAnswer(refused=str(exc))
    return answer


def _quiet_worker() -> None:
    """Ctrl+C is the operator's word to the main process, which stops the workers; a worker
    dying of it would print a traceback and break the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- in this process ----------------------------------------------------------------------


def worker_count() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def header_end(path: Path, columns: Sequence[str]) -> tuple[int, int] | None:
    """(byte offset just after the header, its lines), when it can be told for certain."""
    consumed = 0
    lines = 0
    text = ""
    with path.open("rb") as handle:
        while consumed < HEADER_MAX_BYTES:
            line = handle.readline(HEADER_MAX_BYTES)
            if not line or not line.endswith(b"\n") or b"\r" in line[:-2]:
                return None
            consumed += len(line)
            lines += 1
            text += line.decode("utf-8", "surrogateescape")
            try:
                records = list(
                    csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
                )
            except csv.Error:
                continue  # a quoted header name holding a newline: read on
            if len(records) == 1 and tuple(name.strip() for name in records[0]) == tuple(columns):
                return consumed, lines
            return None
    return None


def stretch_bounds(
    handle: IO[bytes], start: int, size: int, stretch_bytes: int
) -> Iterator[tuple[int, int]]:
    """[start, end) byte ranges of about `stretch_bytes`, each ending after a newline preceded
    by an even number of quotes (or at the end of the file)."""
    at = start
    while at < size:
        handle.seek(at)
        block = handle.read(stretch_bytes)
        position = at + len(block)
        if position >= size:
            yield at, size
            return
        odd = block.count(b'"') & 1
        end = None
        while end is None:
            more = handle.read(1 << 16)
            if not more:
                end = size
                break
            searched = 0
            while True:
                newline = more.find(b"\n", searched)
                if newline < 0:
                    odd ^= more.count(b'"', searched) & 1
                    break
                odd ^= more.count(b'"', searched, newline) & 1
                if not odd:
                    end = position + newline + 1
                    break
                searched = newline + 1
            position += len(more)
        yield at, end
        at = end


def csv_pieces(
    source: InputFile,
    builder: EventBuilder,
    *,
    workers: int | None = None,
    min_bytes: int | None = None,
    stretch_bytes: int | None = None,
) -> Iterator[Stretch]:
    """The file's data rows as pieces, in file order: by workers when the file is large
    (None: this module's defaults)."""
    min_bytes = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    stretch_bytes = stretch_bytes or STRETCH_BYTES
    columns = source.columns or ()
    size = source.path.stat().st_size
    count = worker_count() if workers is None else workers
    start = header_end(source.path, columns) if size >= min_bytes and count > 1 else None
    if start is None:
        yield from _here(source, builder, None, 0)
        return
    offset, header_lines = start
    resume, lines = yield from _by_workers(source, builder, offset, size, count, stretch_bytes)
    if resume < size:
        yield from _here(source, builder, resume, header_lines + lines)


def _here(
    source: InputFile, builder: EventBuilder, offset: int | None, line_base: int
) -> Iterator[Stretch]:
    """Read in this process: the whole file (offset None), or its rest from a record boundary
    (`line_base` lines into the file)."""
    columns = source.columns or ()
    build_row = builder.row_function(columns)
    handle: IO[str]
    if offset is None:
        handle = source._open_text()
    else:
        raw = source.path.open("rb")
        raw.seek(offset)
        handle = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
    with handle:
        # strict, as the workers read: a stray quote must not make the rest one value
        reader = csv.reader(handle, strict=True)
        if offset is None:
            next(reader, None)
        try:
            yield from read_pieces(reader, build_row, len(columns), piece_rows=PIECE_ROWS)
        except _ReadError as exc:
            raise unreadable_csv(source.path, exc.error, line_base + exc.line) from None


def _by_workers(
    source: InputFile, builder: EventBuilder, offset: int, size: int, count: int, stretch_bytes: int
) -> Generator[Stretch, None, tuple[int, int]]:
    """Stretches read by `count` worker processes, in order. Returns where this process must
    read on (`size` when the workers read everything) and how many lines they read."""
    columns = source.columns or ()
    path = str(source.path)
    context = multiprocessing.get_context("spawn")  # never fork a process that has threads
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=count, mp_context=context, initializer=_quiet_worker
    )
    pending: deque[tuple[int, concurrent.futures.Future[WorkerAnswer]]] = deque()
    lines = 0
    finished = False
    try:
        with source.path.open("rb") as handle:
            bounds = stretch_bounds(handle, offset, size, stretch_bytes)

            taken: list[tuple[int, int]] = []  # a stretch taken but not handed to a worker

            def submit() -> None:
                bound = taken.pop() if taken else next(bounds, None)
                if bound is None:
                    return
                try:
                    future = pool.submit(
                        read_stretch,
                        path,
                        bound[0],
                        bound[1],
                        columns,
                        builder.now,
                        builder.channel_id,
                        builder.phone_region,
                    )
                except BaseException:
                    taken.append(bound)
                    raise
                pending.append((bound[0], future))

            try:
                for _ in range(2 * count):  # enough queued that no worker waits for this one
                    submit()
            except (OSError, RuntimeError, BrokenProcessPool) as exc:
                log.info("conversion file read in one process: workers not started (%s)", exc)
                return offset, 0
            while pending:
                start, future = pending.popleft()
                try:
                    answer = future.result()
                except Exception as exc:  # a worker died or failed: this process reads on
                    log.info("conversion file read on in one process (%s)", exc)
                    return start, lines
                if answer.refused is not None:
                    log.info(
                        "conversion file read on in one process from byte %d: %s",
                        start,
                        answer.refused,
                    )
                    return start, lines
                try:
                    submit()
                except (OSError, RuntimeError, BrokenProcessPool):
                    pass  # what is queued is read; the rest falls to this process
                for packed in answer.pieces:
                    piece: Stretch = pickle.loads(packed)
                    lines += piece.lines
                    yield piece
                if not pending:
                    rest = taken[0] if taken else next(bounds, None)
                    if rest is not None:
                        return rest[0], lines
        finished = True
        return size, lines
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)
