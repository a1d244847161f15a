"""The outbox: a launched campaign frozen into the LINE requests that will deliver it.

At launch the audience is resolved once and written down, in batches, as numbered requests: one
push per profile when the content is personalised, a multicast of up to 500 recipients when it is
not. Each request carries a retry key derived from the campaign, its number and its content,
written before the request is ever sent. The content is frozen with it:

* a multicast's messages are rendered once at launch and stored in the manifest (the key hashes
  the recipients and those exact messages);
* a push stores the profile attributes its templates read, next to the frozen campaign spec; the
  messages are rendered when the request is sent, from exactly these inputs, so a resume renders
  the same bytes (the key hashes the recipient, the spec and the attributes: the bundle's every
  input). Rendering at send time keeps a million-profile launch to seconds, and overlaps the
  rendering with waiting for LINE.

A resume sends the same content under the same key, and LINE answers 409 to what it had already
accepted: nothing reaches a phone twice.

A large audience starts sending while it is still being frozen (`LiveFreeze`): each part is on
disk, keys and all, before any of its requests goes out. If the process dies before the manifest
is written, nothing is thrown away: the resume freezes the audience again beside the outbox and
keeps going only if every part already written comes out byte for byte the same
(`refreeze_verified`); a changed audience stops the campaign for an operator instead.

LINE remembers a retry key for 24 hours after the first attempt. Before a request is first
dispatched the engine writes a dispatch mark (a time and the highest request number it covers), a
lower bound of the first attempt. A pending request whose key may have expired is not re-sent
blindly: it is reported unknown and an operator decides (`decisions.json`).

Layout of `outbox/<campaign>/`::

    manifest.json        the frozen campaign; written last, so its presence means complete
    freezing.json        when the freeze began (its `frozen_at`), written first
    requests-NNNNN.json  the requests, in order
    excluded-NNNNN.json  profiles that cannot be sent to, with why
    dispatch.jsonl       dispatch marks (append-only)
    decisions.json       operator decisions on requests of unknown outcome
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, Field

from core import forking
from core.audience import FunnelCounter, ResolvedBatch
from core.errors import LccError, StoreCorrupt
from core.models import CampaignSpec, Profile, SenderAccount
from core.store import atomic_write_bytes, fsync_dir, make_private_dirs, read_json_file

if TYPE_CHECKING:  # the pipe's type only; multiprocessing loads it when a pipe is made
    from multiprocessing.connection import Connection

OUTBOX_VERSION = 1
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c2b0e-8a4e-4d43-9a51-2f0d3c7b9e11")
MULTICAST_MAX = 500
KEY_WINDOW_S = 24 * 3600.0
"""How long LINE remembers a retry key after the first attempt."""
KEY_SAFETY_MARGIN_S = 3600.0
"""A pending request first attempted more than 23 hours ago is not re-sent without a decision."""

PUSH_PART_REQUESTS = 5_000
MULTICAST_PART_REQUESTS = 25
"""12,500 recipients: a delivery that follows a freeze waits for a whole part, so the last part's
sending is what is left after the freeze ends."""
EXCLUSION_PART_ROWS = 20_000

Mode = Literal["push", "multicast"]
Render = Callable[[Profile | None], list[dict[str, Any]]]


# --- keys -------------------------------------------------------------------------------------


def bundle_digest(messages: list[dict[str, Any]]) -> str:
    """SHA-256 of the messages exactly as they are frozen (keys sorted)."""
    return hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()


def spec_digest(spec: CampaignSpec) -> str:
    """SHA-256 of the frozen campaign spec (what every push is rendered from)."""
    return hashlib.sha256(
        orjson.dumps(spec.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def inputs_digest(spec_hash: str, attributes: dict[str, Any]) -> str:
    """The content of one push: its spec and the attribute values its templates read."""
    return hashlib.sha256(
        spec_hash.encode() + orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


_NAMESPACE_BYTES = RETRY_KEY_NAMESPACE.bytes


def uuid5(name: str) -> str:
    """`str(uuid.uuid5(RETRY_KEY_NAMESPACE, name))`, without building UUID objects (a million
    keys are frozen at launch)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def request_key(campaign_id: str, index: int, recipients: Iterable[str], digest: str) -> str:
    """The retry key of request `index`: the same campaign, number and content, the same key."""
    content = hashlib.sha256("\n".join(recipients).encode() + b"\n" + digest.encode()).hexdigest()
    return uuid5(f"{campaign_id}:{index}:{content}")


def reissued_key(key: str, epoch: int) -> str:
    """The key of a request an operator chose to send again after LINE forgot the first."""
    if epoch <= 0:
        return key
    return uuid5(f"{key}:reissue:{epoch}")


# --- the manifest -------------------------------------------------------------------------------


class Totals(BaseModel):
    segment: int = 0
    with_id: int = 0
    valid: int = 0
    unique: int = 0
    requests: int = 0

    @property
    def excluded(self) -> int:
        return self.segment - self.unique

    @property
    def recipients(self) -> int:
        """Messages LINE will count: one per recipient of each request."""
        return self.unique


class Manifest(BaseModel):
    """The frozen campaign: what is sent, from which account, in how many requests."""

    version: int = OUTBOX_VERSION
    campaign_id: str
    frozen_at: datetime
    spec: CampaignSpec
    account: SenderAccount
    aggregation_unit: str
    mode: Mode
    bundle: list[dict[str, Any]] | None = None
    """Multicast: the messages every recipient receives."""
    attributes: list[str] | None = None
    """Push: the profile attributes frozen per request (None: all of them)."""
    message_types: list[str]
    totals: Totals
    request_parts: list[str] = Field(default_factory=list)
    exclusion_parts: list[str] = Field(default_factory=list)


class Request(NamedTuple):
    number: int
    key: str
    to: list[str]
    profile_ids: list[str]
    attributes: dict[str, Any] | None
    """Push: what this recipient's messages are rendered from; None for a multicast (the
    manifest's bundle)."""

    def profile(self) -> Profile:
        """The profile a push is rendered for (only its frozen attributes)."""
        return Profile.model_construct(
            profile_id=self.profile_ids[0],
            line_user_id=self.to[0],
            attributes=dict(self.attributes or {}),
        )


class ExcludedProfile(NamedTuple):
    profile_id: str
    line_user_id: str | None
    reason: str


@dataclass(frozen=True)
class DispatchMark:
    at: float
    """Unix time, written before any request up to `upto` was first sent."""
    upto: int


@dataclass
class Decisions:
    """Operator decisions on requests whose outcome LINE can no longer tell."""

    resend: dict[int, tuple[int, float]]
    """request -> (epoch of its new key, unix time of the decision)."""
    abandoned: set[int]
    records: list[dict[str, Any]]


# --- the outbox ---------------------------------------------------------------------------------


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def _manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def exists(self) -> bool:
        return self._manifest_path.is_file()

    def manifest(self) -> Manifest | None:
        """The frozen campaign, or None when it was never (completely) frozen."""
        data = read_json_file(self._manifest_path)
        if data is None:
            return None
        try:
            return Manifest.model_validate(data)
        except ValueError:
            raise StoreCorrupt(
                f"{self._manifest_path} is not an outbox manifest; it was left untouched."
            ) from None

    def discard(self) -> None:
        """Forget a freeze (only ever before anything of it was sent)."""
        if self.directory.exists():
            shutil.rmtree(self.directory)

    def _read_part(self, name: str, key: str) -> list[Any]:
        data = read_json_file(self.directory / name)
        if data is None or not isinstance(data.get(key), list):
            raise StoreCorrupt(f"outbox part {self.directory / name} is missing or unreadable")
        items: list[Any] = data[key]
        return items

    def iter_requests(self, manifest: Manifest) -> Iterator[Request]:
        """Every request in order, one part in memory at a time."""
        for name in manifest.request_parts:
            yield from self.part_requests(name)

    def part_requests(self, name: str) -> list[Request]:
        return [
            Request(item[0], item[1], item[2], item[3], item[4])
            for item in self._read_part(name, "requests")
        ]

    @property
    def _freezing_path(self) -> Path:
        return self.directory / "freezing.json"

    def freezing_started(self) -> datetime | None:
        """When the (possibly unfinished) freeze began: the `frozen_at` a re-freeze must use."""
        data = read_json_file(self._freezing_path)
        try:
            return datetime.fromisoformat(data["frozen_at"]) if data else None
        except (KeyError, TypeError, ValueError):
            return None

    def iter_exclusion_parts(self, manifest: Manifest) -> Iterator[list[ExcludedProfile]]:
        for name in manifest.exclusion_parts:
            yield [ExcludedProfile(*item) for item in self._read_part(name, "excluded")]

    # --- dispatch marks ---------------------------------------------------------------------

    @property
    def _dispatch_path(self) -> Path:
        return self.directory / "dispatch.jsonl"

    def dispatch_marks(self) -> list[DispatchMark]:
        try:
            raw = self._dispatch_path.read_bytes()
        except FileNotFoundError:
            return []
        marks: list[DispatchMark] = []
        for line in raw.splitlines():
            try:
                item = orjson.loads(line)
                marks.append(DispatchMark(float(item["t"]), int(item["upto"])))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line torn by a crash: its requests were never sent
        return marks

    def mark_dispatch(self, upto: int, at: float) -> None:
        """Record, durably, that requests up to `upto` may be sent from `at` on."""
        fd = os.open(self._dispatch_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, orjson.dumps({"t": at, "upto": upto}) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- decisions --------------------------------------------------------------------------

    @property
    def _decisions_path(self) -> Path:
        return self.directory / "decisions.json"

    def decisions(self) -> Decisions:
        data = read_json_file(self._decisions_path) or {}
        records = list(data.get("records", []))
        resend: dict[int, tuple[int, float]] = {}
        abandoned: set[int] = set()
        for record in records:
            for index in record["indices"]:
                if record["resend"]:
                    resend[index] = (int(record["epoch"]), float(record["at"]))
                    abandoned.discard(index)
                else:
                    abandoned.add(index)
                    resend.pop(index, None)
        return Decisions(resend=resend, abandoned=abandoned, records=records)

    def record_decision(
        self, indices: Iterable[int], *, resend: bool, at: float, actor: str
    ) -> int:
        """Write an operator's decision before acting on it; returns the new key epoch."""
        current = self.decisions()
        epoch = 1 + max((int(r.get("epoch", 0)) for r in current.records), default=0)
        record = {
            "at": at,
            "actor": actor,
            "resend": resend,
            "epoch": epoch if resend else 0,
            "indices": sorted(indices),
        }
        payload = {"records": [*current.records, record]}
        atomic_write_bytes(self._decisions_path, orjson.dumps(payload))
        return epoch


def first_attempt_bound(marks: list[DispatchMark], index: int) -> float | None:
    """The earliest time request `index` can have been first sent; None if it never was."""
    uptos = [mark.upto for mark in marks]
    position = bisect.bisect_left(uptos, index)
    if position >= len(marks):
        return None
    return marks[position].at


def key_still_valid(first_attempt: float, now: float) -> bool:
    """Whether LINE surely still remembers a key first used at `first_attempt`."""
    return now - first_attempt < KEY_WINDOW_S - KEY_SAFETY_MARGIN_S


# --- freezing -----------------------------------------------------------------------------------


@dataclass
class _PartWriter:
    directory: Path
    prefix: str
    key: str
    limit: int
    names: list[str]
    items: list[Any]
    written: Callable[[str], None] | None = None

    def add(self, item: Any) -> None:
        self.items.append(item)
        if len(self.items) >= self._current_limit():
            self.flush()

    def _current_limit(self) -> int:
        """A 25th, then a fifth of `limit`, then `limit`: a delivery that follows the freeze
        starts after a few requests instead of a whole part."""
        growth: int = 5 ** len(self.names)
        return min(self.limit, max(1, self.limit // 25 * growth))

    def flush(self) -> None:
        if not self.items:
            return
        name = f"{self.prefix}-{len(self.names):05d}.json"
        atomic_write_bytes(self.directory / name, orjson.dumps({self.key: self.items}))
        self.names.append(name)
        self.items = []
        if self.written is not None:
            self.written(name)


def freeze(
    outbox: Outbox,
    *,
    campaign_id: str,
    spec: CampaignSpec,
    account: SenderAccount,
    aggregation_unit: str,
    batches: Iterable[ResolvedBatch],
    personalised: bool,
    render: Render,
    frozen_at: datetime,
    attributes: Iterable[str] | None = None,
    multicast_size: int = MULTICAST_MAX,
    part_written: Callable[[str], None] | None = None,
) -> Manifest:
    """Write the resolved audience (`core.audience.resolve_batches`) as the outbox; the manifest
    is written last.

    `render` renders the shared bundle of a multicast (for the blank profile); a push keeps
    the `attributes` its templates read (all when None) to be rendered at send time.

    `part_written` is told each requests part's name once the part is on disk (what a
    `LiveFreeze` sends from). Whatever an earlier freeze left is discarded first: call this only
    when nothing of it can have been sent (else `refreeze_verified`).
    """
    if not 1 <= multicast_size <= MULTICAST_MAX:
        raise ValueError(f"multicast_size must be 1..{MULTICAST_MAX}")
    outbox.discard()
    make_private_dirs(outbox.directory)
    directory = outbox.directory
    atomic_write_bytes(outbox._freezing_path, orjson.dumps({"frozen_at": frozen_at.isoformat()}))
    mode: Mode = "push" if personalised else "multicast"
    requests = _PartWriter(
        directory,
        "requests",
        "requests",
        PUSH_PART_REQUESTS if personalised else MULTICAST_PART_REQUESTS,
        [],
        [],
        part_written,
    )
    excluded = _PartWriter(directory, "excluded", "excluded", EXCLUSION_PART_ROWS, [], [])
    counter = FunnelCounter()
    bundle = None if personalised else render(None)
    digest = bundle_digest(bundle) if bundle is not None else spec_digest(spec)
    wanted = sorted(set(attributes)) if attributes is not None else None
    total = 0
    pending_to: list[str] = []
    pending_ids: list[str] = []
    index = 0
    for batch in batches:
        total += batch.rows
        for row, exclusion in batch.excluded:
            counter.exclude(row, exclusion)
            excluded.add([row.profile_id, row.line_user_id, exclusion.value])
        if personalised:
            values = batch.attributes or [{}] * len(batch.user_ids)
            for user_id, profile_id, row_values in zip(
                batch.user_ids, batch.profile_ids, values, strict=True
            ):
                kept = (
                    dict(row_values)
                    if wanted is None
                    else {name: row_values[name] for name in wanted if name in row_values}
                )
                key = request_key(campaign_id, index, (user_id,), inputs_digest(digest, kept))
                requests.add([index, key, [user_id], [profile_id], kept])
                index += 1
            continue
        pending_to.extend(batch.user_ids)
        pending_ids.extend(batch.profile_ids)
        start = 0
        while len(pending_to) - start >= multicast_size:
            to = pending_to[start : start + multicast_size]
            ids = pending_ids[start : start + multicast_size]
            requests.add([index, request_key(campaign_id, index, to, digest), to, ids, None])
            index += 1
            start += multicast_size
        del pending_to[:start], pending_ids[:start]
    if pending_to:
        key = request_key(campaign_id, index, pending_to, digest)
        requests.add([index, key, pending_to, pending_ids, None])
        index += 1
    requests.flush()
    excluded.flush()
    counter.counts_total = total
    funnel = counter.funnel()
    manifest = Manifest(
        campaign_id=campaign_id,
        frozen_at=frozen_at,
        spec=spec,
        account=account,
        aggregation_unit=aggregation_unit,
        mode=mode,
        bundle=bundle,
        attributes=wanted if personalised else None,
        message_types=[message.type for message in spec.messages],
        totals=Totals(
            segment=funnel.segment,
            with_id=funnel.with_id,
            valid=funnel.valid,
            unique=funnel.unique,
            requests=index,
        ),
        request_parts=requests.names,
        exclusion_parts=excluded.names,
    )
    atomic_write_bytes(outbox._manifest_path, orjson.dumps(manifest.model_dump(mode="json")))
    return manifest


def refreeze_verified(outbox: Outbox, run: Callable[[Outbox], Manifest]) -> Manifest | None:
    """Finish a freeze that was interrupted after some of its requests may have been sent.

    `run(target)` freezes the audience again into a fresh directory beside the outbox. When
    every requests part already in the outbox is byte for byte the same in the new freeze (the
    same recipients, numbers and keys), the new parts and the manifest replace it, dispatch marks
    and decisions untouched, and the manifest is returned. Otherwise nothing changes and the
    answer is None: the audience is not the one whose requests went out.
    """
    target = Outbox(outbox.directory.with_name(outbox.directory.name + ".refreeze"))
    try:
        manifest = run(target)
        for old in sorted(outbox.directory.glob("requests-*.json")):
            new = target.directory / old.name
            if not new.is_file() or new.read_bytes() != old.read_bytes():
                return None
        for path in sorted(target.directory.iterdir()):
            if path.name != target._manifest_path.name:
                os.replace(path, outbox.directory / path.name)
        os.replace(target._manifest_path, outbox._manifest_path)
        fsync_dir(outbox.directory)
        return manifest
    finally:
        shutil.rmtree(target.directory, ignore_errors=True)


class LiveFreeze:
    """A freeze still being written by its own process; a delivery follows it part by part.

    `provisional` is the manifest minus what only the end of the audience tells (totals, part
    names); `estimate` is at most the number of profiles (for progress until then).

    On Linux the freeze runs in a forked child (`_freeze_in_child`): reading the CSV, hashing and
    writing parts is about half the CPU of a large multicast campaign, and in a thread it
    shared one interpreter lock with the sending. The child writes the same files the thread
    would, and tells the parent each part's name, then the manifest or the error, over a pipe.
    Elsewhere (no safe fork) it runs in a thread of this process.
    """

    def __init__(self, provisional: Manifest, estimate: int) -> None:
        self.provisional = provisional
        self.estimate = estimate
        self._parts: list[str] = []
        self._manifest: Manifest | None = None
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._go_on = threading.Event()
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._child: _FreezeChild | None = None

    def start(self, run: Callable[[Callable[[str], None]], Manifest]) -> None:
        """Run `run(part_written)` (a `freeze`) in a child process, or a thread where fork is
        not safe. Neither is a daemon: a process that ends normally finishes the outbox first."""
        if forking.fork_is_safe():
            self._child = _FreezeChild(run, self._part_written_remotely, self._ended)
            return

        def target() -> None:
            try:
                manifest = run(self._part_written)
            except BaseException as exc:  # handed to whoever waits for the next part
                self._ended(exc)
                return
            self._ended(manifest)

        self._thread = threading.Thread(target=target, name="lcc-freeze", daemon=False)
        self._thread.start()

    def _ended(self, outcome: Manifest | BaseException) -> None:
        with self._changed:
            if isinstance(outcome, Manifest):
                self._manifest = outcome
            else:
                self._error = outcome
            self._changed.notify_all()

    def _part_written_remotely(self, name: str) -> None:
        with self._changed:
            self._parts.append(name)
            self._changed.notify_all()

    def _part_written(self, name: str) -> None:
        self._part_written_remotely(name)
        # after its first part the freeze waits for the launch to finish: both hold the GIL
        # for most of their time, and the launch's own writes took ten times longer beside it
        self._go_on.wait()
        if self._abandoned:
            raise _Abandoned

    def go_on(self) -> None:
        """The launch is done: freeze the rest."""
        self._go_on.set()
        if self._child is not None:
            self._child.tell(_GO_ON)

    def abandon(self) -> None:
        """The launch failed after the first part: end the freeze (nothing was sent)."""
        self._abandoned = True
        self._go_on.set()
        if self._child is not None:
            self._child.tell(_ABANDON)
            self._child.join()
        if self._thread is not None:
            self._thread.join()

    @property
    def finished(self) -> bool:
        return self._manifest is not None or self._error is not None

    @property
    def manifest(self) -> Manifest | None:
        """The final manifest, once the freeze has ended well."""
        return self._manifest

    def wait(self, index: int) -> str | Manifest | BaseException:
        """Blocks until requests part `index` is written (its name), the freeze has ended with
        fewer parts (the manifest), or it failed (the error)."""
        with self._changed:
            while True:
                if index < len(self._parts):
                    return self._parts[index]
                if self._error is not None:
                    return self._error
                if self._manifest is not None:
                    return self._manifest
                self._changed.wait()


_GO_ON = "go on"
_ABANDON = "abandon"

FREEZE_STALL_S = 120.0
"""A freeze's process that says nothing for this long, unless it is waiting for the launch's
word, is stuck (stopped, a hung file system, a lock held at the fork); it is killed, and the
delivery suspends the campaign as for a killed one. A part of pushes or multicasts is written
in well under a second."""


class _FreezeChild:
    """A freeze in a forked child and the parent's thread that reads what it says.

    Messages, child to parent: `("part", name)` once each part is on disk, then `("manifest",
    manifest)` or `("error", exception)`. Parent to child: `_GO_ON` once after the first part
    (the launch is recorded), or `_ABANDON`. A child that ends without a last word (killed, out of
    memory) is an error for the delivery, which suspends the campaign; its resume freezes again
    and checks every part already written. So is a child silent for `FREEZE_STALL_S`, which is
    killed first.
    """

    def __init__(
        self,
        run: Callable[[Callable[[str], None]], Manifest],
        part_written: Callable[[str], None],
        ended: Callable[[Manifest | BaseException], None],
    ) -> None:
        self._send_lock = threading.Lock()
        self._silent_s = 0.0
        """How long the child has said nothing since its last word or ours."""
        self._awaiting_word = False
        """After its first part the child waits for `_GO_ON`: its silence is the launch's."""
        # not a daemon, like the thread it replaces: a process that ends normally waits for it
        self._process, self._connection = forking.start_child(
            _freeze_in_child, (run,), name="lcc-freeze", daemon=False
        )
        self._reader = threading.Thread(
            target=self._read, args=(part_written, ended), name="lcc-freeze-pipe", daemon=True
        )
        self._reader.start()

    def _read(
        self,
        part_written: Callable[[str], None],
        ended: Callable[[Manifest | BaseException], None],
    ) -> None:
        parts = 0
        try:
            while True:
                silent = forking.poll_slice(
                    self._connection, forking.poll_slice_for(FREEZE_STALL_S)
                )
                if silent is not None:
                    if not self._awaiting_word:
                        self._silent_s += silent
                    if self._silent_s < FREEZE_STALL_S:
                        continue
                    self._process.kill()
                    self._process.join()
                    ended(
                        FreezeStopped(
                            "the audience's freeze made no progress for "
                            f"{FREEZE_STALL_S:g} s and its process was stopped"
                        )
                    )
                    return
                kind, value = self._connection.recv()
                self._silent_s = 0.0
                if kind == "part":
                    parts += 1
                    self._awaiting_word = parts == 1
                    part_written(value)
                    continue
                ended(value)
                return
        except (EOFError, OSError):
            self._process.join()
            ended(
                FreezeStopped(
                    "the audience's freeze stopped before the end "
                    f"(its process exited with code {self._process.exitcode})"
                )
            )
        finally:
            self._connection.close()
            self._process.join()

    def tell(self, word: str) -> None:
        self._silent_s = 0.0
        self._awaiting_word = False
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            self._connection.send(word)

    def join(self) -> None:
        self._reader.join()


class FreezeStopped(LccError):
    """The freeze's process ended without saying how (killed, out of memory), or was stuck and
    was killed."""


def _freeze_in_child(
    run: Callable[[Callable[[str], None]], Manifest], connection: Connection
) -> int:
    told_to_go_on = False

    def part_written(name: str) -> None:
        nonlocal told_to_go_on
        connection.send(("part", name))
        if not told_to_go_on:
            if connection.recv() == _ABANDON:
                raise _Abandoned
            told_to_go_on = True
        if forking.parent_gone():
            raise _Abandoned  # a resume will freeze again

    try:
        manifest = run(part_written)
        connection.send(("manifest", manifest))
    except _Abandoned:
        pass
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            connection.send(("error", forking.portable(exc)))
        return 1
    finally:
        connection.close()
    return 0


class _Abandoned(Exception):
    """Ends the freeze of a launch that failed."""


def exclusion_part_name(number: int) -> str:
    """The delivery-log part holding the outbox's exclusion part `number`.

    The name is fixed, so writing it twice (a crash in between) replaces it with the same rows.
    """
    return f"part-{0:020d}-excluded-{number:05d}.json"
