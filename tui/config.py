"""The console's own config file: keymap, theme, mouse, animations.

TOML at ``platformdirs.user_config_dir("lcc")/config.toml``, or wherever ``LCC_CONFIG_FILE``
points. Example::

    theme = "ansi-dark"
    mouse = true
    animations = false        # or "none", "basic", "full"

    [keymap]
    "campaigns.new" = "ctrl+n"
    "app.help" = "f1,question_mark"

A file with mistakes never stops the console: each bad key is reported (file and key named) and
its default is used instead. The console rewrites only the ``theme`` line, and only when the
operator switches theme, so comments and everything else in the file survive.

This module imports nothing heavy (no Textual, no domain models), so reading the file costs
nothing at startup.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from core.errors import InputError

CONFIG_ENV = "LCC_CONFIG_FILE"
AnimationLevel = Literal["none", "basic", "full"]
ANIMATION_LEVELS: tuple[AnimationLevel, ...] = ("none", "basic", "full")
_BINDING_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
_KEY_NAME = re.compile(r"^[a-z0-9_\-]+$|^.$", re.IGNORECASE)
_THEME_LINE = re.compile(r"^\s*theme\s*=")
_TABLE_LINE = re.compile(r"^\s*\[")
KNOWN_KEYS = ("theme", "mouse", "animations", "keymap")


def default_config_path() -> Path:
    """`LCC_CONFIG_FILE` when set, else config.toml in the platform's user config dir."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("lcc", appauthor=False)) / "config.toml"


@dataclass
class ConsoleConfig:
    """Effective settings; `problems` lists what was wrong in the file (already replaced)."""

    path: Path | None = None
    """Where the theme is persisted; None keeps everything in memory (tests, snapshots)."""
    theme: str | None = None
    mouse: bool = True
    animations: AnimationLevel = "none"
    keymap: dict[str, str] = field(default_factory=dict)
    problems: list[InputError] = field(default_factory=list)


def _problem(path: Path, key: str, message: str) -> InputError:
    return InputError(message, source=str(path), location=key)


def load_config(path: Path | None = None) -> ConsoleConfig:
    """The config at `path` (default: `default_config_path()`); a missing file is all defaults."""
    path = path or default_config_path()
    config = ConsoleConfig(path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return config
    except OSError as exc:
        config.problems.append(
            InputError(f"cannot read: {exc.strerror}; using the defaults", source=str(path))
        )
        return config
    import tomllib  # only when there is a file: most consoles start without one

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        config.problems.append(InputError("not UTF-8 text; using the defaults", source=str(path)))
        return config
    except tomllib.TOMLDecodeError as exc:
        config.problems.append(
            InputError(f"not valid TOML ({exc}); using the defaults", source=str(path))
        )
        return config
    _apply(config, data, path)
    return config


def _apply(config: ConsoleConfig, data: dict[str, Any], path: Path) -> None:
    for key in data:
        if key not in KNOWN_KEYS:
            config.problems.append(
                _problem(path, key, f"unknown setting; expected one of {', '.join(KNOWN_KEYS)}")
            )
    if "theme" in data:
        theme = data["theme"]
        if isinstance(theme, str) and theme.strip():
            config.theme = theme.strip()
        else:
            config.problems.append(_problem(path, "theme", "expected a theme name in quotes"))
    if "mouse" in data:
        mouse = data["mouse"]
        if isinstance(mouse, bool):
            config.mouse = mouse
        else:
            config.problems.append(_problem(path, "mouse", "expected true or false"))
    if "animations" in data:
        level = _animation_level(data["animations"])
        if level is None:
            config.problems.append(
                _problem(path, "animations", 'expected true, false, "none", "basic" or "full"')
            )
        else:
            config.animations = level
    if "keymap" in data:
        keymap = data["keymap"]
        if not isinstance(keymap, dict):
            config.problems.append(
                _problem(path, "keymap", 'expected a table: [keymap] "binding.id" = "key"')
            )
        else:
            config.keymap = _keymap(keymap, path, config.problems)


def _animation_level(value: Any) -> AnimationLevel | None:
    if value is True:
        return "full"
    if value is False:
        return "none"
    if isinstance(value, str) and value in ANIMATION_LEVELS:
        return value
    return None


def _keymap(table: dict[str, Any], path: Path, problems: list[InputError]) -> dict[str, str]:
    keymap: dict[str, str] = {}
    for binding_id, keys in table.items():
        where = f"keymap.{binding_id}"
        if not _BINDING_ID.match(binding_id):
            problems.append(_problem(path, where, "not a binding id (e.g. campaigns.new)"))
            continue
        if not isinstance(keys, str):
            problems.append(_problem(path, where, 'expected keys in quotes, e.g. "ctrl+n"'))
            continue
        parts = [part.strip() for part in keys.split(",")]
        bad = [part for part in parts if not _is_key(part)]
        if bad:
            problems.append(
                _problem(
                    path,
                    where,
                    f"{keys!r} is not a key list; use names like ctrl+n, f2, "
                    "question_mark, separated by commas",
                )
            )
            continue
        keymap[binding_id] = ",".join(parts)
    return keymap


def _is_key(text: str) -> bool:
    """ctrl+n, f2, shift+tab, question_mark, a single character: modifiers joined by +."""
    if len(text) == 1:
        return True
    pieces = text.split("+")
    return all(piece and _KEY_NAME.match(piece) for piece in pieces)


def unknown_binding_ids(config: ConsoleConfig, known: set[str]) -> list[InputError]:
    """Keymap entries naming no binding the console has (a typo would otherwise do nothing)."""
    path = config.path or Path(CONFIG_ENV)
    return [
        _problem(path, f"keymap.{binding_id}", "no binding has this id; see the help screen (F1)")
        for binding_id in config.keymap
        if binding_id not in known
    ]


def save_theme(path: Path, theme: str) -> None:
    """Write `theme = "<theme>"` into the file, keeping every other line as it was."""
    import json

    line = f"theme = {json.dumps(theme)}\n"
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        lines = []
    for index, existing in enumerate(lines):
        if _TABLE_LINE.match(existing):
            lines.insert(index, line)
            break
        if _THEME_LINE.match(existing):
            lines[index] = line
            break
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(line)
    _atomic_write(path, "".join(lines).encode("utf-8"))


def _atomic_write(path: Path, payload: bytes) -> None:
    """Temporary file, fsync, rename: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
