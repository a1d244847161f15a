"""Large conversion files read by worker processes give exactly what one reader gives."""

from __future__ import annotations

import io
import itertools
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core import capi_parallel
from core.capi import EventBuilder, ExportObserver, ExportSummary, InputFile, _csv_batches
from core.capi_parallel import header_end, stretch_bounds
from core.errors import InputError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
HEADER = "deduplication_key,event_type,source_type,event_timestamp,email,line_uid,title,value"


def rows(count: int, *, quirks: bool = True) -> list[str]:
    lines = []
    for row in range(1, count + 1):
        email = "bad" if row % 97 == 0 else f"u{row}@example.com"
        uid = "U" + f"{row:032x}" if row % 250 == 0 else ""
        title = f"Sale {row}"
        if quirks and row % 40 == 0:
            title = f'"A title with a newline\nand ""quotes"", row {row}"'
        if quirks and row % 333 == 0:
            lines.append("")
        if quirks and row % 501 == 0:
            lines.append("k,conversion,web")  # too few values
        lines.append(f"k{row},conversion,web,{TS},{email},{uid},{title},{row % 7}")
    return lines


def write(path: Path, lines: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = ("\ufeff" if bom else "") + newline.join([HEADER, *lines]) + newline
    path.write_bytes(text.encode())
    return path


def run(path: Path, **knobs: Any) -> tuple[list[Any], list[Any], int]:
    source = InputFile(path)
    builder = EventBuilder(now=NOW, channel_id="1657000000")
    summary = ExportSummary()
    batches = _csv_batches(source, builder, summary, ExportObserver(), 700, **knobs)
    made = [(b.number, b.first_row, b.last_row, b.line_uid, b.body()) for b in batches]
    return made, [p.as_dict() for p in summary.invalid], summary.rows


PARALLEL = {"workers": 2, "parallel_min_bytes": 0, "stretch_bytes": 20_000}


@pytest.mark.parametrize(
    ("newline", "bom"), [("\n", False), ("\r\n", False), ("\n", True)], ids=["lf", "crlf", "bom"]
)
def test_workers_read_exactly_what_one_reader_reads(
    tmp_path: Path,
    newline: str,
    bom: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path / "big.csv", rows(3000), newline=newline, bom=bom)
    serial = run(path, workers=1)
    read_here: list[int | None] = []
    reader = capi_parallel._here

    def counted(source: Any, builder: Any, offset: int | None, line_base: int) -> Any:
        read_here.append(offset)
        return reader(source, builder, offset, line_base)

    monkeypatch.setattr(capi_parallel, "_here", counted)
    with caplog.at_level(logging.INFO, logger="core.capi_parallel"):
        parallel = run(path, **PARALLEL)
    assert not caplog.records, "the workers read the whole file"
    assert read_here == [], "no row was read in this process"
    assert parallel == serial
    made, invalid, count = serial
    assert count == 3000 + 5  # the short rows count; blank lines do not
    assert len(invalid) == 30 + 5
    assert any(b[3] for b in made), "line_uid rows flag their batch"
    assert len(made) > 4


def test_a_literal_quote_in_an_unquoted_field_falls_back_to_one_reader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`ab"c` defeats the quote-parity split; the strict workers notice, this process reads on."""
    lines = rows(3000)
    lines[101] = lines[101].replace("Sale ", 'Sale "')  # flips the parity of every later line
    assert '"' in lines[101]
    path = write(tmp_path / "quote.csv", lines)
    with caplog.at_level(logging.INFO, logger="core.capi_parallel"):
        assert run(path, **PARALLEL) == run(path, workers=1)
    assert "read on in one process" in caplog.text


def test_a_malformed_file_fails_at_the_same_line_either_way(tmp_path: Path) -> None:
    lines = rows(3000)
    lines[2000] += "x" * 200_000  # past csv's field limit
    path = write(tmp_path / "huge_field.csv", lines)
    errors = []
    for knobs in ({"workers": 1}, PARALLEL):
        with pytest.raises(InputError) as caught:
            run(path, **knobs)
        errors.append(caught.value.describe())
    assert errors[0] == errors[1]
    assert "line" in errors[0]


def test_stretches_end_only_after_newlines_outside_quotes() -> None:
    data = b'h\n"a\nb",1\n' * 50 + b"x,2\n"
    bounds = list(stretch_bounds(io.BytesIO(data), 2, len(data), 7))
    assert bounds[0][0] == 2 and bounds[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    for _start, end in bounds[:-1]:
        assert data[end - 1 : end] == b"\n"
        assert data[2:end].count(b'"') % 2 == 0


def test_the_header_end_is_found_only_when_certain(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.csv", rows(3, quirks=False))
    columns = tuple(HEADER.split(","))
    assert header_end(plain, columns) == (len(HEADER) + 1, 1)
    old_mac = tmp_path / "cr.csv"
    old_mac.write_bytes((HEADER + "\r" + "\r".join(rows(3, quirks=False))).encode())
    assert header_end(old_mac, columns) is None
