"""A personalised push campaign end to end, against a bare aiohttp loop sending the same pushes.

Both send to the same sandbox server: `lcc sandbox` (uvicorn) in a child process on a free
loopback port, LINE's rate limits off there, reset between runs. The campaign is 20,000 profiles
from a CSV (written by `fixtures/make_large_audience.py`, about 2% of them unusable as in a real
export), one personalised textV2 bubble with a link each. The bare loop sends exactly the bodies
the campaign sends (one push per reachable profile, fresh retry keys), at the same concurrency,
and does nothing else: no validation, no audience, no outbox, no retry, no log.

Ours is timed from `launch` to the end of `deliver` (start-up included): validation, audience
resolution, freezing the outbox (Liquid and UTM per profile, retry keys), the quota pre-flight,
the delivery with its batched log, and the transition to Finished. It runs twice: with the
client-side limiter lifted (the engine's own cost, comparable to the bare loop) and with LINE's
2,000 pushes/s (how a real campaign sends).

    .venv/bin/python bench/bench_delivery.py [--profiles 20000] [--concurrency 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_client import cpu_seconds, own_cpu_seconds  # noqa: E402

from core.audience import iter_rows, resolve  # noqa: E402
from core.compose import Composer  # noqa: E402
from core.fixture import Fixture  # noqa: E402
from core.line_client import LineClient  # noqa: E402
from core.models import (  # noqa: E402
    CampaignState,
    Segment,
    SenderAccount,
)
from core.ratelimit import Limit, RateLimiter  # noqa: E402
from core.retry import ErrorClass, SendResult  # noqa: E402
from core.sandbox.server import free_port  # noqa: E402
from core.service import Services  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.units import aggregation_unit  # noqa: E402
from core.validation import Issue  # noqa: E402

TEXT = (
    "{{ profile.last_name | default: 'お客様' }}様、{{ profile.rank | default: 'regular' }}会員"
    "限定の冬のセールのご案内です。保有ポイント {{ profile.points | default: '0' }} pt "
    "https://example.com/winter-sale?ref=line"
)


def load_generator() -> ModuleType:
    path = ROOT / "fixtures" / "make_large_audience.py"
    spec = importlib.util.spec_from_file_location("make_large_audience", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def start_server(port: int) -> subprocess.Popen[bytes]:
    """`lcc sandbox` in a child process, LINE's rate limits off; returns once it answers."""
    env = {**os.environ, "LCC_DATA_DIR": tempfile.mkdtemp(prefix="lcc-bench-server-")}
    command = [sys.executable, "-m", "tui", "sandbox", "--port", str(port), "--no-rate-limits"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=1).raise_for_status()
            return server
        except httpx.HTTPError:
            if server.poll() is not None:
                raise SystemExit("the sandbox server exited at start") from None
            time.sleep(0.05)
    server.kill()
    raise SystemExit("the sandbox never answered")


def reset(base: str) -> None:
    httpx.post(f"{base}/_sandbox/reset", timeout=30).raise_for_status()


def delivered(base: str) -> dict[str, int]:
    body = httpx.get(f"{base}/_sandbox/deliveries", params={"detail": "false"}, timeout=60)
    counts: dict[str, int] = body.json()["counts"]
    return counts


def world(csv: Path, *, messages: list[dict[str, Any]]) -> Fixture:
    return Fixture.model_validate(
        {
            "fixture_version": 1,
            "workspace": "bench",
            "sender_accounts": [
                {"id": "oa", "name": "Bench OA", "channel_id": "1", "workspaces": ["bench"]}
            ],
            "segments": [
                {"parent_segment": "All", "segment": "Members", "profiles_file": str(csv)}
            ],
            "campaign": {
                "name": "bench_campaign",
                "sender_account": "oa",
                "audience": {"parent_segment": "All", "segment": "Members"},
                "messages": messages,
            },
        }
    )


@dataclass
class Run:
    name: str
    seconds: float
    requests: int
    recipients: int
    server_cpu: float
    client_cpu: float
    phases: dict[str, float]
    process_cpu: float = 0.0
    """The client's own process (all its threads), without its forked children; of the wall."""

    @property
    def rate(self) -> float:
        return self.recipients / self.seconds


async def run_campaign(
    base: str,
    fixture: Fixture,
    concurrency: int,
    *,
    limited: bool,
    server_pid: int,
    name: str,
) -> Run:
    """Launch and deliver one campaign on a fresh data dir; phases timed separately."""
    data_dir = Path(tempfile.mkdtemp(prefix="lcc-bench-data-"))
    settings = load_settings(
        data_dir=data_dir, line_api_base=base, delivery_concurrency=concurrency
    )
    services = Services.open(settings)
    if not limited:
        services.limiter = RateLimiter({"push": Limit(10**9, 1.0), "multicast": Limit(10**9, 1.0)})
    campaign = services.import_fixture(fixture)
    reset(base)
    server_before, client_before = cpu_seconds(server_pid), own_cpu_seconds()
    process_before = time.process_time()
    started = time.perf_counter()
    await services.launch_async(campaign.id, actor="bench")
    launched = time.perf_counter()
    summary = await services.deliver(campaign.id, actor="bench")
    finished = time.perf_counter()
    server_cpu, client_cpu = (
        cpu_seconds(server_pid) - server_before,
        own_cpu_seconds() - client_before,
    )
    process_cpu = time.process_time() - process_before
    seconds = finished - started
    state = services.store.campaigns.get(campaign.id).state
    if state is not CampaignState.FINISHED:
        raise SystemExit(f"{name}: campaign ended {state.value}")
    counts = delivered(base)
    if len(counts) != summary.delivered or set(counts.values()) != {1}:
        raise SystemExit(f"{name}: the sandbox did not get each recipient exactly once")
    rows = services.store.delivery_log(campaign.id).count()
    return Run(
        name,
        seconds,
        summary.requests,
        summary.delivered,
        server_cpu / seconds,
        client_cpu / seconds,
        {"launch": launched - started, "deliver": finished - launched, "log rows": rows},
        process_cpu / seconds,
    )


async def bare_loop(
    base: str, bodies: list[bytes], concurrency: int, *, server_pid: int, path: str
) -> Run:
    """The floor: pre-built bodies, a fresh key each, no checks, no log."""
    reset(base)
    connector = aiohttp.TCPConnector(limit=concurrency)
    url = f"{base}{path}"
    work = iter(bodies)
    ok = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok
            for body in work:
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer bench",
                    "X-Line-Retry-Key": str(uuid.uuid4()),
                }
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        server_before, client_before = cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        server_cpu, client_cpu = (
            cpu_seconds(server_pid) - server_before,
            time.process_time() - client_before,
        )
    if ok != len(bodies):
        raise SystemExit(f"bare loop: {len(bodies) - ok} requests were not accepted")
    recipients = sum(delivered(base).values())
    return Run(
        "bare aiohttp loop",
        seconds,
        len(bodies),
        recipients,
        server_cpu / seconds,
        client_cpu / seconds,
        {},
    )


class StubClient:
    """Answers every send at once with an acceptance: the engine measured without HTTP."""

    sent = 0

    async def push(self, to: str, messages: list[dict[str, Any]], **_: Any) -> SendResult:
        self.sent += 1
        return SendResult(status=200, error_class=ErrorClass.ACCEPTED, request_id="stub")

    async def multicast(
        self, to: list[str], messages: list[dict[str, Any]], **_: Any
    ) -> SendResult:
        self.sent += 1
        return SendResult(status=200, error_class=ErrorClass.ACCEPTED, request_id="stub")

    async def aclose(self) -> None:
        return None


class StubServices(Services):
    """The use cases with `StubClient` as LINE and no quota pre-flight."""

    stub = StubClient()

    def line_client(self, account: SenderAccount) -> LineClient:
        return cast(LineClient, self.stub)

    async def quota_issue(self, account: SenderAccount, projected: int) -> Issue | None:
        return None


async def engine_alone(fixture: Fixture) -> tuple[float, float, int, int]:
    """(wall s, CPU s, requests, log rows) of launch + deliver with `StubClient` as LINE."""
    data_dir = Path(tempfile.mkdtemp(prefix="lcc-bench-stub-"))
    services = cast(StubServices, StubServices.open(load_settings(data_dir=data_dir)))
    services.stub = StubClient()
    campaign = services.import_fixture(fixture)
    cpu, started = own_cpu_seconds(), time.perf_counter()
    await services.launch_async(campaign.id, actor="bench")
    await services.deliver(campaign.id, actor="bench")
    seconds, cpu = time.perf_counter() - started, own_cpu_seconds() - cpu
    rows = services.store.delivery_log(campaign.id).count()
    return seconds, cpu, services.stub.sent, rows


def push_bodies(fixture: Fixture) -> list[bytes]:
    """Exactly what the campaign sends: one body per reachable profile, rendered the same way,
    built by the client's own `_send_body` (with the campaign's aggregation unit, which every
    campaign sends and the sandbox checks and records)."""
    campaign_id = "cmp-0a1b2c3d4e5f"
    composer = Composer(fixture.campaign, campaign_id=campaign_id)
    unit = aggregation_unit(campaign_id, fixture.campaign.name)
    segment: Segment = fixture.segments[0]
    bodies = []
    for row, exclusion in resolve(iter_rows(segment)):
        if exclusion is None and row.line_user_id is not None:
            messages = composer.bundle(row.profile())
            body = LineClient._send_body(row.line_user_id, messages, unit, False)
            bodies.append(orjson.dumps(body))
    return bodies


def print_cpu_floor(per_push: dict[str, tuple[float, float]], pushes: int, bare_s: float) -> None:
    """The lowest ratio this machine allows for the CPU each side needs: the sandbox and the
    client share its cores, so however well the work is spread, sending cannot take less than
    their CPU together divided by the cores."""
    cores = os.cpu_count() or 1
    client, server = per_push["campaign"]
    floor_s = (client + server) / 1000 * pushes / cores
    print(
        f"floor on {cores} cores: our client and the sandbox need {client + server:.3f} ms of CPU "
        f"per push together, so sending {pushes:,} pushes takes at least {floor_s:.2f} s, "
        f"{floor_s / bare_s:.2f}x the bare loop's median {bare_s:.2f} s before the launch; "
        f"1.25x needs our client at or below "
        f"{max(0.0, 1.25 * bare_s * cores / pushes * 1000 - server):.3f} ms per push"
    )


def print_runs(title: str, runs: list[Run], baseline: Run) -> None:
    print(title)
    print(
        f"{'run':44} {'wall s':>7} {'req':>7} {'recip/s':>9} {'x bare':>7} "
        f"{'srv CPU':>7} {'cli CPU':>7}  phases"
    )
    for run in runs:
        phases = ", ".join(
            f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in run.phases.items()
        )
        print(
            f"{run.name:44} {run.seconds:7.2f} {run.requests:7,} {run.rate:9,.0f} "
            f"{run.seconds / baseline.seconds:7.2f} {run.server_cpu:7.0%} "
            f"{run.client_cpu:7.0%}  {phases}"
        )


async def main_async(args: argparse.Namespace) -> None:
    generator = load_generator()
    folder = Path(tempfile.mkdtemp(prefix="lcc-bench-csv-"))
    csv = folder / "members.csv"
    stats = generator.write_audience(csv, args.profiles)
    fixture = world(csv, messages=[{"type": "textV2", "text": TEXT}])
    bodies = push_bodies(fixture)
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        # Warm both paths up (connections, imports, caches) before measuring.
        await bare_loop(
            base, bodies[:500], args.concurrency, server_pid=server.pid, path="/v2/bot/message/push"
        )
        runs: list[Run] = []
        for round_number in range(args.rounds):
            suffix = f" (round {round_number + 1})"
            bare = await bare_loop(
                base, bodies, args.concurrency, server_pid=server.pid, path="/v2/bot/message/push"
            )
            bare.name += suffix
            ours = await run_campaign(
                base,
                fixture,
                args.concurrency,
                limited=False,
                server_pid=server.pid,
                name="campaign, limiter lifted" + suffix,
            )
            runs += [bare, ours]
        limited = await run_campaign(
            base,
            fixture,
            args.concurrency,
            limited=True,
            server_pid=server.pid,
            name="campaign, LINE's 2,000 pushes/s",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"personalised push campaign: {stats.rows:,} profiles, {stats.unique:,} reachable, "
        f"concurrency {args.concurrency}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    bares = [run for run in runs if run.name.startswith("bare")]
    ours_runs = [run for run in runs if run.name.startswith("campaign")]
    best_bare = min(bares, key=lambda run: run.seconds)
    print_runs("", [*runs, limited], best_bare)
    ratios = [ours.seconds / bare.seconds for bare, ours in zip(bares, ours_runs, strict=True)]
    median = statistics.median(ratios)
    print(
        "ours / bare within each round: "
        + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        + f"; median {median:.2f}x; goal 1.25x: {'met' if median <= 1.25 else 'NOT met'}"
    )
    per_push: dict[str, tuple[float, float]] = {}
    for name, group in (("bare loop", bares), ("campaign", ours_runs)):
        client, server = (
            statistics.median(
                getattr(run, side) * run.seconds / run.requests * 1000 for run in group
            )
            for side in ("client_cpu", "server_cpu")
        )
        per_push[name] = (client, server)
        process = statistics.median(
            run.process_cpu * run.seconds / run.requests * 1000 for run in group
        )
        split = (
            f" (its process {process:.3f} ms, the forked children {client - process:.3f} ms)"
            if name == "campaign"
            else ""
        )
        print(
            f"CPU per push, {name}: client {client:.3f} ms{split}, sandbox {server:.3f} ms "
            "(medians of rounds)"
        )
    print_cpu_floor(per_push, stats.unique, statistics.median(run.seconds for run in bares))
    stub_wall, stub_cpu, stub_requests, stub_rows = await engine_alone(fixture)
    print(
        f"engine alone (LINE answering at once, no HTTP): {stub_wall:.2f} s wall, "
        f"{stub_cpu:.2f} s CPU for {stub_requests:,} pushes and {stub_rows:,} log rows: "
        f"{stub_cpu / stub_requests * 1e6:.0f} us CPU per push (launch, render, key, log)"
    )
    floor = stats.unique / 2000
    print(
        f"with LINE's limit: {limited.seconds:.2f} s for {stats.unique:,} pushes; "
        f"the limit alone needs {floor - 1:.2f} s after the 2,000-token burst"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
