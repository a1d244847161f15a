"""Shared plumbing for headless commands: settings from flags, output streams, error handling.

With `--json`, stdout holds exactly one JSON document; narration and progress go to stderr.
A bad input prints what is wrong and where, and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.text import Text

from core.errors import InputError, LccError, NotFound, StoreError

if TYPE_CHECKING:
    from core.settings import Settings

# core.settings (pydantic-settings) is imported where it is used: the console draws its first
# frame before paying for it.

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def settings_from(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    from core.settings import load_settings

    try:
        return load_settings(
            data_dir=getattr(args, "data_dir", None),
            line_api_base=getattr(args, "line_api_base", None),
            capi_base=getattr(args, "capi_base", None),
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in error["loc"])
        raise InputError(error["msg"], source="settings", location=name) from None


def actor(via: str) -> str:
    """Who did it, as a campaign's history records it: `console:<user>`, `cli:<user>`."""
    try:
        return f"{via}:{getpass.getuser()}"
    except (KeyError, OSError):
        return via


def print_json(document: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(document) + b"\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Print an error; the message is data (it may quote a user's input) and is never markup."""
    stderr.print(Text.assemble(("lcc:", "bold red"), " ", message), highlight=False)


def not_yet(feature: str, issue: int) -> int:
    fail(f"{feature} is not available in this version yet (planned in issue {issue}).")
    return EXIT_BAD_INPUT


def _crash_log(exc: BaseException) -> Path | None:
    try:
        from core.settings import load_settings

        settings = load_settings()
        folder = settings.data_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / "crash.log"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()}\n")
            handle.write("".join(traceback.format_exception(exc)))
        path.chmod(0o600)
        return path
    except Exception:
        return None


def guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return run(args)
    except InputError as exc:
        fail(exc.describe())
        return EXIT_BAD_INPUT
    except (NotFound, StoreError) as exc:
        fail(str(exc))
        return EXIT_BAD_INPUT
    except LccError as exc:
        fail(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as exc:
        path = _crash_log(exc)
        where = f"; details in {path}" if path else ""
        fail(f"internal error: {type(exc).__name__}: {exc}{where}")
        return EXIT_FAILED
