"""Fixture files (contract section 4): one JSON file holding a whole world for one campaign."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, Field, ValidationError

from core.errors import InputError
from core.models import CampaignSpec, CampaignState, Segment, SenderAccount, StrictModel
from core.sandbox.faults import SandboxSpec


class Expectations(StrictModel):
    state: CampaignState | None = None
    delivered: int | None = Field(default=None, ge=0)
    failed: int | None = Field(default=None, ge=0)
    excluded: int | None = Field(default=None, ge=0)


class Fixture(StrictModel):
    fixture_version: Literal[1]
    workspace: str = Field(min_length=1)
    sender_accounts: list[SenderAccount] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    campaign: CampaignSpec
    clock: AwareDatetime | None = None
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)
    expect: Expectations | None = None


@dataclass(frozen=True)
class LoadedFixture:
    path: Path
    fixture: Fixture


_TAGS = {"textV2", "imagemap", "unsupported", "uri", "message", "clipboard"}


def json_path(loc: tuple[int | str, ...]) -> str:
    """`('campaign', 'messages', 0, 'textV2', 'text')` -> `campaign.messages[0].text`."""
    out = ""
    parts = list(loc)
    for index, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        previous = parts[index - 1] if index else None
        if part in _TAGS and isinstance(previous, int):
            continue  # the union member pydantic tried, not a key in the file
        if part.startswith(("function-", "tagged-union[")):
            continue
        out += f".{part}" if out else part
    return out or "(top level)"


def describe_validation_error(exc: ValidationError, source: str, prefix: str = "") -> InputError:
    problems = []
    for error in exc.errors(include_url=False):
        path = json_path(tuple(error["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append((path, message))
    first_path, first_message = problems[0]
    more = "".join(f"\n  {path}: {message}" for path, message in problems[1:])
    return InputError(first_message + more, source=source, location=first_path)


def parse_json_bytes(raw: bytes, source: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _raise_json_error(exc, raw, source)


def _raise_json_error(exc: orjson.JSONDecodeError, raw: bytes, source: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    line = text.count("\n", 0, exc.pos) + 1
    column = exc.pos - (text.rfind("\n", 0, exc.pos) + 1) + 1
    raise InputError(
        f"not valid JSON ({exc.msg})", source=source, location=f"line {line}, column {column}"
    ) from None


def load_fixture(path: Path | str) -> LoadedFixture:
    """Parse and check a fixture; paths inside it become absolute (relative to the file)."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a fixture JSON file", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    data = parse_json_bytes(raw, source)
    if not isinstance(data, dict):
        raise InputError("a fixture is a JSON object", source=source, location="(top level)")
    if data.get("fixture_version") not in (1, None):
        raise InputError(
            f"fixture_version {data.get('fixture_version')!r} is not supported (this lcc reads 1)",
            source=source,
            location="fixture_version",
        )
    try:
        fixture = Fixture.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, source) from None
    base = path.resolve().parent
    segments = []
    for index, segment in enumerate(fixture.segments):
        if segment.profiles_file is not None:
            target = (base / segment.profiles_file).resolve()
            if not target.is_file():
                raise InputError(
                    f"profiles_file {segment.profiles_file!r} not found (looked at {target})",
                    source=source,
                    location=f"segments[{index}].profiles_file",
                )
            segment = segment.model_copy(update={"profiles_file": str(target)})
        segments.append(segment)
    fixture = fixture.model_copy(update={"segments": segments})
    return LoadedFixture(path=path, fixture=fixture)
