"""`lcc webhook serve` and `lcc webhook import FILE`: LINE webhook events into the data dir."""

from __future__ import annotations

import argparse
import os
import signal
from types import FrameType

from core.errors import InputError
from core.store import Store
from core.webhook import create_webhook_app, import_file
from tui.output import EXIT_OK, print_json, settings_from, stderr, stdout_console


def run(args: argparse.Namespace) -> int:
    if args.webhook_command == "serve":
        return _serve(args)
    return _import(args)


def _store(args: argparse.Namespace) -> Store:
    settings = settings_from(args)
    return Store(settings.data_dir, system_identifier=settings.system_identifier)


def channel_secret(variable: str) -> bytes:
    """The secret from the named variable, read once at start; its value is never printed."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise InputError(
            f"environment variable {variable} is not set or empty; it must hold the channel "
            "secret (LINE Developers Console, Basic settings)",
            source="--channel-secret-env",
        )
    return value.strip().encode("utf-8")


class _StopRequested(Exception):
    """SIGTERM after uvicorn's orderly shutdown: a normal stop, exit 0."""


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if not 0.01 <= args.flush_interval <= 60:
        raise InputError(
            f"{args.flush_interval:g} is out of bounds: 0.01..60 seconds",
            source="--flush-interval",
        )
    secret = channel_secret(args.channel_secret_env)
    store = _store(args)

    def log(message: str) -> None:
        stderr.print(f"lcc webhook: {message}", markup=False)

    app = create_webhook_app(
        store,
        secret,
        account=args.account,
        flush_interval=args.flush_interval,
        log=log,
    )
    log(
        f"listening on http://{args.host}:{args.port}/webhook "
        f"(events stored under {store.data_dir / 'webhook'}); ctrl+c stops"
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    previous = signal.signal(signal.SIGTERM, _stop_requested)
    try:
        uvicorn.Server(config).run()
    except (KeyboardInterrupt, _StopRequested):
        pass  # uvicorn re-raises the signal after its orderly shutdown: events are written
    finally:
        signal.signal(signal.SIGTERM, previous)
    stats = app.state.ingestor.stats
    log(
        f"stopped: {stats.received} event(s) received, {stats.stored} stored, "
        f"{stats.duplicates} duplicate(s) ignored, {stats.writes} write(s)"
    )
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    store = _store(args)
    result = import_file(store, args.file, account=args.account)
    if args.json:
        print_json(
            {
                "bodies": result.bodies,
                "events": result.events,
                "stored": result.stored,
                "duplicates": result.duplicates,
            }
        )
    else:
        stdout_console().print(
            f"{args.file}: {result.events} event(s) in {result.bodies} body/bodies; "
            f"{result.stored} stored, {result.duplicates} already stored (ignored)",
            markup=False,
        )
    return EXIT_OK
