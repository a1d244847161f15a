"""What a strict CSV reader refuses, in words an operator can act on, and on which line.

Audience files and conversion exports are read with `csv.reader(strict=True)`: a lenient
reader turns a stray quote into one value holding the rest of the file, silently. The strict
one only says "unexpected end of data" for that, at the file's end; `InputError`s made here
name the row where the quote was opened.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from core.errors import InputError

UNCLOSED_QUOTE = (
    'a quoted field (") opened in this row is never closed, so the rest of the file would be '
    "one value: close or remove the quote"
)


def unreadable_csv(path: Path, error: csv.Error, line: int) -> InputError:
    """`error` from reading `path`, `line` being where the reader was. A quote left open is
    located by reading the file again (this path only): the last row a lenient reader finds
    starts where it was opened."""
    source = str(path)
    if "unexpected end of data" not in str(error):
        return InputError(str(error), source=source, location=f"line {line}")
    start = next_start = 1
    with (
        contextlib.suppress(OSError, UnicodeDecodeError, csv.Error),
        path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle,
    ):
        lenient = csv.reader(handle)
        for _row in lenient:
            start = next_start
            next_start = lenient.line_num + 1
    return InputError(UNCLOSED_QUOTE, source=source, location=f"line {start}")
