"""What a strict CSV reader refuses, in words an operator can act on, and on which line.

Audience files and conversion exports are read with `csv.reader(strict=True)`: a lenient
reader turns a stray quote into one value holding the rest of the file, silently. The strict
one only says "unexpected end of data" for that, at the file's end; `InputError`s made here
name the row where the quote was opened.
"""

from __future__ import annotations

import csv
from pathlib import Path

from core.errors import InputError

UNCLOSED_QUOTE = (
    'a quoted field (") opened in this row is never closed, so the rest of the file would be '
    "one value: close or remove the quote"
)


def unreadable_csv(path: Path, error: csv.Error, line: int) -> InputError:
    """`error` from reading `path`, `line` being where the reader was. A quote left open shows
    as the file ending inside a field, or as a field past the csv module's limit (128 KB) a few
    thousand rows on; either way the row it opened in is found by reading the file again (this
    path only)."""
    source = str(path)
    text = str(error)
    if "unexpected end of data" in text:
        message = UNCLOSED_QUOTE
    elif "field larger than field limit" in text:
        message = f'{text}: most likely a quote (") opened in this row is never closed'
    else:
        return InputError(text, source=source, location=f"line {line}")
    return InputError(message, source=source, location=f"line {_last_row_start(path)}")


def _last_row_start(path: Path) -> int:
    """The line the last row a lenient reader gets to starts on (the one it fails in, if it
    fails)."""
    start = next_start = 1
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            lenient = csv.reader(handle)
            for _row in lenient:
                start = next_start
                next_start = lenient.line_num + 1
    except csv.Error:
        return next_start
    except OSError:
        pass
    return start
