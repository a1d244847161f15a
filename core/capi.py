"""Conversion events for the LINE Conversion API: columns, row rules, hashing, batching.

An export reads a CSV or JSONL file whose columns are the seed's column names (plus the optional
`custom` columns and `test_flag`), checks every row by LINE's rules, hashes email and phone the
way LINE expects, and groups the events into request bodies; `export_file` sends them with
`core.capi_client` and says what happened (contract section 7).

Why it is built this way:

* A file of a million rows is never held in memory: rows stream through one `EventBuilder`,
  and only the current batch (already serialised) is kept. Invalid-row reports spill to a
  temporary file past a few thousand.
* The per-row path is plain code over precompiled regexes and `hashlib.sha256` (no pydantic
  per row), compiled once per CSV header (`EventBuilder.row_function`), because it runs a
  million times (bench/results/capi.md); `phonenumbers.parse` costs ~50 microseconds, so
  phone numbers in common shapes are normalised by a fast path that reproduces
  `phonenumbers`' own validity rules from its metadata, and fall back to `phonenumbers.parse`.
* The sandbox validates what it receives with the same rules (`check_wire_event`), so a batch
  that passes here is a batch the sandbox accepts, and the other way round.
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import hashlib
import ipaddress
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson
import phonenumbers
from phonenumbers import PhoneMetadata

from core.csv_errors import unreadable_csv
from core.errors import InputError

# --- columns ----------------------------------------------------------------------------------

EVENT_COLUMNS: Final = (
    "deduplication_key",
    "event_type",
    "source_type",
    "event_timestamp",
    "event_name",
    "test_flag",
)
USER_COLUMNS: Final = (
    "line_uid",
    "click_id",
    "phone",
    "email",
    "ifa",
    "browser_id",
    "external_id",
)
WEB_COLUMNS: Final = ("url", "referrer", "title", "user_agent", "ip_address")
CUSTOM_COLUMNS: Final = ("value", "currency", "quantity", "item_ids", "keywords", "category")

SEED_COLUMNS: Final = (
    "referrer",
    "ip_address",
    "title",
    "user_agent",
    "url",
    "deduplication_key",
    "event_type",
    "event_name",
    "source_type",
    "event_timestamp",
    "browser_id",
    "click_id",
    "phone",
    "ifa",
    "external_id",
    "line_uid",
    "email",
)
"""The seed's seventeen columns, in the seed's order (contract section 7)."""

ALL_COLUMNS: Final = EVENT_COLUMNS + USER_COLUMNS + WEB_COLUMNS + CUSTOM_COLUMNS
REQUIRED_COLUMNS: Final = ("deduplication_key", "event_type", "source_type", "event_timestamp")
MATCHING_COLUMNS: Final = USER_COLUMNS
"""A row must carry at least one of these, or LINE cannot attribute the event to anyone."""

GROUPS: Final = ("event", "user", "web", "custom")
_GROUP_INDEX: Final[dict[str, int]] = {
    **dict.fromkeys(EVENT_COLUMNS, 0),
    **dict.fromkeys(USER_COLUMNS, 1),
    **dict.fromkeys(WEB_COLUMNS, 2),
    **dict.fromkeys(CUSTOM_COLUMNS, 3),
}
GROUP_OF: Final[dict[str, str]] = {column: GROUPS[i] for column, i in _GROUP_INDEX.items()}

_CANONICAL: Final[dict[str, int]] = {column: i for i, column in enumerate(ALL_COLUMNS)}
"""Keys go into LINE's JSON in this order: event, user, web, custom, each as listed above."""


def canonical(columns: Sequence[str]) -> list[str]:
    return sorted(columns, key=_CANONICAL.__getitem__)


ROW_COLUMN: Final = "(row)"
"""The `column` of a problem that concerns the whole row (bad JSON, wrong number of values)."""
USER_COLUMN: Final = "user"
"""The `column` of the problem 'no user matching field'."""

MAX_EVENTS_PER_REQUEST: Final = 100_000
MAX_BODY_BYTES: Final = 300_000_000
"""LINE caps a request at 300 MB; the smaller reading (10^6-byte megabytes) is the safe one."""
WINDOW_BEFORE: Final = timedelta(days=90)
WINDOW_AFTER: Final = timedelta(hours=24)
INT32_MAX: Final = 2_147_483_647

# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    option: str
    low: int
    high: int
    default: int


BOUNDS: Final[dict[str, Bound]] = {
    "batch_size": Bound("--batch-size", 1000, 100_000, 1000),
    "max_retry": Bound("--max-retry", 1, 10, 8),
    "initial_retry_wait": Bound("--initial-retry-wait", 1, 30, 15),
    "max_retry_wait": Bound("--max-retry-wait", 100, 7200, 3600),
    "connection_timeout": Bound("--connection-timeout", 10, 600, 300),
}
"""The seed's bounds (Treasure Data's LINE Conversion export), inclusive."""

_TAG_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CHANNEL_ID = re.compile(r"[0-9]{1,32}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class ExportOptions:
    """Everything an export needs besides the file; the token itself is never here."""

    tag_id: str
    token_env: str | None = None
    channel_id: str | None = None
    batch_size: int = 1000
    ignore_invalid_records: bool = True
    max_retry: int = 8
    initial_retry_wait: int = 15
    max_retry_wait: int = 3600
    connection_timeout: int = 300
    phone_region: str = "JP"

    def check(self, *, sandbox: bool, need_token: bool = True) -> None:
        """Refuse options outside the seed's bounds, naming the option and the bound."""
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"must be a whole number, got {value!r}", source=bound.option)
            if not bound.low <= value <= bound.high:
                raise InputError(
                    f"must be between {bound.low} and {bound.high} (got {value})",
                    source=bound.option,
                )
        if not _TAG_ID.fullmatch(self.tag_id or ""):
            raise InputError(
                f"{self.tag_id!r} is not a LINE Tag ID (a UUID such as "
                "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0, shown in LINE Business Manager)",
                source="--tag-id",
            )
        if self.channel_id is not None and not _CHANNEL_ID.fullmatch(self.channel_id):
            raise InputError(
                f"{self.channel_id!r} is not a LINE channel ID (digits only)", source="--channel-id"
            )
        if self.token_env is not None and not _ENV_NAME.fullmatch(self.token_env):
            raise InputError(
                f"{self.token_env!r} is not an environment variable name", source="--token-env"
            )
        if self.phone_region not in phonenumbers.SUPPORTED_REGIONS:
            raise InputError(
                f"{self.phone_region!r} is not a region code phonenumbers knows "
                "(two capital letters, such as JP, TW, TH)",
                source="--phone-region",
            )
        if sandbox or not need_token:
            return
        if self.token_env is None:
            raise InputError(
                "is required unless capi_base is 'sandbox': name the environment variable that "
                "holds the Conversion API access token",
                source="--token-env",
            )
        if not os.environ.get(self.token_env):
            raise InputError(
                f"the environment variable {self.token_env} is not set (it should hold the "
                "Conversion API access token issued in LINE Business Manager)",
                source="--token-env",
            )


# --- problems ---------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value broke a rule; the message is the reason (never the value, if it is personal)."""


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


class InvalidRows:
    """Every problem of an export, in row order, held in memory up to a point then spilled.

    An export of a million bad rows must not hold a million reports in memory; past
    `keep_in_memory` they go to a private temporary file and are streamed back on demand.
    """

    def __init__(self, keep_in_memory: int = 5000) -> None:
        self._keep = keep_in_memory
        self._memory: list[Problem] = []
        self._spill: IO[bytes] | None = None
        self.problems = 0
        self.rows = 0
        self.by_column: dict[str, int] = {}

    def add_row(self, row: int, problems: Sequence[tuple[str, str]]) -> None:
        self.rows += 1
        for column, reason in problems:
            self.problems += 1
            self.by_column[column] = self.by_column.get(column, 0) + 1
            problem = Problem(row, column, reason)
            if len(self._memory) < self._keep:
                self._memory.append(problem)
                continue
            if self._spill is None:
                self._spill = tempfile.TemporaryFile(prefix="lcc-capi-invalid-")  # noqa: SIM115
            self._spill.write(orjson.dumps(problem.as_dict()) + b"\n")

    def first(self, count: int) -> list[Problem]:
        return self._memory[:count]

    def json_items(self) -> Iterator[bytes]:
        """Each problem as a JSON object, in order, without loading the spill file."""
        for problem in self._memory:
            yield orjson.dumps(problem.as_dict())
        if self._spill is not None:
            self._spill.flush()
            self._spill.seek(0)
            for line in self._spill:
                yield line.rstrip(b"\n")
            self._spill.seek(0, os.SEEK_END)

    def __iter__(self) -> Iterator[Problem]:
        for raw in self.json_items():
            item = orjson.loads(raw)
            yield Problem(item["row"], item["column"], item["reason"])

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None


# --- hashing ----------------------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-fA-F]{64}").fullmatch
_HEX64_LOWER = re.compile(r"[0-9a-f]{64}").fullmatch
_EMAIL = re.compile(r"[a-zA-Z0-9_!#$%&'*+/=?`{|}~^.\-]+@[a-zA-Z0-9.\-]+").fullmatch
_sha256 = hashlib.sha256


def hash_email(raw: str) -> str:
    """LINE's rule: trim, lowercase, SHA-256 hex; a 64-hex value is only lowercased."""
    value = raw.strip()
    if _HEX64(value):
        return value.lower()
    value = value.lower()
    if not _EMAIL(value):
        raise _Invalid("is neither an email address nor a SHA-256 hex digest")
    return _sha256(value.encode("utf-8")).hexdigest()


_PHONE_SEPARATORS = str.maketrans("", "", " -.()")


_TYPE_DESCS = (
    "mobile",
    "fixed_line",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


def _type_patterns(metadata: Any, lengths: frozenset[int]) -> dict[int, list[str]]:
    """Per length, the pattern of every number type that allows that length.

    `phonenumbers` calls a number valid when it matches the general description and any type's
    description (each with its own possible lengths).
    """
    per_length: dict[int, list[str]] = {}
    for name in _TYPE_DESCS:
        desc = getattr(metadata, name, None)
        if desc is None or not desc.national_number_pattern:
            continue
        allowed = desc.possible_length or tuple(lengths)
        for length in allowed:
            per_length.setdefault(length, []).append(desc.national_number_pattern)
    return per_length


def _validity_pattern(general: str, per_length: Mapping[int, Sequence[str]]) -> str:
    """`is_valid_number` for a national significant number as one regex (for `fullmatch`).

    The general description as a lookahead, then per allowed length the types' patterns: one
    regex call instead of a loop over up to a dozen, which is most of what a phone costs.
    """
    by_length = "|".join(
        rf"(?=\d{{{length}}}\Z)(?:" + "|".join(f"(?:{p})" for p in patterns) + ")"
        for length, patterns in sorted(per_length.items())
    )
    return rf"(?=(?:{general})\Z)(?:{by_length or '(?!)'})"


@dataclass(frozen=True)
class _FastCountry:
    """phonenumbers' `is_valid_number` for one single-region country, from its own metadata."""

    country_code: str
    national_prefix: str
    valid: Callable[[str], Any]
    """`fullmatch` of a national significant number (ASCII digits) that phonenumbers finds
    valid."""
    national: Callable[[str], Any]
    """`fullmatch` of the national form (trunk prefix, then a valid number not starting with 0,
    and not the international prefix), ASCII digits without separators."""


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, depth, start, escaped = [], 0, 0, False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _prefix_parsing_is_simple(metadata: Any) -> bool:
    """True when national-prefix stripping can only fire on input that starts with the prefix.

    Then a national significant number that does not start with that prefix is left alone by
    `phonenumbers.parse`, which is what lets the fast path skip it.
    """
    prefix = metadata.national_prefix
    if not prefix:
        return False
    pattern = metadata.national_prefix_for_parsing
    if pattern is None:
        return True
    for alternative in _top_level_alternatives(pattern):
        literal = alternative.lstrip("(?:")
        if not literal.startswith(prefix) or literal[len(prefix) : len(prefix) + 1] in tuple(
            "?*{)"
        ):
            return False
    return True


@lru_cache(maxsize=512)
def _fast_country(country_code: int) -> _FastCountry | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions or len(regions) != 1 or regions[0] == "001":
        return None
    metadata = PhoneMetadata.metadata_for_region(regions[0])
    if metadata is None or not _prefix_parsing_is_simple(metadata):
        return None
    general = metadata.general_desc
    if general is None or not general.national_number_pattern:
        return None
    general_lengths = frozenset(general.possible_length)
    per_length = _type_patterns(metadata, general_lengths)
    if general_lengths:
        per_length = {n: p for n, p in per_length.items() if n in general_lengths}
    valid = _validity_pattern(general.national_number_pattern, per_length)
    prefix = metadata.national_prefix or ""
    intl = metadata.international_prefix
    not_intl = f"(?!(?:{intl}))" if intl else ""
    return _FastCountry(
        country_code=str(country_code),
        national_prefix=prefix,
        valid=re.compile(valid).fullmatch,
        national=re.compile(rf"{not_intl}{re.escape(prefix)}(?=[1-9]){valid}").fullmatch,
    )


@lru_cache(maxsize=65536)
def _slow_e164(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise _Invalid(
            f"is not a phone number (give it with its country code, or as a number of the "
            f"default region {region}), nor a SHA-256 hex digest"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise _Invalid("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneNormaliser:
    """Phone number to E.164 (`+818012345678`), as `phonenumbers` would, but fast.

    The fast path handles ASCII digits with the usual separators, in `+<country><number>` or
    the default region's national form (`080-1234-5678`), for countries with one region and a
    plain national prefix; it applies `phonenumbers`' validity rules from its metadata and
    gives up to `phonenumbers.parse` whenever it is unsure. A test checks both agree.
    """

    def __init__(self, region: str = "JP") -> None:
        self.region = region
        code = phonenumbers.country_code_for_region(region)
        self._home = _fast_country(code) if code else None

    def e164(self, raw: str) -> str:
        text = raw.strip()
        digits = text.replace("-", "")
        if not digits.isdigit():
            digits = digits.translate(_PHONE_SEPARATORS)
        if digits.startswith("+"):
            body = digits[1:]
            # a country code never starts with 0 (`int("031")` would read Netherlands' 31)
            if body.isascii() and body.isdigit() and 2 < len(body) <= 17 and body[0] != "0":
                for size in (1, 2, 3):
                    code = int(body[:size])
                    if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                        country = _fast_country(code)
                        nsn = body[size:]
                        if country is not None and nsn[:1] not in ("", "0") and country.valid(nsn):
                            return "+" + body
                        break
        else:
            home = self._home
            if home is not None and digits.isascii() and home.national(digits):
                return "+" + home.country_code + digits[len(home.national_prefix) :]
        return _slow_e164(text, self.region)

    def hash(self, raw: str) -> str:
        """LINE's rule: E.164 with `+`, then SHA-256 hex; a 64-hex value is only lowercased."""
        value = raw.strip()
        if _HEX64(value):
            return value.lower()
        return _sha256(self.e164(value).encode("ascii")).hexdigest()


def hash_phone(raw: str, region: str = "JP") -> str:
    return PhoneNormaliser(region).hash(raw)


# --- per-column rules -------------------------------------------------------------------------

_DEDUP = re.compile(r"[0-9a-zA-Z_\-]{1,256}").fullmatch
_EVENT_NAME = re.compile(r"[A-Za-z0-9_\-]{1,20}").fullmatch
_LINE_UID = re.compile(r"U[0-9a-f]{32}").fullmatch
_CLICK_ID = re.compile(r"[a-zA-Z0-9_\-]+").fullmatch
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}").fullmatch
_EXTERNAL_ID = re.compile(r"[0-9a-zA-Z_\-]{1,512}").fullmatch
_URL = re.compile(r"https?://.").match
"""The seed's `^http(s)?://.+`: one character after the scheme is enough to match it."""
_CURRENCY = re.compile(r"[A-Z]{3}").fullmatch
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}").fullmatch
_EVENT_TYPES = frozenset({"page_view", "conversion"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 42 else text[:39] + "...'"


def _string(value: Any, *, ids: bool = False) -> str:
    if type(value) is str:
        return value
    if ids and type(value) is int:
        return str(value)
    raise _Invalid(f"must be a string, got {type(value).__name__}")


def _deduplication_key(value: Any) -> str:
    text = _string(value, ids=True)
    if text == "undefined":
        raise _Invalid("'undefined' is treated by LINE as no key at all; give a unique key")
    if not _DEDUP(text):
        raise _Invalid(
            "must be 1-256 characters of letters, digits, '-' and '_' "
            f"(got {len(text)} characters{_bad_chars(text, _DEDUP_CHARS)})"
        )
    return text


_DEDUP_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_")


def _bad_chars(text: str, allowed: frozenset[str]) -> str:
    bad = sorted({c for c in text if c not in allowed})
    return f", not allowed: {''.join(bad)[:10]!r}" if bad else ""


def _event_type(value: Any) -> str:
    text = _string(value)
    if text not in _EVENT_TYPES:
        raise _Invalid(f"must be 'page_view' or 'conversion' (got {_shown(text)})")
    return text


def _source_type(value: Any) -> str:
    text = _string(value)
    if text != "web":
        raise _Invalid(f"must be 'web', the only source type LINE supports (got {_shown(text)})")
    return text


def _event_name(value: Any) -> str:
    text = _string(value)
    if not _EVENT_NAME(text):
        raise _Invalid(
            "must be 1-20 letters, digits, '-' or '_' "
            f"(got {_shown(text)}); 'Conversion' is LINE's default conversion"
        )
    return text


def _test_flag(value: Any) -> bool:
    if type(value) is bool:
        return value
    if type(value) is str:
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _Invalid(f"must be true or false (got {_shown(value)})")


def _line_uid(value: Any) -> str:
    text = _string(value)
    if not _LINE_UID(text):
        raise _Invalid("must be a LINE user ID: 'U' and 32 lowercase hex digits")
    return text


def _click_id(value: Any) -> str:
    text = _string(value, ids=True)
    if not _CLICK_ID(text):
        raise _Invalid("must be letters, digits, '-' and '_' (the ldtag_cl value, unhashed)")
    return text


def _uuid(what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if not _UUID(text):
            raise _Invalid(f"must be a UUID such as 550e8400-e29b-41d4-a716-446655440000 ({what})")
        return text

    return check


def _external_id(value: Any) -> str:
    text = _string(value, ids=True)
    if text == "undefined":
        raise _Invalid("'undefined' is treated by LINE as no external_id at all")
    if not _EXTERNAL_ID(text):
        raise _Invalid("must be 1-512 letters, digits, '-' and '_'")
    return text


def _email(value: Any) -> str:
    return hash_email(_string(value))


def _max_length(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if len(text) > limit:
            raise _Invalid(f"is {len(text)} characters; LINE allows {limit}")
        return text

    return check


def _url(value: Any) -> str:
    text = _string(value)
    if len(text) > 2048:
        raise _Invalid(f"is {len(text)} characters; LINE allows 2048")
    if not _URL(text):
        raise _Invalid("must start with http:// or https://")
    return text


def _user_agent(value: Any) -> str:
    return _string(value)


def _ip_address(value: Any) -> str:
    text = _string(value)
    if _IPV4(text):
        return text
    if ":" in text:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            pass
        else:
            return text
    raise _Invalid(f"must be an IPv4 or IPv6 address (got {_shown(text)})")


def _value(value: Any) -> int | float:
    if type(value) is str:
        text = value.strip()
        try:
            number: int | float = int(text) if text.isascii() and text.isdigit() else float(text)
        except ValueError:
            raise _Invalid(f"must be a number (got {_shown(value)})") from None
    elif type(value) in (int, float):
        number = value
    else:
        raise _Invalid(f"must be a number, got {type(value).__name__}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise _Invalid(f"must be a finite number (got {_shown(value)})")
        if number.is_integer() and abs(number) <= INT32_MAX:
            number = int(number)
    if not 0 <= number <= INT32_MAX:
        raise _Invalid(f"must be between 0 and {INT32_MAX} (got {number})")
    return number


def _quantity(value: Any) -> int:
    if type(value) is str:
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise _Invalid(f"must be a whole number (got {_shown(value)})")
        number = int(text)
    elif type(value) is int:
        number = value
    else:
        raise _Invalid(f"must be a whole number, got {type(value).__name__}")
    if not 0 <= number <= INT32_MAX:
        raise _Invalid(f"must be between 0 and {INT32_MAX} (got {number})")
    return number


def _currency(value: Any) -> str:
    text = _string(value)
    if not _CURRENCY(text):
        raise _Invalid(f"must be an ISO 4217 code of three capital letters, such as JPY ({text!r})")
    return text


def _string_list(limit: int) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        items: Any
        if type(value) is str:
            text = value.strip()
            if text.startswith("["):
                try:
                    items = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise _Invalid("starts with '[' but is not a JSON array of strings") from None
            else:
                items = [part.strip() for part in text.split(",")]
        else:
            items = value
        if type(items) is not list or not all(type(item) is str and item for item in items):
            raise _Invalid("must be a list of non-empty strings")
        if len(items) > limit:
            raise _Invalid(f"has {len(items)} items; LINE allows {limit}")
        return items

    return check


_STATIC_RULES: Final[dict[str, Callable[[Any], Any]]] = {
    "deduplication_key": _deduplication_key,
    "event_type": _event_type,
    "source_type": _source_type,
    "event_name": _event_name,
    "test_flag": _test_flag,
    "line_uid": _line_uid,
    "click_id": _click_id,
    "email": _email,
    "ifa": _uuid("the IDFA or AAID"),
    "browser_id": _uuid("the LINE Tag's __lt__cid cookie"),
    "external_id": _external_id,
    "url": _url,
    "referrer": _max_length(2048),
    "title": _max_length(1024),
    "user_agent": _user_agent,
    "ip_address": _ip_address,
    "value": _value,
    "currency": _currency,
    "quantity": _quantity,
    "item_ids": _string_list(100),
    "keywords": _string_list(10),
    "category": _max_length(300),
}


_FAST_PATHS: Final[dict[str, tuple[str, str]]] = {
    "deduplication_key": ("dedup(v) and v != 'undefined'", "v"),
    "event_type": ("v in event_types", "v"),
    "source_type": ("v == 'web'", "v"),
    "event_timestamp": ("v.isdigit() and v.isascii() and lo <= (t := int(v)) <= hi", "t"),
    "event_name": ("event_name(v)", "v"),
    "line_uid": ("line_uid(v)", "v"),
    "click_id": ("click_id(v)", "v"),
    "email": ("email(v)", "sha256(v.lower().encode()).hexdigest()"),
    "ifa": ("uuid(v)", "v"),
    "browser_id": ("uuid(v)", "v"),
    "external_id": ("external_id(v) and v != 'undefined'", "v"),
    "url": ("len(v) <= 2048 and url(v)", "v"),
    "referrer": ("len(v) <= 2048", "v"),
    "title": ("len(v) <= 1024", "v"),
    "user_agent": ("True", "v"),
    "ip_address": ("ipv4(v)", "v"),
    "currency": ("currency(v)", "v"),
    "category": ("len(v) <= 300", "v"),
}
"""Per column, a test that only admits values the full rule would return unchanged, and the
value to store (`v` is the column's value); `EventBuilder.row_function` inlines them."""
_V = re.compile(r"\bv\b")
_FAST_NAMES: Final[dict[str, Any]] = {
    "dedup": _DEDUP,
    "event_types": _EVENT_TYPES,
    "event_name": _EVENT_NAME,
    "line_uid": _LINE_UID,
    "click_id": _CLICK_ID,
    "email": _EMAIL,
    "sha256": _sha256,
    "uuid": _UUID,
    "external_id": _EXTERNAL_ID,
    "url": _URL,
    "ipv4": _IPV4,
    "currency": _CURRENCY,
}
_REQUIRED: Final = frozenset(REQUIRED_COLUMNS)
_MISSING: Final = "is required and missing"


def _wire_hashed(what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if type(value) is not str or not _HEX64_LOWER(value):
            raise _Invalid(f"must be the SHA-256 of the {what}, as 64 lowercase hex digits")
        return value

    return check


def _wire_int(value: Any) -> int:
    if type(value) is not int:
        raise _Invalid(f"must be an integer, got {type(value).__name__}")
    return value


def _wire_number(value: Any) -> int | float:
    if type(value) not in (int, float):
        raise _Invalid(f"must be a number, got {type(value).__name__}")
    return _value(value)


def _wire_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Invalid(f"must be true or false, got {type(value).__name__}")
    return value


def _wire_list(limit: int) -> Callable[[Any], list[str]]:
    inner = _string_list(limit)

    def check(value: Any) -> list[str]:
        if type(value) is not list:
            raise _Invalid("must be an array of strings")
        return inner(value)

    return check


def _wire_string(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not str:
            raise _Invalid(f"must be a string, got {type(value).__name__}")
        return rule(value)

    return check


# --- building events --------------------------------------------------------------------------


@dataclass(slots=True)
class BuiltEvent:
    payload: bytes
    """The event as LINE's JSON, serialised (one element of the request's array)."""
    line_uid: bool


RowOutcome = bytes | BuiltEvent | list[tuple[str, str]]
"""A compiled row's result: its JSON (the common case), an event with flags, or its problems."""


class EventBuilder:
    """Turns one row into LINE's event JSON, or into the list of what is wrong with it.

    `wire=True` is the sandbox's view: values arrive as LINE receives them (email and phone
    already hashed, numbers as JSON numbers), so nothing is converted, only checked.
    """

    def __init__(
        self,
        *,
        now: datetime,
        channel_id: str | None,
        phone_region: str = "JP",
        wire: bool = False,
    ) -> None:
        self.now = now
        self.channel_id = channel_id
        self.phone_region = phone_region
        self.wire = wire
        self._earliest = int((now - WINDOW_BEFORE).timestamp())
        self._latest = int((now + WINDOW_AFTER).timestamp())
        self._phones = PhoneNormaliser(phone_region)
        rules = dict(_STATIC_RULES)
        rules["event_timestamp"] = self._timestamp
        rules["phone"] = self._phone
        if wire:
            rules.update(
                email=_wire_hashed("trimmed, lowercased email address"),
                phone=_wire_hashed("phone number in E.164 form (+818012345678)"),
                event_timestamp=self._wire_timestamp,
                value=_wire_number,
                quantity=_wire_int,
                test_flag=_wire_bool,
                item_ids=_wire_list(100),
                keywords=_wire_list(10),
            )
            for name in ("deduplication_key", "click_id", "external_id"):
                rules[name] = _wire_string(rules[name])
        self._rules = rules

    def _phone(self, value: Any) -> str:
        return self._phones.hash(_string(value))

    def _in_window(self, seconds: int) -> int:
        if seconds <= 0:
            raise _Invalid(f"must be a positive number of seconds since 1970 (got {seconds})")
        if seconds < self._earliest:
            hint = " (it looks like milliseconds)" if seconds > 10**11 else ""
            raise _Invalid(
                f"{seconds} ({_iso(seconds)}) is more than 90 days before now; LINE accepts "
                f"{_iso(self._earliest)} to {_iso(self._latest)}{hint}"
            )
        if seconds > self._latest:
            hint = " (it looks like milliseconds)" if seconds > 10**11 else ""
            raise _Invalid(
                f"{seconds} ({_iso(seconds)}) is more than 24 hours after now; LINE accepts "
                f"{_iso(self._earliest)} to {_iso(self._latest)}{hint}"
            )
        return seconds

    def _timestamp(self, value: Any) -> int:
        if type(value) is int:
            return self._in_window(value)
        if type(value) is str:
            text = value.strip()
            if text.isascii() and text.isdigit():
                return self._in_window(int(text))
            if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
                return self._in_window(int(text))
        raise _Invalid(f"must be whole seconds since 1970 (UNIX time), got {_shown(value)}")

    def _wire_timestamp(self, value: Any) -> int:
        if type(value) is not int:
            raise _Invalid(f"must be an integer (UNIX seconds), got {type(value).__name__}")
        return self._in_window(value)

    def build(self, record: Mapping[str, Any]) -> BuiltEvent | list[tuple[str, str]]:
        """The event, or its problems as (column, reason) pairs, every one of them."""
        parts: tuple[dict[str, Any], ...] = ({}, {}, {}, {})
        problems: list[tuple[str, str]] | None = None
        rules = self._rules
        groups = _GROUP_INDEX
        columns = record if self.wire else sorted(record, key=_CANONICAL.__getitem__)
        for column in columns:
            value = record[column]
            if value is None or value == "":
                continue
            try:
                parts[groups[column]][column] = rules[column](value)
            except _Invalid as exc:
                if problems is None:
                    problems = []
                problems.append((column, str(exc)))
        event, user, web, custom = parts
        return self.finish(event, user, web, custom, problems)

    def finish(
        self,
        event: dict[str, Any],
        user: dict[str, Any],
        web: dict[str, Any],
        custom: dict[str, Any],
        problems: list[tuple[str, str]] | None,
    ) -> BuiltEvent | list[tuple[str, str]]:
        """Row-level rules, then LINE's JSON for the event."""
        if (
            problems is not None
            or not user
            or not event.keys() >= _REQUIRED
            or "line_uid" in user
            or event.get("event_name") == "Purchase"
        ):
            problems = self._row_rules(event, user, custom, problems)
            if problems:
                return problems
        if self.wire:
            # The sandbox only checks what it received; it keeps the event as LINE sent it.
            return BuiltEvent(b"", "line_uid" in user)
        document: dict[str, Any] = {"event": event, "user": user}
        if web:
            document["web"] = web
        if custom:
            document["custom"] = custom
        try:
            payload = orjson.dumps(document)
        except orjson.JSONEncodeError:
            return [(ROW_COLUMN, "holds text that is not valid UTF-8")]
        return BuiltEvent(payload, "line_uid" in user)

    def row_function(self, columns: Sequence[str]) -> Callable[[list[str]], RowOutcome]:
        """`build` specialised to one CSV header: values by position, the usual case inline.

        Generated once per file, like `dataclasses` generates `__init__`: a million rows would
        otherwise pay a dictionary, a loop step and a function call per column. Each column's
        inline test only admits values its full rule accepts unchanged; anything else goes to
        that rule, which converts it or says what is wrong. A valid row without row-level rules
        to apply comes back as its JSON bytes; other rows go through `finish`.
        """
        if self.wire:
            raise ValueError("row functions are for input files, not the wire format")
        names = [f"c{index}" for index in range(len(columns))]
        present = {GROUPS[_GROUP_INDEX[column]] for column in columns}
        lines = [
            "def build_row(values):",
            f"    {', '.join(names)}, = values",
            "    problems = None",
            *(f"    {group} = {{}}" for group in GROUPS if group in present),
        ]
        # Statements in canonical order, so that keys land in LINE's JSON in that order.
        by_name = dict(zip(columns, names, strict=True))
        for column in canonical(columns):
            name = by_name[column]
            target = GROUPS[_GROUP_INDEX[column]]
            fast = _FAST_PATHS.get(column)
            lines.append(f"    if {name}:")
            indent = "        "
            if fast is not None:
                condition, value = (_V.sub(name, part) for part in fast)
                lines.append(f"        if {condition}:")
                lines.append(f"            {target}[{column!r}] = {value}")
                lines.append("        else:")
                indent = "            "
            lines.append(f"{indent}try:")
            lines.append(f"{indent}    {target}[{column!r}] = rules[{column!r}]({name})")
            lines.append(f"{indent}except Invalid as exc:")
            lines.append(f"{indent}    problems = (problems or []) + [({column!r}, str(exc))]")
            if column in REQUIRED_COLUMNS:
                lines.append("    else:")
                lines.append(f"        problems = (problems or []) + [({column!r}, MISSING)]")
        # The common case of `finish`, inline: a valid row with no row-level rule to apply.
        condition = "problems is None and user"
        if "line_uid" in columns:
            condition += " and 'line_uid' not in user"
        if "event_name" in columns:
            condition += " and event.get('event_name') != 'Purchase'"
        lines.append(f"    if {condition}:")
        lines.append("        document = {'event': event, 'user': user}")
        for group in ("web", "custom"):
            if group in present:
                lines.append(f"        if {group}:")
                lines.append(f"            document[{group!r}] = {group}")
        lines.append("        try:")
        lines.append("            return dumps(document)")
        lines.append("        except EncodeError:")
        lines.append("            pass")
        web = "web" if "web" in present else "{}"
        custom = "custom" if "custom" in present else "{}"
        lines.append(f"    return finish(event, user, {web}, {custom}, problems)")
        namespace: dict[str, Any] = {
            "rules": self._rules,
            "finish": self.finish,
            "Invalid": _Invalid,
            "MISSING": _MISSING,
            "dumps": orjson.dumps,
            "EncodeError": orjson.JSONEncodeError,
            "lo": self._earliest,
            "hi": self._latest,
            **_FAST_NAMES,
        }
        exec("\n".join(lines), namespace)
        function: Callable[[list[str]], RowOutcome] = namespace["build_row"]
        return function

    def _row_rules(
        self,
        event: dict[str, Any],
        user: dict[str, Any],
        custom: dict[str, Any],
        problems: list[tuple[str, str]] | None,
    ) -> list[tuple[str, str]] | None:
        found = list(problems or [])
        flagged = {column for column, _ in found}
        for column in REQUIRED_COLUMNS:
            if column not in event and column not in flagged:
                found.append((column, _MISSING))
        if not user and not flagged.intersection(MATCHING_COLUMNS):
            found.append(
                (USER_COLUMN, "needs at least one of " + ", ".join(MATCHING_COLUMNS) + " to match")
            )
        if "line_uid" in user and self.channel_id is None:
            found.append(
                (
                    "line_uid",
                    "needs --channel-id (the ID of the LINE channel that issued the user IDs; "
                    "LINE's X-Line-ChannelID header)",
                )
            )
        purchase = event.get("event_name") == "Purchase"
        if purchase and "value" not in custom and "value" not in flagged:
            found.append(("value", "is required for LINE's standard event Purchase"))
        return found or None


def _iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "out of range"


# --- the wire format (the sandbox's side) -----------------------------------------------------


def flatten_event(item: Any, *, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """LINE's nested event object to a flat record, with structural problems.

    Columns are the flat names; problems name JSON paths such as `[3].user.emial`.
    """
    problems: list[tuple[str, str]] = []
    record: dict[str, Any] = {}
    if type(item) is not dict:
        return record, [(prefix or ROW_COLUMN, "must be a JSON object")]
    for group, value in item.items():
        if group not in GROUPS:
            problems.append((f"{prefix}{group}", "is not one of event, user, web, custom"))
            continue
        if type(value) is not dict:
            problems.append((f"{prefix}{group}", "must be an object"))
            continue
        for key, inner in value.items():
            if GROUP_OF.get(key) != group:
                problems.append((f"{prefix}{group}.{key}", f"is not a field of {group}"))
                continue
            record[key] = inner
    for group in ("event", "user"):
        if group not in item:
            problems.append((f"{prefix}{group}", "is required"))
    return record, problems


def check_wire_event(
    item: Any, builder: EventBuilder, *, prefix: str = ""
) -> list[tuple[str, str]]:
    """Problems of one element of a request body, as LINE would find them; [] when valid."""
    record, problems = flatten_event(item, prefix=prefix)
    if problems:
        return problems
    for key, value in record.items():
        if value is None or value == "":
            problems.append((f"{prefix}{GROUP_OF[key]}.{key}", "must not be null or empty"))
    if problems:
        return problems
    outcome = builder.build(record)
    if isinstance(outcome, BuiltEvent):
        return []
    return [(_wire_path(prefix, column), reason) for column, reason in outcome]


def _wire_path(prefix: str, column: str) -> str:
    if column in GROUP_OF:
        return f"{prefix}{GROUP_OF[column]}.{column}"
    return f"{prefix}{column}".rstrip(".")


# --- reading ----------------------------------------------------------------------------------

Format = Literal["csv", "jsonl"]


@dataclass(slots=True)
class Record:
    row: int
    """1-based data row: the CSV header and blank lines are not counted."""
    line: int
    """Where the row starts in the file (1-based line), for people."""
    data: Mapping[str, Any] | None
    problem: str | None = None


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def unknown_column_error(unknown: Mapping[str, int], source: str) -> InputError:
    described = []
    for name, row in unknown.items():
        close = difflib.get_close_matches(name, ALL_COLUMNS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        described.append(f"{name!r}{hint}" + (f" first in row {row}" if row else ""))
    return InputError(
        "unknown column"
        + ("s " if len(described) > 1 else " ")
        + ", ".join(described)
        + "; known columns are "
        + ", ".join(ALL_COLUMNS),
        source=source,
    )


def width_problem(values: int, width: int) -> str:
    """A CSV row with the wrong number of values, said as `(row)` problems say it."""
    return f"has {values} values; the header has {width} columns"


class InputFile:
    """A CSV or JSONL conversion file, read as a stream of `Record`s."""

    def __init__(self, path: Path, fmt: Format | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("no such file", source=str(path))
        try:
            with self.path.open("rb"):
                pass
        except OSError as exc:
            raise InputError(f"cannot be read: {exc.strerror}", source=str(path)) from None
        self.format: Format = fmt or detect_format(self.path)
        self.columns: tuple[str, ...] | None = None
        if self.format == "csv":
            self.columns = self._csv_header()

    def _open_text(self) -> IO[str]:
        return self.path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")

    def _csv_header(self) -> tuple[str, ...]:
        with self._open_text() as handle:
            try:
                header = next(csv.reader(handle))
            except StopIteration:
                raise InputError("is empty; expected a header row", source=str(self.path)) from None
            except csv.Error as exc:
                raise InputError(f"cannot read the header: {exc}", source=str(self.path)) from None
        columns = tuple(name.strip() for name in header)
        check_columns(columns, source=str(self.path))
        return columns

    def approximate_rows(self) -> int:
        """Lines in the file, minus the header: the progress bar's total."""
        count = 0
        last = b"\n"
        with self.path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            count += 1
        return max(0, count - (1 if self.format == "csv" else 0))

    def records(self) -> Iterator[Record]:
        if self.format == "csv":
            return self._csv_records()
        return self._jsonl_records()

    def csv_rows(self) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
        """(row, line, values, problem) per CSV data row; values by header position."""
        width = len(self.columns or ())
        with self._open_text() as handle:
            # strict: a stray quote must not turn the rest of the file into one value
            reader = csv.reader(handle, strict=True)
            line = 1
            try:
                next(reader)
                row = 0
                line = reader.line_num + 1
                for values in reader:
                    if not values:
                        line = reader.line_num + 1
                        continue
                    row += 1
                    if len(values) != width:
                        problem = width_problem(len(values), width)
                        yield row, line, None, problem
                    else:
                        yield row, line, values, None
                    line = reader.line_num + 1
            except csv.Error as exc:
                raise unreadable_csv(self.path, exc, line) from None

    def _csv_records(self) -> Iterator[Record]:
        columns = self.columns or ()
        for row, line, values, problem in self.csv_rows():
            data = dict(zip(columns, values, strict=True)) if values is not None else None
            yield Record(row, line, data, problem)

    def _jsonl_records(self) -> Iterator[Record]:
        row = 0
        with self.path.open("rb") as handle:
            for line, raw in enumerate(handle, 1):
                text = raw.strip()
                if not text:
                    continue
                row += 1
                try:
                    item = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    yield Record(row, line, None, f"is not valid JSON ({exc})")
                    continue
                if type(item) is not dict:
                    yield Record(row, line, None, "must be a JSON object")
                    continue
                if any(key in GROUPS for key in item):
                    flat, problems = flatten_event(item)
                    if problems:
                        column, reason = problems[0]
                        yield Record(row, line, None, f"{column} {reason}")
                        continue
                    item = flat
                yield Record(row, line, item)

    def unknown_jsonl_columns(self) -> dict[str, int]:
        """Keys outside the known columns, with the first row that has each (JSONL only).

        Read up front so that a typo stops the export before anything is sent.
        """
        unknown: dict[str, int] = {}
        known = _GROUP_INDEX
        for record in self._jsonl_records():
            if record.data is None:
                continue
            for key in record.data:
                if key not in known and key not in unknown:
                    unknown[key] = record.row
        return unknown


def check_columns(columns: Sequence[str], *, source: str) -> None:
    """A CSV header: every column known, none twice, the required ones and a user field present."""
    unknown = {name: 0 for name in columns if name not in _GROUP_INDEX}
    if unknown:
        raise unknown_column_error(unknown, source)
    seen: set[str] = set()
    twice = sorted({name for name in columns if name in seen or seen.add(name)})  # type: ignore[func-returns-value]
    if twice:
        raise InputError("column(s) appear more than once: " + ", ".join(twice), source=source)
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError("required column(s) missing: " + ", ".join(missing), source=source)
    if not set(MATCHING_COLUMNS) & set(columns):
        raise InputError(
            "no user column: LINE needs at least one of " + ", ".join(MATCHING_COLUMNS),
            source=source,
        )


# --- batching ---------------------------------------------------------------------------------


@dataclass
class Batch:
    number: int
    """1-based."""
    payloads: list[bytes] = field(default_factory=list)
    first_row: int = 0
    last_row: int = 0
    line_uid: bool = False
    size_bytes: int = 2

    @property
    def count(self) -> int:
        return len(self.payloads)

    def body(self) -> bytes:
        """The request body: a JSON array, joined from the already-serialised events."""
        return b"[" + b",".join(self.payloads) + b"]"


class Batcher:
    """Groups events into batches of `size`, never over LINE's count or byte caps."""

    def __init__(self, size: int, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.size = min(size, MAX_EVENTS_PER_REQUEST)
        self.max_bytes = max_bytes
        self.made = 0
        self._current: Batch | None = None

    def add(self, row: int, event: BuiltEvent) -> Batch | None:
        """Add one event; returns the previous batch when this event does not fit in it."""
        done = None
        current = self._current
        if current is not None and (
            current.count >= self.size
            or current.size_bytes + len(event.payload) + 1 > self.max_bytes
        ):
            done = self._close()
            current = None
        if current is None:
            self.made += 1
            current = self._current = Batch(self.made, first_row=row)
        current.payloads.append(event.payload)
        current.size_bytes += len(event.payload) + 1
        current.last_row = row
        if event.line_uid:
            current.line_uid = True
        return done

    def flush(self) -> Batch | None:
        return self._close() if self._current is not None else None

    def _close(self) -> Batch:
        batch = self._current
        assert batch is not None
        self._current = None
        return batch


def default_now() -> datetime:
    return datetime.now(UTC)


# --- the export -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchReport:
    number: int
    events: int
    first_row: int
    last_row: int
    outcome: str
    """accepted, refused (LINE discarded every event of it), failed (retries ran out),
    fatal (the export stopped here), unsent (after a fatal stop), or dry-run."""
    status: int = 0
    attempts: int = 0
    message: str | None = None

    def describe(self) -> str:
        rows = f"rows {self.first_row}-{self.last_row}"
        head = f"batch {self.number} ({self.events} events, {rows})"
        why = f": {self.message}" if self.message else ""
        if self.outcome == "refused":
            return f"{head} refused by LINE{why}; every event in it was discarded"
        if self.outcome == "failed":
            return f"{head} failed after {self.attempts} attempts{why}"
        if self.outcome == "fatal":
            return f"{head} stopped the export{why}"
        return f"{head} {self.outcome}{why}"


class ExportObserver:
    """Progress and narration hooks; this base does nothing. Called from a worker thread too."""

    def phase(self, name: str, total_rows: int) -> None:
        """`validating` (when invalid rows must stop everything) or `sending`."""

    def rows_read(self, count: int) -> None:
        """Rows read so far in this phase."""

    def batch_done(self, report: BatchReport) -> None:
        pass

    def retrying(self, batch: int, attempt: int, wait_s: float, reason: str) -> None:
        pass


@dataclass
class ExportSummary:
    rows: int = 0
    sent: int = 0
    skipped_invalid: int = 0
    failed: int = 0
    batches: int = 0
    invalid: InvalidRows = field(default_factory=InvalidRows)
    problems: list[BatchReport] = field(default_factory=list)
    """Batches that were not accepted, in order."""
    stopped: str | None = None
    """Why the export stopped early (a fatal answer), if it did."""
    input_aborted: str | None = None
    """A file that broke half-way (the CSV itself, not a row)."""
    refused_input: bool = False
    """Invalid rows with --no-ignore-invalid-records: nothing was sent."""
    dry_run: bool = False

    @property
    def valid(self) -> int:
        return self.rows - self.invalid.rows

    @property
    def exit_code(self) -> int:
        """Contract: 0 all sent, 1 some rejected or failed, 2 bad input."""
        if self.refused_input or self.input_aborted:
            return 2
        if self.rows and not self.valid:
            return 2
        if self.stopped or self.failed:
            return 1
        return 0

    def document(self) -> dict[str, Any]:
        """Contract section 7's `--json` document (`invalid` is every problem, in row order)."""
        return {
            "sent": self.sent,
            "skipped_invalid": self.skipped_invalid,
            "failed": self.failed,
            "batches": self.batches,
            "invalid": [problem.as_dict() for problem in self.invalid],
        }

    def write_json(self, out: IO[bytes]) -> None:
        """The same document, streamed: a million problems never sit in memory at once."""
        head = {k: v for k, v in self.document_counts().items()}
        out.write(orjson.dumps(head)[:-1] + b',"invalid":[')
        for i, item in enumerate(self.invalid.json_items()):
            if i:
                out.write(b",")
            out.write(item)
        out.write(b"]}\n")

    def document_counts(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "skipped_invalid": self.skipped_invalid,
            "failed": self.failed,
            "batches": self.batches,
        }

    def close(self) -> None:
        self.invalid.close()


_KNOWN = frozenset(ALL_COLUMNS)
_PROGRESS_EVERY = 2048


def _built_events(
    source: InputFile,
    builder: EventBuilder,
    summary: ExportSummary,
    observer: ExportObserver,
    unknown: dict[str, int],
) -> Iterator[tuple[int, BuiltEvent]]:
    """Valid events in file order; every invalid row goes to `summary.invalid`."""
    if source.format == "csv":
        yield from _built_csv_events(source, builder, summary, observer)
        return
    build = builder.build
    invalid = summary.invalid
    count = 0
    for record in source.records():
        count += 1
        if count % _PROGRESS_EVERY == 0:
            observer.rows_read(count)
        data = record.data
        if data is None:
            invalid.add_row(record.row, [(ROW_COLUMN, record.problem or "cannot be read")])
            continue
        if not _KNOWN.issuperset(data):
            extra = [key for key in data if key not in _KNOWN]
            for key in extra:
                unknown.setdefault(key, record.row)
            invalid.add_row(record.row, [(key, "is not a known column") for key in extra])
            continue
        outcome = build(data)
        if isinstance(outcome, BuiltEvent):
            yield record.row, outcome
        else:
            invalid.add_row(record.row, outcome)
    summary.rows = count
    observer.rows_read(count)


def _built_csv_events(
    source: InputFile,
    builder: EventBuilder,
    summary: ExportSummary,
    observer: ExportObserver,
) -> Iterator[tuple[int, BuiltEvent]]:
    build_row = builder.row_function(source.columns or ())
    add_row = summary.invalid.add_row
    count = 0
    for row, _line, values, problem in source.csv_rows():
        count = row
        if row % _PROGRESS_EVERY == 0:
            observer.rows_read(row)
        if values is None:
            add_row(row, [(ROW_COLUMN, problem or "cannot be read")])
            continue
        outcome = build_row(values)
        if type(outcome) is bytes:
            yield row, BuiltEvent(outcome, False)
        elif type(outcome) is BuiltEvent:
            yield row, outcome
        else:
            add_row(row, outcome)  # type: ignore[arg-type]
    summary.rows = count
    observer.rows_read(count)


def _csv_batches(
    source: InputFile,
    builder: EventBuilder,
    summary: ExportSummary,
    observer: ExportObserver,
    batch_size: int,
    max_bytes: int = MAX_BODY_BYTES,
    *,
    workers: int | None = None,
    parallel_min_bytes: int | None = None,
    stretch_bytes: int | None = None,
) -> Iterator[Batch]:
    """The hot loop: CSV rows to batches, read by worker processes when the file is large.

    It does what `_stream_batches(_built_csv_events(...))` does (a test holds them equal),
    minus a generator, a tuple and a method call per row, which a million rows notice.
    `core.capi_parallel` reads the rows; the knobs are for tests.
    """
    from core import capi_parallel

    pieces = capi_parallel.csv_pieces(
        source, builder, workers=workers, min_bytes=parallel_min_bytes, stretch_bytes=stretch_bytes
    )
    add_row = summary.invalid.add_row
    size = min(batch_size, MAX_EVENTS_PER_REQUEST)
    number = 0
    batch = Batch(0)
    payloads = batch.payloads
    nbytes = 2
    base = 0
    last_row = 0
    for piece in pieces:
        for local, problems in piece.invalid:
            add_row(base + local, problems)
        line_uid_rows = set(piece.line_uid_rows)
        for payload, local in zip(piece.payloads, piece.payload_rows, strict=True):
            length = len(payload) + 1
            if payloads and (len(payloads) >= size or nbytes + length > max_bytes):
                batch.size_bytes = nbytes
                batch.last_row = last_row
                yield batch
                batch = Batch(0)
                payloads = batch.payloads
                nbytes = 2
            last_row = base + local
            if not payloads:
                number += 1
                batch.number = number
                batch.first_row = last_row
            payloads.append(payload)
            nbytes += length
            if line_uid_rows and local in line_uid_rows:
                batch.line_uid = True
        base += piece.rows
        observer.rows_read(base)
    summary.rows = base
    if payloads:
        batch.size_bytes = nbytes
        batch.last_row = last_row
        yield batch


def valid_batches(
    source: InputFile,
    builder: EventBuilder,
    summary: ExportSummary,
    observer: ExportObserver,
    batch_size: int,
    unknown: dict[str, int] | None = None,
    *,
    workers: int | None = None,
) -> Iterator[Batch]:
    """Batches of the valid rows of `source`, streamed; invalid rows go to `summary.invalid`.

    A large CSV file is read by `workers` processes (None: one per CPU; 1: this one only).
    """
    if source.format == "csv":
        return _csv_batches(source, builder, summary, observer, batch_size, workers=workers)
    events = _built_events(source, builder, summary, observer, {} if unknown is None else unknown)
    return _stream_batches(events, batch_size)


def _stream_batches(events: Iterator[tuple[int, BuiltEvent]], batch_size: int) -> Iterator[Batch]:
    batcher = Batcher(batch_size)
    for row, event in events:
        done = batcher.add(row, event)
        if done is not None:
            yield done
    last = batcher.flush()
    if last is not None:
        yield last


def _spool(events: Iterator[tuple[int, BuiltEvent]]) -> IO[bytes]:
    """Validated events to a private temporary file, so pass two sends exactly what passed."""
    spool = tempfile.TemporaryFile(prefix="lcc-capi-spool-")  # noqa: SIM115 (caller closes)
    write = spool.write
    for row, event in events:
        write(b"%d %d %s\n" % (row, event.line_uid, event.payload))
    spool.seek(0)
    return spool


def _from_spool(spool: IO[bytes]) -> Iterator[tuple[int, BuiltEvent]]:
    for line in spool:
        row, flag, payload = line.rstrip(b"\n").split(b" ", 2)
        yield int(row), BuiltEvent(payload, flag == b"1")


def prepare_batches(
    path: Path,
    options: ExportOptions,
    *,
    now: datetime | None = None,
    summary: ExportSummary | None = None,
    observer: ExportObserver | None = None,
    workers: int | None = None,
) -> Iterator[Batch]:
    """Validated, hashed, serialised batches of a file, streamed (ignore-invalid semantics).

    The benchmark measures this; `export_file` is this plus sending.
    """
    source = InputFile(path)
    builder = EventBuilder(
        now=now or default_now(), channel_id=options.channel_id, phone_region=options.phone_region
    )
    summary = summary or ExportSummary()
    return valid_batches(
        source, builder, summary, observer or ExportObserver(), options.batch_size, workers=workers
    )


async def export_file(
    path: Path,
    options: ExportOptions,
    *,
    capi_base: str,
    now: datetime | None = None,
    dry_run: bool = False,
    on_request: Callable[[bytes], None] | None = None,
    observer: ExportObserver | None = None,
    sandbox: Any = None,
    transport: Any = None,
    sleep: Callable[[float], Any] | None = None,
) -> ExportSummary:
    """Read, check, hash, batch and send a conversion file; the summary says what happened.

    With `ignore_invalid_records` the file streams once: invalid rows are reported and skipped.
    Without it, the whole file is validated first (to a private spool file) and nothing is sent
    if any row is invalid. `dry_run` hands each request (as JSON, without the token) to
    `on_request` instead of sending it. `sandbox` is a `SandboxState` to send to when
    `capi_base` is `sandbox`.
    """
    from core.capi_client import CapiClient, Outcome, RetryPolicy

    is_sandbox = capi_base == "sandbox"
    options.check(sandbox=is_sandbox, need_token=not dry_run)
    observer = observer or ExportObserver()
    source = InputFile(path)
    if source.format == "jsonl" and options.ignore_invalid_records:
        unknown_first = source.unknown_jsonl_columns()
        if unknown_first:
            raise unknown_column_error(unknown_first, str(path))
    builder = EventBuilder(
        now=now or default_now(), channel_id=options.channel_id, phone_region=options.phone_region
    )
    summary = ExportSummary(dry_run=dry_run)
    unknown: dict[str, int] = {}
    spool: IO[bytes] | None = None
    total = source.approximate_rows()
    if options.ignore_invalid_records:
        batches = valid_batches(source, builder, summary, observer, options.batch_size, unknown)
    else:
        observer.phase("validating", total)
        spool = _spool(_built_events(source, builder, summary, observer, unknown))
        if unknown:
            spool.close()
            summary.close()
            raise unknown_column_error(unknown, str(path))
        if summary.invalid.rows:
            spool.close()
            summary.refused_input = True
            return summary
        batches = _stream_batches(_from_spool(spool), options.batch_size)
        total = summary.valid
    observer.phase("sending", total)
    client = CapiClient.for_base(
        capi_base,
        options.tag_id,
        token_env=options.token_env,
        channel_id=options.channel_id,
        timeout=float(options.connection_timeout),
        transport=transport,
        sandbox_state=sandbox,
    )
    policy = RetryPolicy(
        options.max_retry, float(options.initial_retry_wait), float(options.max_retry_wait)
    )
    sent_rows = 0

    def pull() -> Batch | None:
        return next(batches, None)

    pending: asyncio.Future[Batch | None] = asyncio.ensure_future(asyncio.to_thread(pull))
    try:
        while True:
            try:
                batch = await pending
            except InputError as exc:
                summary.input_aborted = exc.describe()
                break
            if batch is None:
                break
            pending = asyncio.ensure_future(asyncio.to_thread(pull))
            summary.batches += 1
            if spool is not None:
                sent_rows += batch.count
                observer.rows_read(sent_rows)
            if summary.stopped is not None:
                summary.failed += batch.count
                continue
            if dry_run:
                if on_request is not None:
                    on_request(_dry_run_request(client, batch))
                observer.batch_done(
                    BatchReport(
                        batch.number, batch.count, batch.first_row, batch.last_row, "dry-run"
                    )
                )
                continue

            def on_retry(
                response: Any, attempt: int, wait: float, number: int = batch.number
            ) -> None:
                observer.retrying(number, attempt, wait, response.describe())

            kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
            result = await client.send_batch(
                batch.body(), line_uid=batch.line_uid, retry=policy, on_retry=on_retry, **kwargs
            )
            response = result.response
            if response.outcome is Outcome.ACCEPTED:
                summary.sent += batch.count
                outcome = "accepted"
            elif response.outcome is Outcome.REFUSED:
                summary.failed += batch.count
                outcome = "refused"
            elif response.outcome is Outcome.FATAL:
                summary.failed += batch.count
                summary.stopped = f"LINE refused the request ({response.describe()}); stopped"
                outcome = "fatal"
            else:
                summary.failed += batch.count
                outcome = "failed"
            report = BatchReport(
                batch.number,
                batch.count,
                batch.first_row,
                batch.last_row,
                outcome,
                response.status,
                result.attempts,
                response.message if response.status else response.describe(),
            )
            if outcome != "accepted":
                summary.problems.append(report)
            observer.batch_done(report)
    finally:
        if not pending.done():
            await asyncio.wait([pending])
        await client.aclose()
        if spool is not None:
            spool.close()
    summary.skipped_invalid = summary.invalid.rows
    return summary


def _dry_run_request(client: Any, batch: Batch) -> bytes:
    head = {
        "batch": batch.number,
        "rows": [batch.first_row, batch.last_row],
        "method": "POST",
        "url": client.url,
        "headers": client.shown_headers(line_uid=batch.line_uid),
    }
    return orjson.dumps(head)[:-1] + b',"body":' + batch.body() + b"}"
