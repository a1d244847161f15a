"""Delivery-log rows (contract section 6), their batched writer, and the counts derived from them.

One row per profile and message object. The contract's columns come first; after them each row
carries `profile_id`, `message_index`, `request_id` (LINE's id of the accepted request) and
`request_index` (the outbox request it answers, which is how a resume knows what is done).

Rows are never written one at a time: TinyDB rewrites a whole file per write, so the writer
collects outcomes and appends them as one part file every `flush_rows` rows or `flush_interval_s`
seconds, at the end, and on cancellation. A kill loses at most that unwritten tail, whose requests
are then still pending and go again with the same retry keys (LINE answers 409: delivered once).
"""

from __future__ import annotations

import binascii
import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

COLUMNS = (
    "event",
    "time",
    "channel_type",
    "campaign_id",
    "line_channel_name",
    "line_user_id",
    "message_type",
    "status",
    "error_code",
    "is_test",
)
"""The contract's columns, in order; rows may carry more after them."""

EXTRA_COLUMNS = ("profile_id", "message_index", "request_id", "request_index")

OUTCOME_UNKNOWN = "outcome_unknown"
"""Error code an operator chooses for requests whose outcome LINE can no longer tell us."""

_sha256 = hashlib.sha256


def hash_user_id(line_user_id: str | None) -> str:
    """Lowercase hex SHA-256 of a LINE user id; empty when there was none."""
    if not line_user_id:
        return ""
    return _sha256(line_user_id.encode("utf-8")).hexdigest()


def make_row(
    *,
    time: int,
    campaign_id: str,
    channel_name: str,
    line_user_id: str | None,
    message_type: str,
    success: bool,
    error_code: str = "",
    is_test: bool = False,
    profile_id: str | None = None,
    message_index: int | None = None,
    request_id: str | None = None,
    request_index: int | None = None,
) -> dict[str, Any]:
    return {
        "event": "delivery" if success else "error",
        "time": time,
        "channel_type": "LINE",
        "campaign_id": campaign_id,
        "line_channel_name": channel_name,
        "line_user_id": hash_user_id(line_user_id),
        "message_type": message_type,
        "status": "success" if success else "failed",
        "error_code": "" if success else error_code,
        "is_test": is_test,
        "profile_id": profile_id,
        "message_index": message_index,
        "request_id": request_id,
        "request_index": request_index,
    }


_ENCODED_FIELDS = ("time", "line_user_id", "error_code", "profile_id", "request_id")
"""Fields an encoded row fills in, in the order they appear in a row."""


_PER_ROW = ("line_user_id", "profile_id")
"""Of `_ENCODED_FIELDS`, those that differ between the rows of one request."""


def _placeholder(name: str) -> bytes:
    return orjson.dumps(f"\x00{name}\x00")


def _with_placeholders(base: Mapping[str, Any]) -> bytes:
    """A row's JSON text with `_placeholder(name)` for each value a request or an answer fills."""
    doc = dict(base)
    for name in (*_ENCODED_FIELDS, "request_index"):
        doc[name] = f"\x00{name}\x00"
    return orjson.dumps(doc)


def _row_template(base: Mapping[str, Any]) -> bytes:
    """`"%d":{row}` as it sits in a TinyDB part file under its document id, in two stages:
    `template % (time, error_code, request_id, request_index)` (a request's values, JSON text)
    gives the template of its rows, and that `% (row id, line_user_id, profile_id)` a row."""
    raw = _with_placeholders(base).replace(b"%", b"%%%%")
    for name in (*_ENCODED_FIELDS, "request_index"):
        raw = raw.replace(_placeholder(name), b"%%b" if name in _PER_ROW else b"%b")
    return b'"%%d":' + raw


_MARKERS = {name: b"\x00" + name.encode() + b"\x00" for name in (*_PER_ROW, "request_index")}
"""Where `RowFactory.accepted_rows` puts a request's own values (orjson never writes a NUL)."""


def _accepted_row_template(base: Mapping[str, Any]) -> bytes:
    """`"%d":{row}` of an accepted request's row, with `_MARKERS` for its recipient, profile and
    request index, and the slots `% (row id, time, request_id)` left for when LINE answers."""
    raw = _with_placeholders(base).replace(b"%", b"%%")
    for name, slot in (("time", b"%d"), ("request_id", b"%b"), ("error_code", b'""')):
        raw = raw.replace(_placeholder(name), slot)
    for name, marker in _MARKERS.items():
        raw = raw.replace(_placeholder(name), marker)
    return b'"%d":' + raw


class RowFactory:
    """Rows for one campaign's bundle, built from templates.

    `extend` builds row dicts; `encode` builds each row's JSON text straight from a template
    (a million rows cost well under a second), for the engine's batched writer.
    """

    def __init__(
        self,
        *,
        campaign_id: str,
        channel_name: str,
        message_types: Sequence[str],
        is_test: bool = False,
    ) -> None:
        self.message_types = tuple(message_types)
        base = make_row(
            time=0,
            campaign_id=campaign_id,
            channel_name=channel_name,
            line_user_id=None,
            message_type="",
            success=True,
            is_test=is_test,
        )
        self._success = dict(base)
        self._failure = {**base, "event": "error", "status": "failed"}
        self._templates = {
            success: [
                _row_template(
                    {**(self._success if success else self._failure), "message_type": kind}
                    | {"message_index": index}
                )
                for index, kind in enumerate(self.message_types)
            ]
            for success in (True, False)
        }
        self._accepted = [
            _accepted_row_template({**self._success, "message_type": kind, "message_index": index})
            for index, kind in enumerate(self.message_types)
        ]

    def extend(
        self,
        out: list[dict[str, Any]],
        *,
        time: int,
        line_user_id: str | None,
        profile_id: str | None,
        success: bool,
        error_code: str = "",
        request_id: str | None = None,
        request_index: int | None = None,
    ) -> None:
        """Append one row per message of the bundle for one profile to `out`."""
        template = self._success if success else self._failure
        hashed = _sha256(line_user_id.encode()).hexdigest() if line_user_id else ""
        for index, message_type in enumerate(self.message_types):
            row = template.copy()
            row["time"] = time
            row["line_user_id"] = hashed
            row["message_type"] = message_type
            if not success:
                row["error_code"] = error_code
            row["profile_id"] = profile_id
            row["message_index"] = index
            row["request_id"] = request_id
            row["request_index"] = request_index
            out.append(row)

    def encode_request(
        self,
        writer: LogWriter,
        *,
        time: int,
        line_user_ids: Sequence[str],
        profile_ids: Sequence[str],
        success: bool,
        error_code: str = "",
        request_id: str | None = None,
        request_index: int | None = None,
    ) -> None:
        """Add every row of one request (its recipients x messages) to `writer`, as the JSON
        text of the part file they will be written in (`"id":{row}`, comma-separated)."""
        shared = (  # inserted into the rows' template: a `%` in them must stay a `%`
            b"%d" % time,
            orjson.dumps("" if success else error_code).replace(b"%", b"%%"),
            orjson.dumps(request_id).replace(b"%", b"%%"),
            orjson.dumps(request_index),
        )
        templates = [template % shared for template in self._templates[success]]
        dumps = orjson.dumps
        sha = _sha256
        hexlify = binascii.hexlify
        first = writer.pending_rows + 1
        hashed = [
            b'"' + hexlify(sha(user_id.encode()).digest()) + b'"' for user_id in line_user_ids
        ]
        pids = list(map(dumps, profile_ids))
        if len(templates) == 1:
            [template] = templates
            rows = enumerate(zip(hashed, pids, strict=True), start=first)
            pieces = [template % (number, user, pid) for number, (user, pid) in rows]
        else:
            numbers = itertools.count(first)
            pieces = [
                template % (next(numbers), user, pid)
                for user, pid in zip(hashed, pids, strict=True)
                for template in templates
            ]
        writer.add(b",".join(pieces), len(pieces))

    def accepted_rows(
        self, line_user_ids: Sequence[str], profile_ids: Sequence[str], request_index: int
    ) -> bytes:
        """A request's rows as `encode_accepted` will write them if LINE accepts it, all but
        what only the answer says. The rendering child builds them beside the messages, so that
        the sending process only fills in the answer."""
        index = b"%d" % request_index
        pieces = []
        for user_id, profile_id in zip(line_user_ids, profile_ids, strict=True):
            user = b'"' + binascii.hexlify(_sha256(user_id.encode()).digest()) + b'"'
            profile = orjson.dumps(profile_id).replace(b"%", b"%%")
            for template in self._accepted:
                pieces.append(
                    template.replace(_MARKERS["line_user_id"], user)
                    .replace(_MARKERS["profile_id"], profile)
                    .replace(_MARKERS["request_index"], index)
                )
        return b",".join(pieces)

    def encode_accepted(
        self, writer: LogWriter, rows: bytes, recipients: int, *, time: int, request_id: str | None
    ) -> None:
        """Add the rows of an accepted request to `recipients` from its `accepted_rows` to
        `writer`: the same text `encode_request` writes for it."""
        count = recipients * len(self.message_types)
        first = writer.pending_rows + 1
        answer = orjson.dumps(request_id)
        if count == 1:
            values: tuple[Any, ...] = (first, time, answer)
        else:
            values = tuple(
                itertools.chain.from_iterable((first + n, time, answer) for n in range(count))
            )
        writer.add(rows % values, count)


class PartSink(Protocol):
    def append_encoded(self, body: bytes, rows: int) -> object: ...


class LogWriter:
    """Collects encoded rows and writes them as part files: every N rows, every T seconds, at
    the end.

    With `background`, parts are written by one thread of their own, in order, so the disk
    (write, fsync, rename) never holds up the sending; `close()` waits for every write and
    raises the first that failed. A part counts only once written: a kill before that leaves its
    requests pending, to go again under their keys.
    """

    def __init__(
        self,
        sink: PartSink,
        *,
        flush_rows: int = 20_000,
        flush_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self.sink = sink
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self._monotonic = monotonic
        self.pending: list[bytes] = []
        self.pending_rows = 0
        self._last_flush = monotonic()
        self.parts_written = 0
        self.rows_written = 0
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lcc-log") if background else None
        )
        self._writes: list[Future[object]] = []

    def add(self, chunk: bytes, rows: int) -> None:
        """`rows` rows of part-file JSON, numbered from `pending_rows + 1`."""
        if rows:
            self.pending.append(chunk)
            self.pending_rows += rows

    def due(self) -> bool:
        if not self.pending_rows:
            return False
        return (
            self.pending_rows >= self.flush_rows
            or self._monotonic() - self._last_flush >= self.flush_interval_s
        )

    def flush(self) -> None:
        """Write what is collected as one part (nothing when empty)."""
        chunks, rows = self.pending, self.pending_rows
        self.pending, self.pending_rows = [], 0
        self._last_flush = self._monotonic()
        if not rows:
            return
        body = b",".join(chunks)
        if self._executor is None:
            self.sink.append_encoded(body, rows)
        else:
            self._raise_failed()
            self._writes.append(self._executor.submit(self.sink.append_encoded, body, rows))
        self.parts_written += 1
        self.rows_written += rows

    def maybe_flush(self) -> bool:
        if self.due():
            self.flush()
            return True
        return False

    def _raise_failed(self) -> None:
        still: list[Future[object]] = []
        for write in self._writes:
            if write.done():
                write.result()  # raises what the write raised
            else:
                still.append(write)
        self._writes = still

    def close(self) -> None:
        """Flush, wait for every background write, and raise the first that failed."""
        try:
            self.flush()
        finally:
            if self._executor is not None:
                writes, self._writes = self._writes, []
                self._executor.shutdown(wait=True)
                for write in writes:
                    write.result()


# --- reading the log ------------------------------------------------------------------------


@dataclass
class LogCounts:
    """Campaign figures from the log; test sends never count."""

    delivered: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    tests: int = 0
    """Test-send rows, kept apart."""


def count_rows(rows: Iterable[Mapping[str, Any]]) -> LogCounts:
    """Profiles, not rows: a bundle of two messages to one profile counts once.

    Rows that name their message index count at message 0 (every profile has exactly one such
    row); rows without one fall back to a set of the profiles seen.
    """
    delivered = 0
    errors: Counter[str] = Counter()
    other_delivered: set[str] = set()
    other_failed: dict[str, str] = {}
    total = 0
    tests = 0
    for row in rows:
        if row.get("is_test"):
            tests += 1
            continue
        total += 1
        index = row.get("message_index")
        success = row.get("status") == "success"
        if index is not None:
            if index != 0:
                continue
            if success:
                delivered += 1
            else:
                errors[str(row.get("error_code") or "unknown")] += 1
            continue
        key = str(row.get("profile_id") or row.get("line_user_id"))
        if success:
            other_delivered.add(key)
        else:
            other_failed.setdefault(key, str(row.get("error_code") or "unknown"))
    errors.update(other_failed.values())
    return LogCounts(
        delivered=delivered + len(other_delivered),
        failed=sum(errors.values()),
        errors=errors,
        rows=total,
        tests=tests,
    )


def recorded_requests(rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """Outbox requests that have an outcome in the log (test sends and exclusions have none)."""
    done: set[int] = set()
    for row in rows:
        index = row.get("request_index")
        if index is not None and not row.get("is_test"):
            done.add(index)
    return done


def ordered_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with the contract's columns first, in order, then the rest as stored."""
    ordered = {column: row.get(column) for column in COLUMNS}
    for key, value in row.items():
        if key not in ordered:
            ordered[key] = value
    return ordered
