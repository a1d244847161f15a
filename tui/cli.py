"""The `lcc` command line (contract section 3).

Each command's handler lives in `tui.commands.<module>` and is imported only when that command
runs, so headless commands never import Textual and start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The settings flags, accepted before or after the command (`lcc --data-dir X demo`).

    A subcommand's copy defaults to "not given" so it never overwrites a value given before it.
    """
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("settings (override LCC_* environment variables)")
    group.add_argument("--data-dir", default=default, help="where the TinyDB files and logs live")
    group.add_argument(
        "--line-api-base",
        default=default,
        help="'sandbox' or a base URL such as https://api.line.me",
    )
    group.add_argument(
        "--capi-base", default=default, help="'sandbox' or https://conversion-api.tr.line.me"
    )


def _file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a fixture file (contract section 4)")


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON document")


def _console(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-mouse",
        action="store_true",
        default=argparse.SUPPRESS,
        help="leave the mouse to the terminal (for its own text selection)",
    )


def _validate(p: argparse.ArgumentParser) -> None:
    _file(p)
    _json_flag(p, "the issues")


def _preview(p: argparse.ArgumentParser) -> None:
    _file(p)
    p.add_argument(
        "--profile", metavar="ID", help="render for this profile instead of the blank one"
    )


def _replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", metavar="FILE", nargs="+", help="fixture files to replay in order")
    _json_flag(p, "the outcome")


def _import(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", metavar="FILE", nargs="+", help="fixture files to import")
    p.add_argument(
        "--no-campaign",
        action="store_true",
        help="only the workspaces, sender accounts and segments, not the campaigns",
    )
    _json_flag(p, "what was stored")


def _kill_switch(p: argparse.ArgumentParser) -> None:
    p.add_argument("account_id", metavar="ACCOUNT_ID", help="the sender account's id")
    p.add_argument("--reason", required=True, help="why (each campaign's history keeps it)")
    _json_flag(p, "the campaigns suspended and held")


def _log(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    _json_flag(p, "the report")
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the report as CSV rows (section,key,value,detail); '-' for stdout",
    )


def _sandbox(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="a loopback address (127.0.0.1)")
    p.add_argument("--port", type=int, default=8931, help="default: 8931")
    p.add_argument(
        "--allow-remote", action="store_true", help="listen on a non-loopback --host anyway"
    )
    faults = p.add_argument_group("faults (combine freely)")
    faults.add_argument("--fail-first", type=int, metavar="N", help="the first N sends answer 500")
    faults.add_argument("--random-5xx", type=float, metavar="RATE", help="a share 0..1 answer 500")
    faults.add_argument(
        "--lost-answer", type=float, metavar="RATE", help="a share 0..1 accepted, answer lost"
    )
    faults.add_argument("--latency-ms", type=float, metavar="MS", help="every request waits MS")
    faults.add_argument(
        "--monthly-quota", type=int, metavar="N", help="messages per month before LINE's 429"
    )
    faults.add_argument("--seed", type=int, metavar="S", help="seeds the random faults (0)")
    faults.add_argument(
        "--faults", metavar="FILE", help="a JSON list of faults, like a fixture's sandbox.faults"
    )
    p.add_argument(
        "--no-rate-limits", action="store_true", help="do not answer 429 beyond LINE's limits"
    )
    p.add_argument(
        "--state", metavar="FILE", help="load accepted retry keys and deliveries; save on exit"
    )


def _scheduler(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="one pass, wait for its work, then exit")


def _serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="serve `lcc demo` instead of `lcc`")


COMMANDS: list[Command] = [
    Command(
        "demo",
        "tui.commands.console",
        "open the console on a fresh demo data dir (sandbox)",
        _console,
    ),
    Command(
        "validate",
        "tui.commands.validate",
        "pre-launch validation of a fixture's campaign",
        _validate,
    ),
    Command(
        "preview",
        "tui.commands.preview",
        "print each message as a LINE user would see it",
        _preview,
    ),
    Command("replay", "tui.commands.replay", "replay fixture campaigns headless", _replay),
    Command(
        "import",
        "tui.commands.importer",
        "store fixtures' accounts and segments (and campaigns, as Drafts) for the console",
        _import,
    ),
    Command(
        "kill-switch",
        "tui.commands.kill_switch",
        "suspend every Active campaign of one sender account, hold its Planned ones",
        _kill_switch,
    ),
    Command("log", "tui.commands.log", "print a campaign's delivery log", _log),
    Command("report", "tui.commands.report", "a campaign's report", _report),
    Command("sandbox", "tui.commands.sandbox", "serve the LINE simulator over HTTP", _sandbox),
    Command(
        "scheduler",
        "tui.commands.scheduler",
        "launch due campaigns, resume interrupted ones, run due exports",
        _scheduler,
    ),
    Command("serve", "tui.commands.serve", "serve the console to a browser", _serve),
]


def _insights(parser: argparse.ArgumentParser) -> None:
    inner = parser.add_subparsers(dest="insights_command", required=True, metavar="ACTION")
    fetch = inner.add_parser("fetch", help="fetch and store the statistics of a campaign's unit")
    fetch.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    fetch.add_argument(
        "--force", action="store_true", help="fetch again even when the stored figures are final"
    )
    _json_flag(fetch, "the statistics")
    _common(fetch)
    fetch.set_defaults(handler_module="tui.commands.insights")


def _capi_options(p: argparse.ArgumentParser) -> None:
    """The seed's export settings (bounds are checked in core, so saved jobs get them too)."""
    p.add_argument("--tag-id", required=True, help="the LINE Tag ID (a UUID)")
    p.add_argument(
        "--token-env",
        metavar="VAR",
        help="environment variable holding the access token (needed unless capi_base is sandbox)",
    )
    p.add_argument("--channel-id", help="LINE channel that issued the line_uid values (digits)")
    p.add_argument("--batch-size", type=int, default=1000, help="events per request, 1000..100000")
    p.add_argument(
        "--ignore-invalid-records",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip invalid rows and send the rest (default: on); off: any invalid row stops "
        "the whole file before anything is sent",
    )
    p.add_argument("--max-retry", type=int, default=8, help="retries per batch, 1..10 (8)")
    p.add_argument(
        "--initial-retry-wait", type=int, default=15, help="seconds before the first retry, 1..30"
    )
    p.add_argument(
        "--max-retry-wait", type=int, default=3600, help="longest wait between retries, 100..7200"
    )
    p.add_argument(
        "--connection-timeout", type=int, default=300, help="seconds per request, 10..600 (300)"
    )
    p.add_argument(
        "--phone-region",
        default="JP",
        metavar="CC",
        help="region of phone numbers written without a country code (JP)",
    )


def _capi(parser: argparse.ArgumentParser) -> None:
    inner = parser.add_subparsers(dest="capi_command", required=True, metavar="ACTION")
    export = inner.add_parser(
        "export",
        help="send conversion events from a CSV or JSONL file",
        description="Send conversion events from a CSV or JSONL file to the LINE Conversion API."
        " Exit 0 all sent, 1 some rejected or failed, 2 bad input or options.",
    )
    export.add_argument("file", metavar="FILE", help="CSV (with a header) or JSONL")
    _capi_options(export)
    export.add_argument(
        "--dry-run",
        action="store_true",
        help="print each request (hashed, without the token) as a JSON line; send nothing",
    )
    _json_flag(export, "the outcome")
    _common(export)
    export.set_defaults(handler_module="tui.commands.capi")

    jobs = inner.add_parser("jobs", help="saved export jobs, run by `lcc scheduler`")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="save an export job")
    add.add_argument("name", metavar="NAME")
    add.add_argument("file", metavar="FILE", help="the CSV or JSONL file each run exports")
    _capi_options(add)
    add.add_argument(
        "--schedule",
        default="",
        metavar="CRON",
        help="cron with Treasure Data's semantics or @hourly/@daily/...; '' runs only by hand",
    )
    add.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA time zone (UTC)")
    add.add_argument("--delay", default="0", help="start this long after each time: 90s, 15m, 2h")
    add.add_argument(
        "--max-failures",
        type=int,
        default=3,
        metavar="N",
        help="disable the job after N consecutive failed runs (3)",
    )
    add.add_argument("--disabled", action="store_true", help="save it disabled")
    add.add_argument("--replace", action="store_true", help="overwrite a job of the same name")
    _json_flag(add, "the saved job")
    listing = actions.add_parser("list", help="the saved jobs, their last runs and next run times")
    _json_flag(listing, "the jobs")
    show = actions.add_parser("show", help="one job with its recent runs")
    show.add_argument("name", metavar="NAME")
    _json_flag(show, "the job")
    for action, text in (
        ("remove", "delete a saved job"),
        ("enable", "enable a job (its failure count restarts; missed times are not run)"),
        ("disable", "disable a job"),
    ):
        child = actions.add_parser(action, help=text)
        child.add_argument("name", metavar="NAME")
    run = actions.add_parser("run", help="run a job now, whatever its schedule")
    run.add_argument("name", metavar="NAME")
    _json_flag(run, "the run")
    for child in actions.choices.values():
        _common(child)
        child.set_defaults(handler_module="tui.commands.capi")


def _cron(parser: argparse.ArgumentParser) -> None:
    inner = parser.add_subparsers(dest="cron_command", required=True, metavar="ACTION")
    nxt = inner.add_parser(
        "next",
        help="the next run times of a schedule",
        description="Print the next run times of EXPR, one ISO-8601 time with offset per line, "
        "strictly after --from. Exit 2 on a bad expression.",
    )
    nxt.add_argument("expr", metavar="EXPR", help="five fields, or @hourly, @daily, ...")
    nxt.add_argument(
        "--from", dest="start", metavar="ISO", help="strictly after this time (default: now)"
    )
    nxt.add_argument("--count", type=int, default=5, help="how many (5)")
    nxt.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA time zone (UTC)")
    _common(nxt)
    nxt.set_defaults(handler_module="tui.commands.cron")


def _webhook(parser: argparse.ArgumentParser) -> None:
    inner = parser.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    account_help = (
        "tag stored events with this sender account id, so the report counts them only for "
        "that account's campaigns (use it when several OAs share a provider)"
    )
    serve = inner.add_parser("serve", help="receive webhook events at POST /webhook")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8932)
    serve.add_argument(
        "--channel-secret-env",
        required=True,
        metavar="VAR",
        help="environment variable holding the channel secret (read once, never printed)",
    )
    serve.add_argument("--account", metavar="ACCOUNT_ID", help=account_help)
    serve.add_argument(
        "--flush-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="longest an acknowledged event waits in memory before it is written (0.5)",
    )
    _common(serve)
    serve.set_defaults(handler_module="tui.commands.webhook")
    imp = inner.add_parser("import", help="store webhook events from a JSON or JSONL file")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--account", metavar="ACCOUNT_ID", help=account_help)
    _json_flag(imp, "the counts")
    _common(imp)
    imp.set_defaults(handler_module="tui.commands.webhook")


GROUPS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("insights", "LINE's aggregate statistics", _insights),
    ("capi", "the LINE Conversion API", _capi),
    ("cron", "schedules with Treasure Data's cron semantics", _cron),
    ("webhook", "LINE webhook events", _webhook),
]
"""Commands with actions of their own (`lcc capi export`); each sets its handler per action."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line, with only the invoked command's options filled in.

    Every command is listed (for `lcc --help` and for a mistyped name), but argparse builds
    options eagerly and all of them took a tenth of the console's start-up, so a command's
    options are added only when its name is among the arguments (any position: a value that
    happens to spell a command name costs a little time, nothing else). Without `argv`, every
    command is built.
    """
    wanted = None if argv is None else set(argv)
    parser = argparse.ArgumentParser(
        prog="lcc",
        description="LINE Campaign Console. Without a command, opens the console.",
    )
    _common(parser, top=True)
    _console(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        child.set_defaults(handler_module=command.module)
        if wanted is None or command.name in wanted:
            command.configure(child)
            _common(child)
    for name, text, configure in GROUPS:
        group = sub.add_parser(name, help=text)
        if wanted is None or name in wanted:
            configure(group)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    module_name = getattr(args, "handler_module", "tui.commands.console")
    module = importlib.import_module(module_name)
    from tui.output import guarded

    return guarded(module.run, args)


if __name__ == "__main__":
    sys.exit(main())
