"""The settings flags work before or after the command, and a later one is never undone."""

from __future__ import annotations

import pytest

from tui.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "X", "demo"],
        ["demo", "--data-dir", "X"],
        ["--data-dir", "X", "log", "cmp-1"],
        ["--data-dir", "X", "capi", "export", "f.csv", "--tag-id", "t"],
        ["insights", "fetch", "cmp-1", "--data-dir", "X"],
        ["--data-dir", "X"],
    ],
)
def test_data_dir_is_kept_wherever_it_is_given(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).data_dir == "X"


def test_flags_not_given_stay_unset() -> None:
    args = build_parser().parse_args(["replay", "a.json"])
    assert (args.data_dir, args.line_api_base, args.capi_base) == (None, None, None)
