"""Audience resolution: streaming, exclusions and their reasons, the reach funnel."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from core.audience import (
    Exclusion,
    funnel,
    iter_rows,
    read_rows_csv,
    resolve,
    resolve_batches,
)
from core.errors import InputError
from core.models import Profile, Segment

A = "U" + "a" * 32
B = "U" + "b" * 32


def segment(*profiles: Profile) -> Segment:
    return Segment(parent_segment="All", segment="S", profiles=list(profiles))


def test_each_reason_and_the_first_holder_of_an_id_wins() -> None:
    seg = segment(
        Profile(profile_id="p1", line_user_id=A),
        Profile(profile_id="p2", line_user_id=None),
        Profile(profile_id="p3", line_user_id=""),
        Profile(profile_id="p4", line_user_id=A.upper()),
        Profile(profile_id="p5", line_user_id="U1234"),
        Profile(profile_id="p6", line_user_id=A),
        Profile(profile_id="p7", line_user_id=B),
    )
    outcome = [(row.profile_id, why) for row, why in resolve(iter_rows(seg))]
    assert outcome == [
        ("p1", None),
        ("p2", Exclusion.MISSING),
        ("p3", Exclusion.MISSING),
        ("p4", Exclusion.INVALID),
        ("p5", Exclusion.INVALID),
        ("p6", Exclusion.DUPLICATE),
        ("p7", None),
    ]
    reach = funnel(seg)
    assert (reach.segment, reach.with_id, reach.valid, reach.unique) == (7, 5, 3, 2)
    assert (reach.missing, reach.invalid, reach.duplicate, reach.excluded) == (2, 2, 1, 5)
    assert [(s.profile_id, s.reason) for s in reach.samples] == [
        ("p2", Exclusion.MISSING),
        ("p3", Exclusion.MISSING),
        ("p4", Exclusion.INVALID),
        ("p5", Exclusion.INVALID),
        ("p6", Exclusion.DUPLICATE),
    ]


def test_funnel_samples_are_bounded(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("profile_id,line_user_id\n" + "".join(f"p{i},\n" for i in range(500)))
    reach = funnel(Segment(parent_segment="A", segment="S", profiles_file=str(csv)))
    assert reach.missing == 500 and len(reach.samples) == 20


def test_csv_rows_stream_with_attributes_and_trimmed_ids(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text(
        f"\ufeffprofile_id,line_user_id,first_name,points\nc1, {A} ,Aiko,120\n\nc2,,Kenji,\n",
        encoding="utf-8",
    )
    rows = list(read_rows_csv(csv))
    assert rows[0].line_user_id == A and dict(rows[0].attributes) == {
        "first_name": "Aiko",
        "points": "120",
    }
    assert rows[1].line_user_id is None
    assert rows[0].profile().attributes["first_name"] == "Aiko"
    assert next(read_rows_csv(csv, attributes=False)).attributes == {}


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        ("", "", "empty file"),
        ("id,user\nx,y\n", "line 1", "profile_id, line_user_id"),
        ("profile_id,line_user_id,a\nx,y\n", "line 2", "2 columns where the header has 3"),
        ("profile_id,line_user_id\n,U\n", "line 2", "profile_id is empty"),
        # a stray quote: the rest of the file is not silently one value
        ('profile_id,line_user_id,a\nx,,ok\ny,,"open\nz,,1\nw,,2\n', "line 3", "never closed"),
        ('profile_id,line_user_id,a\nx,,"a"b\n', "line 2", "',' expected after '\"'"),
    ],
)
def test_bad_csv_names_the_file_and_line(
    tmp_path: Path, content: str, where: str, what: str
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(InputError) as caught:
        list(read_rows_csv(csv))
    assert caught.value.source == str(csv)
    assert (caught.value.location or "") == where
    assert what in caught.value.message


def test_a_quote_left_open_early_in_a_large_file_is_found_where_it_opened(
    tmp_path: Path,
) -> None:
    """The csv module gives up at its field limit (128 KB) thousands of rows later."""
    csv = tmp_path / "large.csv"
    rows = ["profile_id,line_user_id,a", "x,,ok", 'y,,"open']
    rows += [f"p{n},U{n:032x},value{n}" for n in range(20_000)]
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as caught:
        list(read_rows_csv(csv))
    assert caught.value.location == "line 3"
    assert "field limit" in caught.value.message and "never closed" in caught.value.message


def test_a_quoted_field_may_hold_newlines_and_commas(tmp_path: Path) -> None:
    csv = tmp_path / "quoted.csv"
    csv.write_text(f'profile_id,line_user_id,note\nc1,{A},"two\nlines, one value"\nc2,,x\n')
    rows = list(read_rows_csv(csv))
    assert [row.profile_id for row in rows] == ["c1", "c2"]
    assert rows[0].attributes["note"] == "two\nlines, one value"


def test_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    csv = tmp_path / "latin.csv"
    csv.write_bytes(b"profile_id,line_user_id,name\nc1,,\xe9t\xe9\n")
    with pytest.raises(InputError, match="not UTF-8") as caught:
        list(read_rows_csv(csv))
    assert caught.value.location == "line 2"
    assert "byte(s) e9 at column 5" in caught.value.message


@pytest.mark.parametrize("read", ["rows", "batches", "funnel"])
def test_a_byte_that_is_not_utf8_is_found_on_its_line_deep_in_a_file(
    tmp_path: Path, read: str
) -> None:
    """The reader decodes a buffer at a time; the error still names the exact line and column
    (a BOM and multi-byte text before it included)."""
    csv = tmp_path / "export.csv"
    lines = ["\ufeffprofile_id,line_user_id,name"]
    lines += [f"p{n},U{n:032x},山田" for n in range(1, 5000)]
    raw = "\n".join(lines).encode() + b"\np5000,,\xe5\xb1\xb1\x94\n"
    csv.write_bytes(raw)
    segment = Segment(parent_segment="All", segment="S", profiles_file=str(csv))
    with pytest.raises(InputError) as caught:
        if read == "rows":
            list(read_rows_csv(csv))
        elif read == "batches":
            list(resolve_batches(segment))
        else:
            funnel(segment)
    assert caught.value.location == "line 5001"
    assert "byte(s) 94 at column 9" in caught.value.message


def test_a_large_csv_is_streamed_not_held(tmp_path: Path) -> None:
    """100,000 rows: memory grows with the set of seen ids, not with the rows."""
    csv = tmp_path / "big.csv"
    with csv.open("w") as handle:
        handle.write("profile_id,line_user_id,first_name,prefecture\n")
        for i in range(100_000):
            handle.write(f"p{i},U{i:032x},名前{i},東京都\n")
    seg = Segment(parent_segment="A", segment="S", profiles_file=str(csv))
    tracemalloc.start()
    try:
        reach = funnel(seg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reach.unique == 100_000
    # 100,000 Profile objects would take well over 50 MB; ids as ints take a few MB.
    assert peak < 20_000_000, peak


def test_batches_resolve_exactly_as_row_by_row(tmp_path: Path) -> None:
    from core.audience import resolve_batches
    from tests.conftest import FIXTURES

    csv = FIXTURES / "audiences" / "winter_members.csv"
    segment = Segment(parent_segment="M", segment="W", profiles_file=str(csv))
    expected = list(resolve(iter_rows(segment)))
    batches = list(resolve_batches(segment, size=700))
    assert [b.rows for b in batches[:-1]] == [700] * (len(batches) - 1)
    assert sum(b.rows for b in batches) == len(expected) == 3000
    valid = [(r.line_user_id, r.profile_id, dict(r.attributes)) for r, why in expected if not why]
    got = [
        (user_id, profile_id, dict(values))
        for b in batches
        for user_id, profile_id, values in zip(
            b.user_ids, b.profile_ids, b.attributes or [], strict=True
        )
    ]
    assert got == valid
    excluded = [(r.profile_id, why) for r, why in expected if why]
    assert [(r.profile_id, why) for b in batches for r, why in b.excluded] == excluded
    inline = Segment(
        parent_segment="M", segment="I", profiles=[row.profile() for row in iter_rows(segment)]
    )
    assert funnel(inline) == funnel(segment)
