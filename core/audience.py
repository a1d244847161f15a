"""Audience resolution: a segment's profiles, who can be reached, and why the others cannot."""

from __future__ import annotations

import csv
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.models import Profile, Segment

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")


class Exclusion(enum.StrEnum):
    MISSING = "missing_recipient_id"
    INVALID = "invalid_recipient_id"
    DUPLICATE = "duplicate_recipient_id"


@dataclass(frozen=True)
class Funnel:
    """segment -> with a LINE user id -> a valid one -> unique: known before launch."""

    segment: int = 0
    with_id: int = 0
    valid: int = 0
    unique: int = 0

    @property
    def excluded(self) -> int:
        return self.segment - self.unique


def iter_profiles(segment: Segment) -> Iterator[Profile]:
    if segment.profiles is not None:
        yield from segment.profiles
    elif segment.profiles_file is not None:
        yield from read_profiles_csv(Path(segment.profiles_file))


def read_profiles_csv(path: Path) -> Iterator[Profile]:
    """Stream profiles from a CSV with columns profile_id, line_user_id, then attributes."""
    source = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file, expected a header row", source=source) from None
        if header[:2] != ["profile_id", "line_user_id"]:
            raise InputError(
                "the first two columns must be profile_id, line_user_id "
                f"(found {', '.join(header[:2]) or 'nothing'})",
                source=source,
                location="line 1",
            )
        attributes = header[2:]
        width = len(header)
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    raise InputError(
                        f"{len(row)} columns where the header has {width}",
                        source=source,
                        location=f"line {reader.line_num}",
                    )
                yield Profile(
                    profile_id=row[0],
                    line_user_id=row[1] or None,
                    attributes=dict(zip(attributes, row[2:], strict=True)),
                )
        except csv.Error as exc:
            raise InputError(str(exc), source=source, location=f"line {reader.line_num}") from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", source=source) from None


def classify(profiles: Iterator[Profile]) -> Iterator[tuple[Profile, Exclusion | None]]:
    """Each profile with the reason it cannot be sent to, or None when it can."""
    seen: set[str] = set()
    for profile in profiles:
        user_id = profile.line_user_id
        if not user_id:
            yield profile, Exclusion.MISSING
        elif not LINE_USER_ID.match(user_id):
            yield profile, Exclusion.INVALID
        elif user_id in seen:
            yield profile, Exclusion.DUPLICATE
        else:
            seen.add(user_id)
            yield profile, None


def funnel(segment: Segment) -> Funnel:
    counts = {"segment": 0, "with_id": 0, "valid": 0, "unique": 0}
    for _profile, exclusion in classify(iter_profiles(segment)):
        counts["segment"] += 1
        if exclusion is Exclusion.MISSING:
            continue
        counts["with_id"] += 1
        if exclusion is Exclusion.INVALID:
            continue
        counts["valid"] += 1
        if exclusion is None:
            counts["unique"] += 1
    return Funnel(**counts)
