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

LINE remembers a retry key for 24 hours after the first attempt. Before a request is first
dispatched the engine writes a dispatch mark (a time and the highest request number it covers), a
lower bound of the first attempt. A pending request whose key may have expired is not re-sent
blindly: it is reported unknown and an operator decides (`decisions.json`).

Layout of `outbox/<campaign>/`::

    manifest.json        the frozen campaign; written last, so its presence means complete
    requests-NNNNN.json  the requests, in order
    excluded-NNNNN.json  profiles that cannot be sent to, with why
    dispatch.jsonl       dispatch marks (append-only)
    decisions.json       operator decisions on requests of unknown outcome
"""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, Field

from core.audience import FunnelCounter, ResolvedBatch
from core.errors import StoreCorrupt
from core.models import CampaignSpec, Profile, SenderAccount
from core.store import atomic_write_bytes, make_private_dirs, read_json_file

OUTBOX_VERSION = 1
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c2b0e-8a4e-4d43-9a51-2f0d3c7b9e11")
MULTICAST_MAX = 500
KEY_WINDOW_S = 24 * 3600.0
"""How long LINE remembers a retry key after the first attempt."""
KEY_SAFETY_MARGIN_S = 3600.0
"""A pending request first attempted more than 23 hours ago is not re-sent without a decision."""

PUSH_PART_REQUESTS = 5_000
MULTICAST_PART_REQUESTS = 100
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
            for item in self._read_part(name, "requests"):
                yield Request(item[0], item[1], item[2], item[3], item[4])

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

    def add(self, item: Any) -> None:
        self.items.append(item)
        if len(self.items) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        name = f"{self.prefix}-{len(self.names):05d}.json"
        atomic_write_bytes(self.directory / name, orjson.dumps({self.key: self.items}))
        self.names.append(name)
        self.items = []


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
) -> Manifest:
    """Write the resolved audience (`core.audience.resolve_batches`) as the outbox; the manifest
    is written last.

    `render` renders the shared bundle of a multicast (for the blank profile); a push keeps
    the `attributes` its templates read (all when None) to be rendered at send time.

    Whatever an earlier, interrupted freeze left is discarded first (nothing of it was sent:
    delivery only reads a complete outbox).
    """
    if not 1 <= multicast_size <= MULTICAST_MAX:
        raise ValueError(f"multicast_size must be 1..{MULTICAST_MAX}")
    outbox.discard()
    make_private_dirs(outbox.directory)
    directory = outbox.directory
    mode: Mode = "push" if personalised else "multicast"
    requests = _PartWriter(
        directory,
        "requests",
        "requests",
        PUSH_PART_REQUESTS if personalised else MULTICAST_PART_REQUESTS,
        [],
        [],
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


def exclusion_part_name(number: int) -> str:
    """The delivery-log part holding the outbox's exclusion part `number`.

    The name is fixed, so writing it twice (a crash in between) replaces it with the same rows.
    """
    return f"part-{0:020d}-excluded-{number:05d}.json"
