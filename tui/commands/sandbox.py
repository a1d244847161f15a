"""`lcc sandbox`: serve the LINE simulator over HTTP on loopback, with optional faults.

Point the console or a headless command at it with `--line-api-base http://127.0.0.1:8931`.
It is a simulator that accepts any token, so it refuses to listen beyond loopback unless
`--allow-remote` says so.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from core.errors import InputError, LccError
from core.fixture import describe_validation_error, parse_json_bytes
from core.sandbox.faults import Fault, SandboxSpec, spec_from_flags
from core.sandbox.server import base_url, is_loopback_host, serve
from core.sandbox.state import SandboxState
from tui.output import EXIT_OK, stderr, stdout_console

_FAULTS: TypeAdapter[list[Fault]] = TypeAdapter(list[Fault])


def _faults_file(path: str) -> list[Fault]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
    data = parse_json_bytes(raw, path)
    prefix = ""
    if isinstance(data, dict) and "faults" in data:
        data, prefix = data["faults"], "faults"
    if not isinstance(data, list):
        raise InputError(
            "expected a JSON list of faults (like a fixture's sandbox.faults)", source=path
        )
    try:
        return _FAULTS.validate_python(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, path, prefix) from None


def _rate(value: float | None, flag: str) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InputError(f"{flag} is a share between 0 and 1, got {value:g}", source="options")
    return value


def _count(value: float | int | None, flag: str) -> None:
    if value is not None and value < 0:
        raise InputError(f"{flag} cannot be negative, got {value}", source="options")


def spec_from_args(args: argparse.Namespace) -> SandboxSpec:
    _count(args.fail_first, "--fail-first")
    _count(args.latency_ms, "--latency-ms")
    _count(args.monthly_quota, "--monthly-quota")
    return spec_from_flags(
        faults=_faults_file(args.faults) if args.faults else None,
        fail_first=args.fail_first,
        random_5xx=_rate(args.random_5xx, "--random-5xx"),
        lost_answer=_rate(args.lost_answer, "--lost-answer"),
        latency_ms=args.latency_ms,
        monthly_quota=args.monthly_quota,
        seed=args.seed,
    )


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise InputError(f"--port must be 1..65535, got {port}", source="options")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise LccError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    host: str = args.host
    if not is_loopback_host(host) and not args.allow_remote:
        raise InputError(
            f"--host {host} is not a loopback address; the sandbox accepts any token, so it "
            "listens beyond this machine only with --allow-remote",
            source="options",
        )
    spec = spec_from_args(args)
    _check_port(host, args.port)
    state_file = Path(args.state) if args.state else None
    state = SandboxState.load(state_file, spec=spec) if state_file else SandboxState(spec=spec)
    state.enforce_rate_limits = not args.no_rate_limits
    url = base_url(host, args.port)
    out = stdout_console()
    out.print(f"LINE sandbox on {url}", markup=False)
    out.print(f"use it with: --line-api-base {url}   (or LCC_LINE_API_BASE={url})", markup=False)
    sys.stdout.flush()
    faults = ", ".join(fault.kind for fault in spec.faults) or "none"
    quota = spec.monthly_quota if spec.monthly_quota is not None else "unlimited"
    stderr.print(f"faults: {faults}; monthly quota: {quota}; seed: {spec.seed}")
    if args.no_rate_limits:
        stderr.print("LINE's rate limits are off (--no-rate-limits)")
    stderr.print(f"what arrived: {url}/_sandbox/requests, {url}/_sandbox/deliveries; Ctrl-C stops")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: both end here
    # as KeyboardInterrupt, so the state is saved and Ctrl-C is a normal, successful stop.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(state, host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        if state_file is not None:
            state.save(state_file)
            stderr.print(f"sandbox state saved to {state_file}", markup=False)
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
