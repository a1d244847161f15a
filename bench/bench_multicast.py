"""A bulk campaign by multicast: 200,000 profiles from a CSV, with its full delivery log.

Goal: 100,000 recipients per second or better, start-up included (LINE allows 200 multicasts/s
of 500 recipients each: 100,000/s is LINE's own ceiling, and the client keeps to it). The
campaign runs against `lcc sandbox` (uvicorn, child process, its rate limits off) with our
client-side limiter at LINE's limits, timed from `launch` (validation, resolving the CSV,
freezing the outbox) to the end of `deliver` (400 multicasts, one log row per profile and
message, Finished). For comparison in the same run, a bare aiohttp loop posts the same
multicast bodies with no limiter, no audience work and no log.

    .venv/bin/python bench/bench_multicast.py [--profiles 200000] [--messages 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_delivery import (  # noqa: E402
    Run,
    bare_loop,
    engine_alone,
    load_generator,
    print_runs,
    run_campaign,
    start_server,
    world,
)

from core.audience import iter_rows, resolve  # noqa: E402
from core.compose import Composer  # noqa: E402
from core.fixture import Fixture  # noqa: E402
from core.outbox import MULTICAST_MAX  # noqa: E402
from core.sandbox.server import free_port  # noqa: E402

TEXT = "❄ 冬のカタログが届きました。会員様限定の先行予約受付中です。 https://example.com/catalog/winter"
IMAGEMAP = {
    "type": "imagemap",
    "baseUrl": "https://example.com/img/winter",
    "altText": "冬のカタログ",
    "baseSize": {"width": 1040, "height": 1040},
    "actions": [
        {
            "type": "uri",
            "linkUri": "https://example.com/catalog/winter?ref=banner",
            "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
        }
    ],
}


def log_cost(rows: int) -> None:
    """The delivery log alone: `rows` rows through the engine's writer, against TinyDB inserts."""
    from tinydb import TinyDB

    from core.delivery_log import LogWriter, RowFactory
    from core.store import AtomicJSONStorage, DeliveryLog

    folder = Path(tempfile.mkdtemp(prefix="lcc-bench-log-"))
    factory = RowFactory(
        campaign_id="cmp-0123456789ab", channel_name="Bench OA", message_types=["textV2"]
    )
    log = DeliveryLog(folder / "log", "delivery_line_default")
    writer = LogWriter(log, flush_rows=50_000, flush_interval_s=3600)
    users = [f"U{n:032x}" for n in range(MULTICAST_MAX)]
    profiles = [f"td-{n:07d}" for n in range(MULTICAST_MAX)]
    started = time.perf_counter()
    for number in range(rows // MULTICAST_MAX):
        factory.encode_request(
            writer,
            time=1_764_000_000,
            line_user_ids=users,
            profile_ids=profiles,
            success=True,
            request_id="8f0a1c2e-0000-4000-8000-000000000000",
            request_index=number,
        )
        writer.maybe_flush()
    writer.flush()
    ours = time.perf_counter() - started
    started = time.perf_counter()
    read = sum(1 for _ in log.rows())
    reading = time.perf_counter() - started
    single = 200
    db = TinyDB(folder / "single.json", storage=AtomicJSONStorage)
    table = db.table("delivery_line_default", cache_size=0)
    rows_dicts: list[dict[str, object]] = []
    factory.extend(rows_dicts, time=1, line_user_id=users[0], profile_id="p", success=True)
    started = time.perf_counter()
    for _ in range(single):
        table.insert(dict(rows_dicts[0]))
    per_insert = (time.perf_counter() - started) / single
    print(
        f"delivery log: {rows:,} rows written in {ours:.2f} s ({rows / ours:,.0f} rows/s, "
        f"{writer.parts_written} parts), read back in {reading:.2f} s ({read:,} rows); "
        f"TinyDB one insert at a time: {per_insert * 1000:.1f} ms per row at {single} rows and "
        f"growing (4,000 inserts took 25 s on this machine), {rows:,} would take hours"
    )


def multicast_bodies(fixture: Fixture) -> list[bytes]:
    messages = Composer(fixture.campaign, campaign_id="cmp-bench").bundle(None)
    recipients = [
        row.line_user_id
        for row, exclusion in resolve(iter_rows(fixture.segments[0], attributes=False))
        if exclusion is None
    ]
    return [
        orjson.dumps({"to": recipients[start : start + MULTICAST_MAX], "messages": messages})
        for start in range(0, len(recipients), MULTICAST_MAX)
    ]


async def main_async(args: argparse.Namespace) -> None:
    generator = load_generator()
    csv = Path(tempfile.mkdtemp(prefix="lcc-bench-csv-")) / "members.csv"
    stats = generator.write_audience(csv, args.profiles)
    messages: list[dict[str, Any]] = [{"type": "textV2", "text": TEXT}]
    if args.messages == 2:
        messages.append(IMAGEMAP)
    fixture = world(csv, messages=messages)
    bodies = multicast_bodies(fixture)
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    runs: list[Run] = []
    try:
        await bare_loop(
            base, bodies[:20], 16, server_pid=server.pid, path="/v2/bot/message/multicast"
        )
        for round_number in range(args.rounds):
            suffix = f" (round {round_number + 1})"
            bare = await bare_loop(
                base, bodies, 16, server_pid=server.pid, path="/v2/bot/message/multicast"
            )
            bare.name += suffix
            ours = await run_campaign(
                base,
                fixture,
                args.concurrency,
                limited=True,
                server_pid=server.pid,
                name="campaign, LINE's 200 multicasts/s" + suffix,
            )
            runs += [bare, ours]
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"bulk multicast campaign: {stats.rows:,} profiles, {stats.unique:,} reachable, "
        f"{len(bodies)} multicasts, {args.messages} message(s) each, log rows per profile "
        f"and message"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    bares = [run for run in runs if run.name.startswith("bare")]
    ours_runs = [run for run in runs if run.name.startswith("campaign")]
    print_runs("", runs, min(bares, key=lambda run: run.seconds))
    for run in ours_runs:
        profiles_per_s = stats.rows / run.seconds
        print(
            f"{run.name}: {run.rate:,.0f} recipients/s delivered "
            f"({profiles_per_s:,.0f} profiles/s resolved, logged and sent); goal 100,000/s: "
            f"{'met' if run.rate >= 100_000 else 'NOT met'}"
        )
    stub_wall, stub_cpu, stub_requests, stub_rows = await engine_alone(fixture)
    print(
        f"engine alone (LINE answering at once, no HTTP, no rate limit): {stub_wall:.2f} s "
        f"wall, {stub_cpu:.2f} s CPU for {stub_requests} multicasts and {stub_rows:,} log rows: "
        f"{stats.unique / stub_wall:,.0f} recipients/s, {stub_cpu / stats.rows * 1e6:.1f} us "
        "CPU per profile"
    )
    floor = (len(bodies) - 200) / 200 if len(bodies) > 200 else 0.0
    print(
        f"LINE's limit alone: {floor:.2f} s for {len(bodies)} multicasts after the 200-token burst"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--messages", type=int, choices=(1, 2), default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    started = time.perf_counter()
    args = parser.parse_args()
    asyncio.run(main_async(args))
    if args.log_rows:
        log_cost(args.log_rows)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
