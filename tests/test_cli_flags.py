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


SAMPLE_COMMAND_LINES = [
    ["demo", "--no-mouse"],
    ["--data-dir", "X", "validate", "f.json", "--json"],
    ["preview", "f.json", "--profile", "p-1"],
    ["replay", "a.json", "b.json", "--json"],
    ["log", "cmp-1", "--format", "csv"],
    ["report", "cmp-1", "--csv", "-"],
    ["sandbox", "--port", "9000", "--fail-first", "2"],
    ["scheduler", "--once"],
    ["serve", "--demo"],
    ["insights", "fetch", "cmp-1", "--force"],
    ["capi", "export", "f.csv", "--tag-id", "t", "--no-ignore-invalid-records"],
    ["capi", "jobs", "add", "j", "f.csv", "--tag-id", "t", "--schedule", "@daily"],
    ["capi", "jobs", "run", "j", "--json"],
    ["cron", "next", "@hourly", "--count", "2"],
    ["webhook", "serve", "--channel-secret-env", "S"],
    ["webhook", "import", "e.jsonl"],
    [],
]


@pytest.mark.parametrize("argv", SAMPLE_COMMAND_LINES)
def test_the_parser_built_for_a_command_line_reads_it_as_the_whole_parser_does(
    argv: list[str],
) -> None:
    assert build_parser(argv).parse_args(argv) == build_parser().parse_args(argv)


def test_every_command_is_listed_and_known_when_only_one_is_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser(["--help"]).parse_args(["--help"])
    listed = capsys.readouterr().out
    names = ["demo", "validate", "preview", "replay", "log", "report", "sandbox", "scheduler"]
    for name in [*names, "serve", "insights", "capi", "cron", "webhook"]:
        assert name in listed
    with pytest.raises(SystemExit):
        build_parser(["capi", "--help"]).parse_args(["capi", "--help"])
    assert "export" in capsys.readouterr().out
