"""Push throughput: our LineClient against a bare aiohttp loop and line-bot-sdk's async client.

All three send the same N pushes (one textV2 bubble, a fresh X-Line-Retry-Key each) at the same
concurrency to the same sandbox server: `lcc sandbox` (uvicorn) in a child process on a free
loopback port, LINE's rate limits off there so that nothing but speed is measured. Ours runs
twice: with the client-side limiter at LINE's 2,000 pushes/s (how campaigns send) and without
it (the client's own ceiling). Figures are requests per second and ratios to the bare aiohttp
loop of the same run, plus the server's CPU share: when the server is the bottleneck, every
client's figure is the server's, and the ratios say so.

    .venv/bin/python bench/bench_client.py [--n 20000] [--concurrency 64] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.line_client import LineClient  # noqa: E402
from core.ratelimit import Limit, RateLimiter  # noqa: E402
from core.sandbox.server import free_port  # noqa: E402

LINE_PUSH_LIMIT = 2000.0
TEXT = "Hello from the benchmark https://example.com/sale"
MESSAGES = [{"type": "textV2", "text": TEXT}]


def user(n: int) -> str:
    return f"U{n:032x}"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux); 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU of this process and of its children already waited for (a launch's freeze process)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    ok: int
    server_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def client_us(self) -> float:
        """Client CPU per request: its ceiling on one free core is 1e6 / this."""
        return self.client_cpu * self.seconds / self.requests * 1e6

    @property
    def server_us(self) -> float:
        return self.server_cpu * self.seconds / self.requests * 1e6


async def drive(
    n: int, concurrency: int, send: Callable[[int], Awaitable[int]]
) -> tuple[int, float]:
    """`concurrency` workers share the numbers 0..n-1; returns (HTTP 200s, seconds)."""
    numbers = iter(range(n))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for number in numbers:
            if await send(number) == 200:
                ok += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, time.perf_counter() - started


class Bench:
    def __init__(self, base: str, server_pid: int, n: int, concurrency: int) -> None:
        self.base = base
        self.server_pid = server_pid
        self.n = n
        self.concurrency = concurrency
        self.limiter_sleeps = 0

    async def reset(self) -> None:
        async with httpx.AsyncClient(base_url=self.base) as http:
            (await http.post("/_sandbox/reset")).raise_for_status()

    async def delivered(self) -> int:
        async with httpx.AsyncClient(base_url=self.base) as http:
            state = (await http.get("/_sandbox/state")).json()
            return int(state["deliveries"])

    async def measure(
        self, name: str, send: Callable[[int], Awaitable[int]], warmup: int = 500
    ) -> Run:
        await drive(warmup, self.concurrency, lambda number: send(self.n + number))
        await self.reset()
        server_before, client_before = cpu_seconds(self.server_pid), time.process_time()
        ok, seconds = await drive(self.n, self.concurrency, send)
        server_cpu = (cpu_seconds(self.server_pid) - server_before) / seconds
        client_cpu = (time.process_time() - client_before) / seconds
        delivered = await self.delivered()
        if delivered != ok:
            raise SystemExit(f"{name}: the sandbox delivered {delivered} but {ok} answered 200")
        return Run(name, self.n, seconds, ok, server_cpu, client_cpu)

    async def ours(self, *, limited: bool) -> Run:
        limiter = RateLimiter() if limited else RateLimiter({"push": Limit(10**9, 1.0)})
        client = LineClient(
            self.base, channel="bench", limiter=limiter, max_connections=self.concurrency
        )
        try:

            async def send(number: int) -> int:
                result = await client.push(user(number), MESSAGES, retry_key=str(uuid.uuid4()))
                return result.status

            label = "LineClient, limiter at 2,000/s" if limited else "LineClient, no limiter"
            run = await self.measure(label, send)
            if limited:
                self.limiter_sleeps += limiter.waits
            return run
        finally:
            await client.aclose()

    async def bare_aiohttp(self) -> Run:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        url = f"{self.base}/v2/bot/message/push"
        async with aiohttp.ClientSession(connector=connector) as session:

            async def send(number: int) -> int:
                body = orjson.dumps({"to": user(number), "messages": MESSAGES})
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer bench",
                    "X-Line-Retry-Key": str(uuid.uuid4()),
                }
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            return await self.measure("bare aiohttp loop", send)

    async def line_bot_sdk(self) -> Run:
        from linebot.v3.messaging import (
            AsyncApiClient,
            AsyncMessagingApi,
            Configuration,
            PushMessageRequest,
            TextMessageV2,
        )
        from linebot.v3.messaging.exceptions import ApiException

        configuration = Configuration(host=self.base, access_token="bench")
        configuration.connection_pool_maxsize = self.concurrency
        api_client = AsyncApiClient(configuration)
        api = AsyncMessagingApi(api_client)
        try:

            async def send(number: int) -> int:
                request = PushMessageRequest(to=user(number), messages=[TextMessageV2(text=TEXT)])
                try:
                    response = await api.push_message_with_http_info(
                        request, x_line_retry_key=str(uuid.uuid4())
                    )
                except ApiException as exc:
                    return int(exc.status or 0)
                return int(response.status_code)

            return await self.measure("line-bot-sdk 3.27 AsyncMessagingApi", send)
        finally:
            await api_client.close()


async def limiter_overhead(acquisitions: int = 1_000_000) -> dict[str, float]:
    """The limiter's own cost per acquisition, and its accuracy at LINE's push limit."""
    unlimited = RateLimiter({"push": Limit(10**12, 1.0)})
    started = time.perf_counter()
    for _ in range(acquisitions):
        await unlimited.acquire("bench", "push")
    per_acquire = (time.perf_counter() - started) / acquisitions

    async def nothing() -> None:
        return None

    started = time.perf_counter()
    for _ in range(acquisitions):
        await nothing()
    baseline = (time.perf_counter() - started) / acquisitions

    limited = RateLimiter()
    total = 8000
    counter = iter(range(total))

    async def worker() -> None:
        for _ in counter:
            await limited.acquire("bench", "push")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(64)))
    elapsed = time.perf_counter() - started
    # 2,000 come from the full bucket at once; the other 6,000 at 2,000/s: 3 s ideally.
    steady_rate = (total - LINE_PUSH_LIMIT) / elapsed
    return {
        "acquire_ns": per_acquire * 1e9,
        "await_ns": baseline * 1e9,
        "steady_rate": steady_rate,
        "sleeps": float(limited.waits),
        "acquisitions": float(total),
    }


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LCC_DATA_DIR": tempfile.mkdtemp(prefix="lcc-bench-")}
    command = [sys.executable, "-m", "tui", "sandbox", "--port", str(port), "--no-rate-limits"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert server.stdout is not None
    line = server.stdout.readline().decode()
    if "LINE sandbox on" not in line:
        server.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return wait_for(server, f"http://127.0.0.1:{port}/_sandbox/state")


def wait_for(server: subprocess.Popen[bytes], url: str) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"{url} never answered")


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The cheapest ASGI answer: what uvicorn itself costs per request, without the sandbox."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def start_trivial(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "bench.bench_client:trivial_app", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--lifespan", "off",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    return wait_for(server, f"http://127.0.0.1:{port}/")


async def uvicorn_ceiling(base: str, pid: int, n: int, concurrency: int) -> float:
    """Server CPU per request of uvicorn serving `trivial_app` (bare aiohttp client)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(number: int) -> int:
            body = orjson.dumps({"to": user(number), "messages": MESSAGES})
            async with session.post(base, data=body) as response:
                await response.read()
                return response.status

        await drive(500, concurrency, send)
        before = cpu_seconds(pid)
        await drive(n, concurrency, send)
        return (cpu_seconds(pid) - before) / n * 1e6


def server_speedups() -> str:
    found = []
    for module in ("httptools", "uvloop"):
        try:
            __import__(module)
            found.append(f"{module} yes")
        except ImportError:
            found.append(f"{module} no")
    return ", ".join(found)


async def main_async(args: argparse.Namespace) -> list[Run]:
    """Each client sends N in `rounds` segments, in rotating order, so load from elsewhere on a
    shared machine falls on every client alike."""
    port = free_port()
    server = start_server(port)
    segment = args.n // args.rounds
    try:
        bench = Bench(f"http://127.0.0.1:{port}", server.pid, segment, args.concurrency)
        clients: list[Callable[[], Awaitable[Run]]] = [
            bench.bare_aiohttp,
            lambda: bench.ours(limited=True),
            lambda: bench.ours(limited=False),
        ]
        if not args.skip_sdk:
            clients.append(bench.line_bot_sdk)
        totals: dict[int, list[Run]] = {index: [] for index in range(len(clients))}
        for round_number in range(args.rounds):
            shift = round_number % len(clients)
            for index in [*range(shift, len(clients)), *range(shift)]:
                totals[index].append(await clients[index]())
        print(f"limiter sleeps while ours ran with LINE's limit: {bench.limiter_sleeps}")
        return [combine(runs) for runs in totals.values()]
    finally:
        server.terminate()
        server.wait(timeout=10)


def combine(runs: list[Run]) -> Run:
    seconds = sum(run.seconds for run in runs)
    return Run(
        name=runs[0].name,
        requests=sum(run.requests for run in runs),
        seconds=seconds,
        ok=sum(run.ok for run in runs),
        server_cpu=sum(run.server_cpu * run.seconds for run in runs) / seconds,
        client_cpu=sum(run.client_cpu * run.seconds for run in runs) / seconds,
    )


def report(runs: list[Run], limiter: dict[str, float], args: argparse.Namespace) -> None:
    baseline = runs[0].rate
    print(
        f"push throughput, N={runs[0].requests} per client in {args.rounds} rounds, "
        f"concurrency {args.concurrency}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; server speedups: {server_speedups()}"
    )
    print(
        f"{'client':38} {'req/s':>6} {'vs aiohttp':>10} {'server CPU':>10} {'client CPU':>10} "
        f"{'client us/req':>13} {'server us/req':>13}"
    )
    for run in runs:
        print(
            f"{run.name:38} {run.rate:6.0f} {run.rate / baseline:10.2f} "
            f"{run.server_cpu:10.0%} {run.client_cpu:10.0%} "
            f"{run.client_us:13.0f} {run.server_us:13.0f}"
        )
    ours = next(run for run in runs if run.name.startswith("LineClient, limiter"))
    keeps_up = ours.rate >= 0.97 * LINE_PUSH_LIMIT
    print(
        f"keeps up with LINE's 2,000 pushes/s: {'yes' if keeps_up else 'no'} "
        f"({ours.rate:.0f}/s with the limiter on)"
    )
    if not keeps_up:
        busiest = max(max(run.server_cpu, run.client_cpu) for run in runs)
        if max(run.server_cpu for run in runs) > 0.85:
            print("the server is the bottleneck: its CPU share is near 100% for every client")
        elif busiest < 0.6:
            print(
                "neither side used its CPU (the machine is busy with other work): the rates are "
                "the machine's, the ratios and CPU per request are the comparison"
            )
    print(
        f"our client's own ceiling on one free core: {1e6 / ours.client_us:.0f} requests/s "
        f"({ours.client_us:.0f} us of CPU per push; bare aiohttp {runs[0].client_us:.0f} us)"
    )
    print(
        f"limiter: {limiter['acquire_ns']:.0f} ns per acquisition with tokens available "
        f"(an empty await: {limiter['await_ns']:.0f} ns); at LINE's push limit "
        f"{limiter['steady_rate']:.0f}/s after the burst, {limiter['sleeps']:.0f} sleeps for "
        f"{limiter['acquisitions']:.0f} acquisitions"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="pushes per client (20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (64)")
    parser.add_argument("--rounds", type=int, default=4, help="segments per client (4)")
    parser.add_argument("--skip-sdk", action="store_true", help="leave out line-bot-sdk")
    args = parser.parse_args()
    runs = asyncio.run(main_async(args))
    limiter = asyncio.run(limiter_overhead())
    port = free_port()
    trivial = start_trivial(port)
    try:
        uvicorn_us = asyncio.run(
            uvicorn_ceiling(
                f"http://127.0.0.1:{port}", trivial.pid, min(args.n, 5000), args.concurrency
            )
        )
    finally:
        trivial.terminate()
        trivial.wait(timeout=10)
    report(runs, limiter, args)
    sandbox_us = sum(run.server_us for run in runs) / len(runs)
    print(
        f"server CPU per push: the sandbox {sandbox_us:.0f} us (ceiling {1e6 / sandbox_us:.0f}/s "
        f"on one free core); uvicorn alone with a trivial app {uvicorn_us:.0f} us "
        f"(ceiling {1e6 / uvicorn_us:.0f}/s)"
    )


if __name__ == "__main__":
    main()
