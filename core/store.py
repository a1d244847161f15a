"""The TinyDB store: crash-safe files, one writer at a time, versioned schema.

Layout of a data dir::

    campaigns.json      campaigns
    directory.json      workspaces, sender accounts, segments
    transitions.json    every state change with time, actor and reason
    flags.json          campaign flags waiting for an operator (late start, unknown outcomes)
    delivery/<campaign>/part-*.json   the delivery log, table `delivery_line_{system_identifier}`
    outbox/<campaign>/  the frozen campaign and its requests (`core.outbox`)
    leases/<campaign>.lock  who is delivering the campaign right now
    .lcc.lock           the write lock

Why it is built this way:

* TinyDB rewrites a whole file on every write. A write therefore goes to a temporary file that is
  fsynced and renamed over the live one: a crash leaves either the old or the new file, never a
  truncated one. Files are created with mode 0600 (they hold audience data).
* Two consoles may share a data dir. Every read-modify-write happens under an exclusive `flock`,
  and reads inside it see the other process's last write (TinyDB's query cache is disabled). A
  second writer waits up to `lock_timeout` seconds and then gets a clear message.
* The delivery log is append-only: each batch becomes a new part file written once, so a million
  rows cost a few large writes instead of a rewrite per row.
* A file we cannot parse is reported by name and never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from core import states
from core.errors import NotFound, StoreCorrupt, StoreError, StoreLocked
from core.models import (
    Campaign,
    CampaignState,
    Segment,
    SenderAccount,
    Transition,
    Workspace,
)

SCHEMA_VERSION = 1
META_TABLE = "_meta"
FILE_MODE = 0o600
DIR_MODE = 0o700

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}
"""`MIGRATIONS[n]` turns a file at schema version n into version n + 1."""


# --- files ------------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload` so that a crash at any point leaves a whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents with mode 0700 (they hold audience data)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The parsed file, None when absent; a file we cannot parse raises `StoreCorrupt`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreCorrupt(
            f"{path} is not valid JSON ({exc}); it was left untouched. "
            "Restore it from a backup or move it aside to start that file afresh."
        ) from None
    if not isinstance(data, dict):
        raise StoreCorrupt(f"{path} does not hold a TinyDB document map; it was left untouched.")
    return data


class AtomicJSONStorage(Storage):
    """TinyDB storage that writes by temporary file, fsync and rename, in mode 0600."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        return read_json_file(self.path)

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, orjson.dumps(data))

    def close(self) -> None:
        pass


# --- the lock ---------------------------------------------------------------------------------


class DataDirLock:
    """An exclusive, re-entrant (per process) lock on a data dir, shared with other processes."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._local = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._local:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise StoreLocked(
                        f"another lcc process{holder} has been writing to {self.path.parent} "
                        f"for over {self.timeout:g}s; wait for it to finish and try again"
                    ) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


# --- the store --------------------------------------------------------------------------------


class Store:
    """One data dir. Repositories hang off it; `transaction()` holds the write lock."""

    def __init__(
        self, data_dir: Path, *, system_identifier: str = "default", lock_timeout: float = 10.0
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.system_identifier = system_identifier
        self.delivery_table = f"delivery_line_{system_identifier}"
        try:
            make_private_dirs(self.data_dir)
        except OSError as exc:
            raise StoreError(f"cannot create data dir {self.data_dir}: {exc.strerror}") from None
        if not os.access(self.data_dir, os.W_OK):
            raise StoreError(f"data dir {self.data_dir} is not writable")
        self._lock = DataDirLock(self.data_dir / ".lcc.lock", lock_timeout)
        self._dbs: dict[str, TinyDB] = {}
        self.campaigns = CampaignRepository(self)
        self.directory = DirectoryRepository(self)
        self.transitions = TransitionRepository(self)
        self.flags = FlagRepository(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the data dir's write lock; nest freely within one process."""
        with self._lock.hold():
            yield

    def db(self, name: str) -> TinyDB:
        """The TinyDB file `name`.json, created and migrated on first use."""
        db = self._dbs.get(name)
        if db is None:
            path = self.data_dir / f"{name}.json"
            self._open_file(path)
            db = TinyDB(path, storage=AtomicJSONStorage)
            self._dbs[name] = db
        return db

    def table(self, db_name: str, table_name: str) -> Table:
        """The table, re-read from its file on every use.

        TinyDB remembers a table's next document id; once another process has inserted into
        the same file that memory is stale (`insert` then refuses, `insert_multiple` overwrites
        the other's document). Forgetting it makes TinyDB work the id out from the file, which
        is current because writers hold the data dir's lock.
        """
        table = self.db(db_name).table(table_name, cache_size=0)
        table._next_id = None
        return table

    def _open_file(self, path: Path) -> None:
        data = read_json_file(path)
        if data and _schema_version(data, path) == SCHEMA_VERSION:
            return
        with self.transaction():
            data = read_json_file(path)
            if not data:
                atomic_write_bytes(path, orjson.dumps(_meta_document({})))
                return
            version = _schema_version(data, path)
            if version == SCHEMA_VERSION:
                return
            atomic_write_bytes(path.with_name(f"{path.name}.v{version}.bak"), orjson.dumps(data))
            while version < SCHEMA_VERSION:
                data = MIGRATIONS[version](data)
                version += 1
            atomic_write_bytes(path, orjson.dumps(_meta_document(data)))

    def delivery_log(self, campaign_id: str) -> DeliveryLog:
        return DeliveryLog(self.data_dir / "delivery" / campaign_id, self.delivery_table)

    def lease(self, campaign_id: str) -> CampaignLease:
        """The lease on delivering `campaign_id` (not yet acquired)."""
        return CampaignLease(self.data_dir / "leases" / f"{campaign_id}.lock")

    def campaign_dir(self, kind: str, campaign_id: str) -> Path:
        """A per-campaign folder for append-only files (outbox, delivery log, ...)."""
        path = self.data_dir / kind / campaign_id
        make_private_dirs(path)
        return path


def _meta_document(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data[META_TABLE] = {"1": {"schema_version": SCHEMA_VERSION}}
    return data


def _schema_version(data: dict[str, Any], path: Path) -> int:
    try:
        version = next(iter(data[META_TABLE].values()))["schema_version"]
    except (KeyError, StopIteration, TypeError, AttributeError):
        raise StoreCorrupt(f"{path} has no schema version; it was left untouched.") from None
    if not isinstance(version, int) or version < 0:
        raise StoreCorrupt(f"{path} has an unreadable schema version {version!r}.")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer lcc (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade lcc before opening this data dir"
        )
    if version < SCHEMA_VERSION and version not in MIGRATIONS:
        raise StoreError(f"{path}: no migration from schema {version}")
    return version


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json"))


# --- repositories -----------------------------------------------------------------------------


class CampaignRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _table(self) -> Table:
        return self._store.table("campaigns", "campaigns")

    def find(self, campaign_id: str) -> Campaign | None:
        doc = self._table.get(Query().id == campaign_id)
        return Campaign.model_validate(doc) if doc is not None else None

    def get(self, campaign_id: str) -> Campaign:
        campaign = self.find(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id!r} in {self._store.data_dir}")
        return campaign

    def all(self, workspace: str | None = None) -> list[Campaign]:
        docs = self._table.all()
        campaigns = [Campaign.model_validate(doc) for doc in docs]
        if workspace is not None:
            campaigns = [c for c in campaigns if c.workspace == workspace]
        return campaigns

    def save(self, campaign: Campaign) -> None:
        with self._store.transaction():
            self._table.upsert(_dump(campaign), Query().id == campaign.id)

    def update(self, campaign_id: str, change: Callable[[Campaign], Campaign]) -> Campaign:
        """Read, change and write one campaign under the lock, so no update is lost."""
        with self._store.transaction():
            updated = change(self.get(campaign_id))
            self._table.upsert(_dump(updated), Query().id == campaign_id)
            return updated

    def transition(
        self,
        campaign_id: str,
        action: states.Action,
        *,
        at: datetime,
        actor: str,
        reason: str | None = None,
        change: Callable[[Campaign], Campaign] | None = None,
    ) -> Campaign:
        """Apply a state-machine action to the stored campaign and record it, atomically.

        Two consoles launching one campaign: the second sees the first's state and is refused.
        """
        with self._store.transaction():
            current = self.get(campaign_id)
            outcome = states.apply(current, action, at=at, actor=actor, reason=reason)
            updated = change(outcome.campaign) if change else outcome.campaign
            self._table.upsert(_dump(updated), Query().id == campaign_id)
            self._store.transitions.add(outcome.transition)
            return updated

    def in_state(self, *wanted: CampaignState) -> list[Campaign]:
        return [c for c in self.all() if c.state in wanted]


class TransitionRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _table(self) -> Table:
        return self._store.table("transitions", "transitions")

    def add(self, transition: Transition) -> None:
        with self._store.transaction():
            self._table.insert(_dump(transition))

    def for_campaign(self, campaign_id: str) -> list[Transition]:
        docs = self._table.search(Query().campaign_id == campaign_id)
        return [Transition.model_validate(doc) for doc in docs]


class DirectoryRepository:
    """Workspaces, sender accounts and segments: the world a campaign is composed from."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _table(self, name: str) -> Table:
        return self._store.table("directory", name)

    def save_workspace(self, workspace: Workspace) -> None:
        with self._store.transaction():
            self._table("workspaces").upsert(_dump(workspace), Query().name == workspace.name)

    def workspaces(self) -> list[Workspace]:
        return [Workspace.model_validate(d) for d in self._table("workspaces").all()]

    def save_account(self, account: SenderAccount) -> None:
        with self._store.transaction():
            self._table("sender_accounts").upsert(_dump(account), Query().id == account.id)

    def accounts(self, workspace: str | None = None) -> list[SenderAccount]:
        accounts = [SenderAccount.model_validate(d) for d in self._table("sender_accounts").all()]
        if workspace is None:
            return accounts
        return [a for a in accounts if workspace in a.workspaces]

    def account(self, account_id: str) -> SenderAccount | None:
        doc = self._table("sender_accounts").get(Query().id == account_id)
        return SenderAccount.model_validate(doc) if doc is not None else None

    def save_segment(self, segment: Segment) -> None:
        query = (Query().parent_segment == segment.parent_segment) & (
            Query().segment == segment.segment
        )
        with self._store.transaction():
            self._table("segments").upsert(_dump(segment), query)

    def segments(self) -> list[Segment]:
        return [Segment.model_validate(d) for d in self._table("segments").all()]

    def segment(self, parent_segment: str, segment: str) -> Segment | None:
        query = (Query().parent_segment == parent_segment) & (Query().segment == segment)
        doc = self._table("segments").get(query)
        return Segment.model_validate(doc) if doc is not None else None


class DeliveryLog:
    """The campaign's delivery log: append-only part files, each a TinyDB file written once.

    A part is written in TinyDB's own file format (`{table: {"1": row, ...}}`) directly with
    orjson: the file is what `TinyDB(part).table(...)` reads, at a fraction of the cost of
    building it through TinyDB. Parts sort by name, which starts with the time they were written.
    """

    def __init__(self, directory: Path, table: str) -> None:
        self.directory = directory
        self.table = table

    def parts(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("part-*.json"))

    def _new_part_path(self) -> Path:
        """A part name no file has yet: its time in nanoseconds, then this process's id."""
        make_private_dirs(self.directory)
        path = self.directory / f"part-{time.time_ns():020d}-{os.getpid()}.json"
        while path.exists():
            path = self.directory / f"part-{time.time_ns():020d}-{os.getpid()}.json"
        return path

    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Write `rows` as one new part; one file write however many rows there are."""
        if not rows:
            return None
        path = self._new_part_path()
        self.write_part(path.name, rows)
        return path

    def append_encoded(self, body: bytes, rows: int) -> Path | None:
        """`append` for rows already encoded as a part's `"1":{...},"2":{...}` JSON text (the
        delivery engine's writer); `rows` says how many there are."""
        if not rows:
            return None
        path = self._new_part_path()
        atomic_write_bytes(path, b"{" + orjson.dumps(self.table) + b":{" + body + b"}}")
        return path

    def write_part(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Write (or atomically replace) the part `name`: same name and rows, same file."""
        make_private_dirs(self.directory)
        path = self.directory / name
        table = {str(number): row for number, row in enumerate(rows, start=1)}
        atomic_write_bytes(path, orjson.dumps({self.table: table}))
        return path

    def remove_parts(self, pattern: str) -> int:
        """Remove the parts matching `pattern` (a glob); how many were removed."""
        removed = 0
        if self.directory.is_dir():
            for path in self.directory.glob(pattern):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def part_rows(self, part: Path) -> list[dict[str, Any]]:
        data = read_json_file(part)
        if data is None:
            return []
        table = data.get(self.table, {})
        if not isinstance(table, dict):
            raise StoreCorrupt(f"{part} has no table {self.table!r}; it was left untouched.")
        return list(table.values())

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, part by part (one part in memory at a time)."""
        for part in self.parts():
            yield from self.part_rows(part)

    def count(self) -> int:
        return sum(1 for _ in self.rows())


class CampaignLease:
    """Who delivers a campaign: an exclusive `flock` on `leases/<campaign>.lock`.

    Only the holder sends for the campaign, so two schedulers, or a console and a scheduler,
    never deliver it at the same time. The kernel drops the lock when the holder's process ends
    in any way (a SIGKILL included), so a crash never leaves a stale lease behind. The file
    names the holder (pid, host, since) for messages.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, note: str = "") -> bool:
        """Take the lease if nobody holds it; False (at once) when somebody does."""
        if self._fd is not None:
            return True
        make_private_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        stamp = f"pid {os.getpid()} on {os.uname().nodename} since {time.strftime('%H:%M:%S')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, (stamp + (f" ({note})" if note else "")).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> str:
        """Who holds it, as written in the file ("" when unknown)."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()[:200]
        except OSError:
            return ""


class CampaignFlag(BaseModel):
    """Something about a campaign that waits for an operator's decision."""

    campaign_id: str
    kind: str
    reason: str
    at: datetime
    data: dict[str, Any] = {}


class FlagRepository:
    """Flags on campaigns (late start, unknown outcomes, held): one per campaign and kind."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _table(self) -> Table:
        return self._store.table("flags", "flags")

    def raise_flag(self, flag: CampaignFlag) -> None:
        query = (Query().campaign_id == flag.campaign_id) & (Query().kind == flag.kind)
        with self._store.transaction():
            self._table.upsert(flag.model_dump(mode="json"), query)

    def clear(self, campaign_id: str, kind: str | None = None) -> int:
        query = Query().campaign_id == campaign_id
        if kind is not None:
            query = query & (Query().kind == kind)
        with self._store.transaction():
            return len(self._table.remove(query))

    def for_campaign(self, campaign_id: str) -> list[CampaignFlag]:
        docs = self._table.search(Query().campaign_id == campaign_id)
        return [CampaignFlag.model_validate(doc) for doc in docs]

    def get(self, campaign_id: str, kind: str) -> CampaignFlag | None:
        query = (Query().campaign_id == campaign_id) & (Query().kind == kind)
        doc = self._table.get(query)
        return CampaignFlag.model_validate(doc) if doc is not None else None

    def all(self) -> list[CampaignFlag]:
        return [CampaignFlag.model_validate(doc) for doc in self._table.all()]


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
