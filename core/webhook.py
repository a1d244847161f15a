"""LINE webhook intake: signature checks, privacy scrubbing, batched storage, imports.

What LINE promises and what we do about it (reference section 5):

* The signature is Base64(HMAC-SHA256(channel secret, raw body bytes)); it is checked over the
  bytes as received, before any parsing, with a constant-time compare.
* LINE waits at most 2 seconds for an answer, so the server answers 200 as soon as the body is
  checked and hands the events to a background writer that batches them: TinyDB rewrites a whole
  file per write, so one write per event would not survive a burst.
* The same event can arrive more than once (redelivery, network retries) with the same
  `webhookEventId`; each event is stored once.
* LINE's guidelines forbid identifying users, so every `userId` in an event is replaced by its
  SHA-256 (the delivery log's hash) before anything is stored; the report only matches hashes.

Storage layout: `webhook/<yyyymmdd>/part-*.json`, partitioned by the event's own timestamp in
UTC+9 (the same on a redelivery, so a duplicate always lands in the partition that holds its first
copy). Each part is a TinyDB file written once; when a partition holds many parts, the next write
merges its small ones (never the large ones, so a busy day is not rewritten whole).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tinydb import TinyDB

from core.clock import JST
from core.delivery_log import hash_user_id
from core.errors import InputError, StoreCorrupt, StoreError
from core.store import AtomicJSONStorage, Store, make_private_dirs, read_json_file

if TYPE_CHECKING:  # the report reads stored events without loading the HTTP stack
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

EVENTS_TABLE = "webhook_events"
UNDATED = "undated"
"""Partition of events without a usable timestamp (never sent by LINE, but kept all the same)."""
SIGNATURE_HEADER = "x-line-signature"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Far above any webhook LINE sends; refuses a client that would fill our memory."""
COMPACT_AFTER_PARTS = 64
SMALL_PART_BYTES = 1_000_000
"""Compaction merges only parts smaller than this, so a busy day is never rewritten whole."""
SEEN_PARTITIONS_KEPT = 8
DERIVED_ID_PREFIX = "derived-"


# --- signatures -------------------------------------------------------------------------------


def line_signature(channel_secret: bytes, body: bytes) -> str:
    """What LINE puts in `x-line-signature` for `body`."""
    digest = hmac.new(channel_secret, body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(channel_secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header over the raw body bytes."""
    if not header:
        return False
    expected = line_signature(channel_secret, body).encode("ascii")
    given = header.strip().encode("utf-8", errors="surrogateescape")
    return hmac.compare_digest(expected, given)


# --- bodies and events ------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookBody:
    destination: str | None
    events: list[dict[str, Any]]


def body_from_json(document: Any, *, source: str, location: str | None = None) -> WebhookBody:
    """Check the shape LINE sends: an object with an `events` array of objects."""

    def where(path: str) -> str:
        return f"{location}: {path}" if location else path

    if not isinstance(document, dict):
        raise InputError(
            "a webhook body is a JSON object with an 'events' array",
            source=source,
            location=where("(top level)"),
        )
    events = document.get("events")
    if not isinstance(events, list):
        raise InputError(
            "'events' is missing or not an array", source=source, location=where("events")
        )
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InputError(
                "an event is a JSON object", source=source, location=where(f"events[{index}]")
            )
    destination = document.get("destination")
    if destination is not None and not isinstance(destination, str):
        raise InputError(
            "'destination' is not a string", source=source, location=where("destination")
        )
    return WebhookBody(destination=destination, events=events)


def parse_body(raw: bytes, *, source: str = "webhook request") -> WebhookBody:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", source=source) from None
    return body_from_json(document, source=source)


def _scrub(value: Any) -> Any:
    """Every `userId` anywhere in the event becomes `userIdHash` (mentions, members, source)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "userId" and isinstance(item, str):
                out["userIdHash"] = hash_user_id(item)
            else:
                out[key] = _scrub(item)
        return out
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def event_id(event: Mapping[str, Any]) -> str:
    """LINE's `webhookEventId`; for an event without one, a digest of its (scrubbed) content.

    The digest leaves out `deliveryContext`, the one part a redelivery changes.
    """
    given = event.get("webhookEventId")
    if isinstance(given, str) and given:
        return given
    content = {k: v for k, v in event.items() if k != "deliveryContext"}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return DERIVED_ID_PREFIX + digest[:32]


def prepare_event(
    event: Mapping[str, Any],
    *,
    destination: str | None,
    account: str | None = None,
    received_at: float | None = None,
) -> dict[str, Any]:
    """The stored document for one event: the event with user ids hashed, plus index fields."""
    source = event.get("source")
    user_id = source.get("userId") if isinstance(source, dict) else None
    timestamp = event.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        timestamp = None
    kind = event.get("type")
    context = event.get("deliveryContext")
    redelivery = isinstance(context, dict) and context.get("isRedelivery") is True
    scrubbed = _scrub(dict(event))
    return {
        "webhook_event_id": event_id(scrubbed),
        "type": kind if isinstance(kind, str) and kind else "unknown",
        "timestamp": timestamp,
        "user_hash": hash_user_id(user_id) if isinstance(user_id, str) else "",
        "destination": destination,
        "account": account,
        "received_at": time.time() if received_at is None else received_at,
        "redelivery": redelivery,
        "event": scrubbed,
    }


def prepare_body(
    body: WebhookBody, *, account: str | None = None, received_at: float | None = None
) -> list[dict[str, Any]]:
    at = time.time() if received_at is None else received_at
    return [
        prepare_event(e, destination=body.destination, account=account, received_at=at)
        for e in body.events
    ]


def partition_of(timestamp_ms: int | None) -> str:
    """`yyyymmdd` in UTC+9 of an event time (LINE's day), or `undated`."""
    if timestamp_ms is None:
        return UNDATED
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, JST)
    except (OverflowError, OSError, ValueError):
        return UNDATED
    return moment.strftime("%Y%m%d")


def day_partition(day: date) -> str:
    return day.strftime("%Y%m%d")


# --- storage ----------------------------------------------------------------------------------


@dataclass
class AddResult:
    stored: int = 0
    duplicates: int = 0
    writes: int = 0


@dataclass
class _Seen:
    ids: set[str] = field(default_factory=set)
    parts: set[str] = field(default_factory=set)


class WebhookEventStore:
    """Webhook events in the data dir, each stored once by `webhookEventId`.

    Safe beside other processes on the same data dir (another `lcc webhook serve`, an import):
    every write happens under the store's lock and first reads the parts others added.
    """

    def __init__(self, store: Store, *, compact_after: int = COMPACT_AFTER_PARTS) -> None:
        self.store = store
        self.root = store.data_dir / "webhook"
        self.compact_after = compact_after
        self._seen: dict[str, _Seen] = {}

    # reading

    def partitions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def _parts(self, partition: str) -> list[Path]:
        folder = self.root / partition
        if not folder.is_dir():
            return []
        return sorted(folder.glob("part-*.json"))

    def _read_part(self, path: Path) -> list[dict[str, Any]]:
        data = read_json_file(path)
        if data is None:
            return []
        table = data.get(EVENTS_TABLE, {})
        if not isinstance(table, dict):
            raise StoreCorrupt(f"{path} has no table {EVENTS_TABLE!r}; it was left untouched.")
        return [table[key] for key in sorted(table, key=int)]

    def iter_events(self, partitions: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Stored events, each once, partition by partition (all partitions when None)."""
        wanted = self.partitions() if partitions is None else list(partitions)
        for partition in wanted:
            with self.store.transaction():  # a compaction never runs under our feet
                docs = [doc for part in self._parts(partition) for doc in self._read_part(part)]
            seen: set[str] = set()
            for doc in docs:
                key = str(doc.get("webhook_event_id"))
                if key not in seen:
                    seen.add(key)
                    yield doc

    def events_between(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Events whose own timestamp falls in [start, end]."""
        first = start.astimezone(JST).date()
        last = end.astimezone(JST).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        low, high = start.timestamp() * 1000, end.timestamp() * 1000
        for doc in self.iter_events(day_partition(d) for d in days):
            stamp = doc.get("timestamp")
            if isinstance(stamp, int) and low <= stamp <= high:
                yield doc

    def count(self) -> int:
        return sum(1 for _ in self.iter_events())

    # writing

    def _refresh(self, partition: str) -> _Seen:
        seen = self._seen.pop(partition, None) or _Seen()
        self._seen[partition] = seen  # most recently used last
        current = {p.name: p for p in self._parts(partition)}
        for name in current.keys() - seen.parts:
            seen.ids.update(str(d.get("webhook_event_id")) for d in self._read_part(current[name]))
        seen.parts = set(current)
        while len(self._seen) > SEEN_PARTITIONS_KEPT:
            del self._seen[next(iter(self._seen))]
        return seen

    def add(self, docs: Sequence[Mapping[str, Any]]) -> AddResult:
        """Store the events not stored yet: at most one file write per partition touched."""
        result = AddResult()
        if not docs:
            return result
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for doc in docs:
            grouped.setdefault(partition_of(doc.get("timestamp")), []).append(doc)
        with self.store.transaction():
            for partition, group in grouped.items():
                seen = self._refresh(partition)
                fresh: list[dict[str, Any]] = []
                for doc in group:
                    key = str(doc["webhook_event_id"])
                    if key in seen.ids:
                        result.duplicates += 1
                        continue
                    seen.ids.add(key)
                    fresh.append(dict(doc))
                if fresh:
                    self._write(partition, fresh, seen)
                    result.stored += len(fresh)
                    result.writes += 1
        return result

    def _write(self, partition: str, fresh: list[dict[str, Any]], seen: _Seen) -> None:
        folder = self.root / partition
        try:
            make_private_dirs(folder)
        except OSError as exc:
            raise StoreError(f"cannot create {folder}: {exc.strerror}") from None
        old = self._parts(partition)
        merged: list[Path] = []
        if len(old) + 1 > self.compact_after:
            merged = [part for part in old if _size(part) < SMALL_PART_BYTES]
        rows = [doc for part in merged for doc in self._read_part(part)] + fresh
        path = folder / f"part-{time.time_ns():020d}-{os.getpid()}.json"
        while path.exists():
            path = folder / f"part-{time.time_ns():020d}-{os.getpid()}.json"
        TinyDB(path, storage=AtomicJSONStorage).table(EVENTS_TABLE, cache_size=0).insert_multiple(
            rows
        )
        for part in merged:  # only after the merged part is safely on disk
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        seen.parts = (seen.parts - {part.name for part in merged}) | {path.name}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --- background writer ------------------------------------------------------------------------


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    writes: int = 0
    failures: int = 0


class WebhookIngestor:
    """Accepts prepared events at once and writes them in batches from a background thread.

    A batch is written when `max_batch` events are waiting or `flush_interval` seconds after the
    first of them arrived. `close()` writes everything still waiting: nothing acknowledged is
    dropped on an orderly shutdown. A failed write is retried until it succeeds or we close.
    """

    def __init__(
        self,
        events: WebhookEventStore,
        *,
        flush_interval: float = 0.5,
        max_batch: int = 2000,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.events = events
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.stats = IngestStats()
        self._log = log or (lambda message: None)
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
            self._thread.start()

    def submit(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        with self._lock:
            self._pending += len(docs)
            self.stats.received += len(docs)
        self._queue.put(docs)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is waiting and stop the writer."""
        if self._thread is None:
            self._drain_now()
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None
        self._drain_now()

    def _drain_now(self) -> None:
        batch: list[dict[str, Any]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item:
                batch.extend(item)
        if batch:
            self._write(batch, retry_until=time.monotonic() + 10.0)

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        stopping = False
        while not stopping:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = []
            if item is None:
                stopping = True
            elif item:
                if not batch:
                    deadline = time.monotonic() + self.flush_interval
                batch.extend(item)
            due = deadline is not None and time.monotonic() >= deadline
            if batch and (stopping or due or len(batch) >= self.max_batch):
                self._write(batch, retry_until=None if not stopping else time.monotonic() + 10.0)
                batch = []
                deadline = None

    def _write(self, batch: list[dict[str, Any]], *, retry_until: float | None) -> None:
        delay = 0.2
        while True:
            try:
                result = self.events.add(batch)
            except StoreError as exc:
                self.stats.failures += 1
                if retry_until is not None and time.monotonic() >= retry_until:
                    self._log(f"could not store {len(batch)} webhook event(s): {exc}")
                    return
                self._log(f"storing webhook events failed, retrying: {exc}")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            with self._lock:
                self._pending -= len(batch)
                self.stats.stored += result.stored
                self.stats.duplicates += result.duplicates
                self.stats.writes += result.writes
            return


# --- the HTTP app -----------------------------------------------------------------------------


def _json(status: int, body: Any) -> Response:
    from starlette.responses import Response

    return Response(orjson.dumps(body), status, media_type="application/json")


def create_webhook_app(
    store: Store,
    channel_secret: bytes,
    *,
    account: str | None = None,
    flush_interval: float = 0.5,
    max_batch: int = 2000,
    log: Callable[[str], None] | None = None,
) -> Starlette:
    """`POST /webhook` and `GET /healthz`; the writer runs for the app's lifespan.

    Answers: 401 for a missing or wrong signature; 400 for a body that is signed but not a
    webhook body (redelivering the same bytes cannot fix it, and the 4xx shows up in LINE's webhook
    error statistics where an operator looks); 200 otherwise, including an empty `events` array.
    """
    from starlette.applications import Starlette
    from starlette.routing import Route

    say = log or (lambda message: None)
    ingestor = WebhookIngestor(
        WebhookEventStore(store), flush_interval=flush_interval, max_batch=max_batch, log=say
    )

    async def webhook(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _json(413, {"message": "body too large"})
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _json(413, {"message": "body too large"})
        if not signature_matches(channel_secret, raw, request.headers.get(SIGNATURE_HEADER)):
            say(f"refused a webhook from {_peer(request)}: missing or wrong {SIGNATURE_HEADER}")
            return _json(401, {"message": f"missing or wrong {SIGNATURE_HEADER}"})
        try:
            body = parse_body(raw)
        except InputError as exc:
            say(f"refused a signed webhook body from {_peer(request)}: {exc.describe()}")
            return _json(400, {"message": exc.describe()})
        ingestor.submit(prepare_body(body, account=account))
        return _json(200, {})

    async def healthz(request: Request) -> Response:
        stats = ingestor.stats
        return _json(
            200,
            {
                "status": "ok",
                "received": stats.received,
                "stored": stats.stored,
                "duplicates": stats.duplicates,
                "pending": ingestor.pending,
            },
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ingestor.start()
        try:
            yield
        finally:
            ingestor.close()

    app = Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.ingestor = ingestor
    return app


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "an unknown peer"


# --- import -----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    bodies: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0


IMPORT_BATCH = 10_000


def _read_bytes(path: Path) -> bytes:
    source = str(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a JSON or JSONL file", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None


def _json_error(exc: orjson.JSONDecodeError, raw: bytes, source: str) -> InputError:
    text = raw[: exc.pos].decode("utf-8", errors="replace")
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return InputError(
        f"not valid JSON ({exc.msg})", source=source, location=f"line {line}, column {column}"
    )


def read_bodies(path: Path) -> Iterator[WebhookBody]:
    """Webhook bodies from a file: one JSON body, a JSON array of bodies, or JSONL.

    Raises `InputError` naming the line (JSONL) or line and column (JSON) of bad input.
    """
    source = str(path)
    raw = _read_bytes(path)
    if not raw.strip():
        raise InputError("empty file, expected webhook bodies", source=source)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    if not jsonl:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            first = raw.lstrip().split(b"\n", 1)[0]
            try:
                orjson.loads(first)
            except orjson.JSONDecodeError:
                raise _json_error(exc, raw, source) from None
            jsonl = True  # the first line stands alone: one body per line
        else:
            if isinstance(document, list):
                for index, item in enumerate(document):
                    yield body_from_json(item, source=source, location=f"[{index}]")
            else:
                yield body_from_json(document, source=source)
            return
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg})", source=source, location=f"line {number}"
            ) from None
        yield body_from_json(document, source=source, location=f"line {number}")


def import_file(store: Store, path: Path | str, *, account: str | None = None) -> ImportResult:
    """Store every event of a file once; nothing is stored when any part of the file is bad."""
    path = Path(path)
    result = ImportResult()
    for body in read_bodies(path):  # a first pass checks the whole file
        result.bodies += 1
        result.events += len(body.events)
    events = WebhookEventStore(store)
    batch: list[dict[str, Any]] = []
    received = datetime.now(UTC).timestamp()
    for body in read_bodies(path):
        batch.extend(prepare_body(body, account=account, received_at=received))
        if len(batch) >= IMPORT_BATCH:
            added = events.add(batch)
            result.stored += added.stored
            result.duplicates += added.duplicates
            batch = []
    added = events.add(batch)
    result.stored += added.stored
    result.duplicates += added.duplicates
    return result
