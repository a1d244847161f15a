"""`lcc serve`: the same console in a browser, through textual-serve.

Each browser tab starts its own console process (`python -m tui`, with the same data dir and
base URLs as this command, or `demo`), talking to the page over a websocket.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from tui.output import EXIT_OK, settings_from, stderr


def console_command(args: argparse.Namespace) -> list[str]:
    """The command line textual-serve runs per browser connection."""
    settings = settings_from(args)
    command = [sys.executable, "-m", "tui"]
    if getattr(args, "demo", False):
        command.append("demo")
        return command
    command += ["--data-dir", str(settings.data_dir.expanduser().resolve())]
    command += ["--line-api-base", settings.line_api_base, "--capi-base", settings.capi_base]
    return command


def run(args: argparse.Namespace) -> int:
    from textual_serve.server import Server

    command = shlex.join(console_command(args))
    url = f"http://{args.host}:{args.port}"
    stderr.print(f"lcc: serving the console at {url} (ctrl+c to stop)", highlight=False)
    server = Server(command, host=args.host, port=args.port, title="LINE Campaign Console")
    server.serve()
    return EXIT_OK
