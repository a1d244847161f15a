"""Audience resolution: a segment's profiles, who can be reached, and why the others cannot.

Segments can hold a million profiles (`profiles_file`, a CSV). Resolution streams them: rows are
read one at a time, classified, and handed on; nothing keeps the audience as objects. The one
thing that must be remembered is which LINE user ids were already seen (duplicates are sent
once), and that set holds each id as a 128-bit integer instead of a 33-character string.
"""

from __future__ import annotations

import csv
import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from core.csv_errors import unreadable_csv
from core.errors import InputError
from core.models import AttributeValue, Profile, Segment

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
SAMPLE_SIZE = 20
"""Excluded profiles kept as examples for the console's reach funnel."""


class Exclusion(enum.StrEnum):
    MISSING = "missing_recipient_id"
    INVALID = "invalid_recipient_id"
    DUPLICATE = "duplicate_recipient_id"


class AudienceRow(NamedTuple):
    """One profile as resolution sees it: cheaper than a `Profile` for a million rows."""

    profile_id: str
    line_user_id: str | None
    attributes: Mapping[str, AttributeValue]

    def profile(self) -> Profile:
        """The full model, for rendering Liquid (built without re-validating the values)."""
        return Profile.model_construct(
            profile_id=self.profile_id,
            line_user_id=self.line_user_id,
            attributes=dict(self.attributes),
        )


@dataclass(frozen=True)
class ExcludedSample:
    profile_id: str
    line_user_id: str | None
    reason: Exclusion


@dataclass(frozen=True)
class Funnel:
    """segment -> with a LINE user id -> a valid one -> unique: known before launch."""

    segment: int = 0
    with_id: int = 0
    valid: int = 0
    unique: int = 0
    samples: tuple[ExcludedSample, ...] = field(default=(), compare=False)
    """The first excluded profiles, each with why (at most `SAMPLE_SIZE`)."""

    @property
    def excluded(self) -> int:
        return self.segment - self.unique

    @property
    def missing(self) -> int:
        return self.segment - self.with_id

    @property
    def invalid(self) -> int:
        return self.with_id - self.valid

    @property
    def duplicate(self) -> int:
        return self.valid - self.unique


# --- reading --------------------------------------------------------------------------------


def iter_rows(segment: Segment, *, attributes: bool = True) -> Iterator[AudienceRow]:
    """The segment's profiles in order; `attributes=False` skips building attribute maps."""
    if segment.profiles is not None:
        empty: Mapping[str, AttributeValue] = {}
        for profile in segment.profiles:
            yield AudienceRow(
                profile.profile_id,
                profile.line_user_id,
                profile.attributes if attributes else empty,
            )
    elif segment.profiles_file is not None:
        yield from read_rows_csv(Path(segment.profiles_file), attributes=attributes)


def iter_profiles(segment: Segment) -> Iterator[Profile]:
    if segment.profiles is not None:
        yield from segment.profiles
    else:
        for row in iter_rows(segment):
            yield row.profile()


def read_profiles_csv(path: Path) -> Iterator[Profile]:
    """Stream profiles from a CSV with columns profile_id, line_user_id, then attributes."""
    for row in read_rows_csv(path):
        yield row.profile()


def _not_utf8(path: Path) -> InputError:
    """Where a file stops being UTF-8: the text is decoded a buffer at a time, so the reader
    only knows the failure is somewhere after the rows it gave. Read again as bytes (this path
    only), line by line: the line, the column and the bytes an operator has to look for."""
    source = str(path)
    try:
        with path.open("rb") as raw:
            for number, line in enumerate(raw, start=1):
                codec = "utf-8-sig" if number == 1 else "utf-8"
                try:
                    line.decode(codec)
                except UnicodeDecodeError as exc:
                    bad = line[exc.start : exc.end]
                    column = len(line[: exc.start].decode(codec)) + 1
                    return InputError(
                        f"not UTF-8 text: byte(s) {bad.hex(' ')} at column {column} (save the "
                        "file as UTF-8)",
                        source=source,
                        location=f"line {number}",
                    )
    except OSError as exc:
        return InputError(f"cannot read: {exc.strerror}", source=source)
    return InputError("not UTF-8 text (save the file as UTF-8)", source=source)


def _open_csv(path: Path) -> tuple[TextIO, Any, list[str], int]:
    """The open file, its reader past a checked header, the attribute names and the width."""
    source = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    # strict: a stray quote must not turn the rest of the file into one value, silently
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise InputError("empty file, expected a header row", source=source) from None
    except UnicodeDecodeError:
        handle.close()
        raise _not_utf8(path) from None
    except csv.Error as exc:
        handle.close()
        raise InputError(f"unreadable header: {exc}", source=source, location="line 1") from None
    header = [name.strip() for name in header]
    if header[:2] != ["profile_id", "line_user_id"]:
        handle.close()
        raise InputError(
            "the first two columns must be profile_id, line_user_id "
            f"(found {', '.join(header[:2]) or 'nothing'})",
            source=source,
            location="line 1",
        )
    return handle, reader, header[2:], len(header)


def read_rows_csv(path: Path, *, attributes: bool = True) -> Iterator[AudienceRow]:
    """Stream rows from a CSV with columns profile_id, line_user_id, then attribute columns.

    A LINE user id is taken without surrounding spaces (spreadsheet exports add them); an empty
    cell means the profile has none.
    """
    for row, _ in _csv_rows(path, attributes=attributes, classify=False):
        yield row


def _bad_row(row: list[str], width: int, source: str, line: int) -> InputError:
    """What is wrong with a profiles-file row that is not empty but cannot be a profile."""
    where = f"line {line}"
    if len(row) != width:
        return InputError(
            f"{len(row)} columns where the header has {width}", source=source, location=where
        )
    return InputError("profile_id is empty", source=source, location=where)


def _csv_rows(
    path: Path, *, attributes: bool, classify: bool
) -> Iterator[tuple[AudienceRow, Exclusion | None]]:
    """The CSV's rows, each classified when `classify` (one loop: a million rows a second or
    two instead of several stacked generators)."""
    source = str(path)
    handle, reader, names, width = _open_csv(path)
    empty: Mapping[str, AttributeValue] = {}
    keep = attributes and bool(names)
    seen: set[int] = set()
    remember = seen.add
    match = LINE_USER_ID.match
    make = AudienceRow._make
    missing, invalid, duplicate = Exclusion.MISSING, Exclusion.INVALID, Exclusion.DUPLICATE
    with handle:
        try:
            for row in reader:
                if len(row) != width or not row[0]:
                    if not row:
                        continue
                    raise _bad_row(row, width, source, reader.line_num)
                user_id = row[1]
                if user_id and (user_id[0].isspace() or user_id[-1].isspace()):
                    user_id = user_id.strip()
                # the width was checked above; zip(strict=True) doubled this line's cost
                values = dict(zip(names, row[2:], strict=False)) if keep else empty
                why: Exclusion | None = None
                if not user_id:
                    user_id = None
                    why = missing
                elif classify:
                    if match(user_id) is None:
                        why = invalid
                    else:
                        compact = int(user_id[1:], 16)
                        if compact in seen:
                            why = duplicate
                        else:
                            remember(compact)
                yield make((row[0], user_id, values)), why
        except csv.Error as exc:
            raise unreadable_csv(path, exc, reader.line_num) from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


@dataclass
class ResolvedBatch:
    """A slice of a resolved audience: the reachable profiles in order, and the excluded ones.

    Reachable profiles are parallel lists (ids, profile ids, attribute maps when asked for), so
    a consumer cuts them into requests with list operations instead of a Python step per row.
    """

    user_ids: list[str] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)
    attributes: list[Mapping[str, AttributeValue]] | None = None
    excluded: list[tuple[AudienceRow, Exclusion]] = field(default_factory=list)
    rows: int = 0


def resolve_batches(
    segment: Segment, *, attributes: bool = True, size: int = 5000
) -> Iterator[ResolvedBatch]:
    """The segment resolved (as `resolved_rows`), `size` rows at a time.

    For a profiles file the whole of it (reading, checking, classifying) is one tight loop:
    the launch path for a million rows.
    """
    if segment.profiles_file is None:
        batch = ResolvedBatch(attributes=[] if attributes else None)
        for row, why in resolve(iter_rows(segment, attributes=attributes)):
            _add(batch, row, why)
            if batch.rows >= size:
                yield batch
                batch = ResolvedBatch(attributes=[] if attributes else None)
        if batch.rows:
            yield batch
        return
    yield from _csv_batches(Path(segment.profiles_file), attributes=attributes, size=size)


def _add(batch: ResolvedBatch, row: AudienceRow, why: Exclusion | None) -> None:
    batch.rows += 1
    if why is not None:
        batch.excluded.append((row, why))
        return
    assert row.line_user_id is not None
    batch.user_ids.append(row.line_user_id)
    batch.profile_ids.append(row.profile_id)
    if batch.attributes is not None:
        batch.attributes.append(row.attributes)


def _csv_batches(path: Path, *, attributes: bool, size: int) -> Iterator[ResolvedBatch]:
    source = str(path)
    handle, reader, names, width = _open_csv(path)
    keep = attributes and bool(names)
    empty: Mapping[str, AttributeValue] = {}
    seen: set[int] = set()
    remember = seen.add
    match = LINE_USER_ID.match
    make = AudienceRow._make
    missing, invalid, duplicate = Exclusion.MISSING, Exclusion.INVALID, Exclusion.DUPLICATE

    def fresh() -> ResolvedBatch:
        return ResolvedBatch(attributes=[] if attributes else None)

    batch = fresh()
    ids, pids, excluded, values = (
        batch.user_ids,
        batch.profile_ids,
        batch.excluded,
        batch.attributes,
    )
    count = 0
    with handle:
        try:
            for row in reader:
                if len(row) != width or not row[0]:
                    if not row:
                        continue
                    raise _bad_row(row, width, source, reader.line_num)
                count += 1
                user_id = row[1]
                if user_id and (user_id[0].isspace() or user_id[-1].isspace()):
                    user_id = user_id.strip()
                if not user_id:
                    why: Exclusion | None = missing
                elif match(user_id) is None:
                    why = invalid
                else:
                    compact = int(user_id[1:], 16)
                    if compact in seen:
                        why = duplicate
                    else:
                        remember(compact)
                        why = None
                if why is None:
                    ids.append(user_id)
                    pids.append(row[0])
                    if values is not None:  # the width was checked above: zip needs no strict
                        values.append(dict(zip(names, row[2:], strict=False)) if keep else empty)
                else:
                    attrs = dict(zip(names, row[2:], strict=False)) if keep else empty
                    excluded.append((make((row[0], user_id or None, attrs)), why))
                if count >= size:
                    batch.rows = count
                    yield batch
                    batch = fresh()
                    ids, pids, excluded = batch.user_ids, batch.profile_ids, batch.excluded
                    values = batch.attributes
                    count = 0
        except csv.Error as exc:
            raise unreadable_csv(path, exc, reader.line_num) from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
    if count:
        batch.rows = count
        yield batch


def resolved_rows(
    segment: Segment, *, attributes: bool = True
) -> Iterator[tuple[AudienceRow, Exclusion | None]]:
    """`resolve(iter_rows(segment))`, in one loop for a profiles file."""
    if segment.profiles_file is not None:
        yield from _csv_rows(Path(segment.profiles_file), attributes=attributes, classify=True)
    else:
        yield from resolve(iter_rows(segment, attributes=attributes))


# --- classifying ----------------------------------------------------------------------------


def exclusion_of(line_user_id: str | None, seen: set[int]) -> Exclusion | None:
    """Why this id cannot be sent to (adding it to `seen` when it can), or None."""
    if not line_user_id:
        return Exclusion.MISSING
    if LINE_USER_ID.match(line_user_id) is None:
        return Exclusion.INVALID
    compact = int(line_user_id[1:], 16)
    if compact in seen:
        return Exclusion.DUPLICATE
    seen.add(compact)
    return None


def resolve(rows: Iterable[AudienceRow]) -> Iterator[tuple[AudienceRow, Exclusion | None]]:
    """Each row with the reason it cannot be sent to, or None when it can.

    The first profile holding a LINE user id receives the campaign; later ones with the same id
    are `duplicate_recipient_id` (one person, one delivery).
    """
    seen: set[int] = set()
    for row in rows:
        yield row, exclusion_of(row.line_user_id, seen)


def classify(profiles: Iterable[Profile]) -> Iterator[tuple[Profile, Exclusion | None]]:
    """Each profile with the reason it cannot be sent to, or None when it can."""
    seen: set[int] = set()
    for profile in profiles:
        yield profile, exclusion_of(profile.line_user_id, seen)


class FunnelCounter:
    """Counts a stream of classified rows into a `Funnel` (shared by reach and the outbox)."""

    __slots__ = ("counts", "counts_total", "sample_size", "samples")

    def __init__(self, sample_size: int = SAMPLE_SIZE) -> None:
        self.counts = dict.fromkeys(Exclusion, 0)
        self.samples: list[ExcludedSample] = []
        self.sample_size = sample_size
        self.counts_total = 0

    def add(self, row: AudienceRow, exclusion: Exclusion | None) -> None:
        self.counts_total += 1
        if exclusion is not None:
            self.exclude(row, exclusion)

    def exclude(self, row: AudienceRow, exclusion: Exclusion) -> None:
        """Count an excluded row (its caller counts the total)."""
        self.counts[exclusion] += 1
        if len(self.samples) < self.sample_size:
            self.samples.append(ExcludedSample(row.profile_id, row.line_user_id, exclusion))

    def funnel(self) -> Funnel:
        total = self.counts_total
        with_id = total - self.counts[Exclusion.MISSING]
        valid = with_id - self.counts[Exclusion.INVALID]
        return Funnel(
            segment=total,
            with_id=with_id,
            valid=valid,
            unique=valid - self.counts[Exclusion.DUPLICATE],
            samples=tuple(self.samples),
        )


def funnel(segment: Segment, *, sample_size: int = SAMPLE_SIZE) -> Funnel:
    """The reach funnel of a segment, streamed (attribute columns are not even split out)."""
    counter = FunnelCounter(sample_size)
    total = 0
    for batch in resolve_batches(segment, attributes=False):
        total += batch.rows
        for row, exclusion in batch.excluded:
            counter.exclude(row, exclusion)
    counter.counts_total = total
    return counter.funnel()
