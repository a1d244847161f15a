"""The delivery engine: a frozen outbox becomes LINE requests and delivery-log rows.

Requests go out concurrently (a pool of workers) under the client's token bucket, each through
`send_with_retries` with its stored retry key. Outcomes are collected and written in batches
(`LogWriter`); a request counts as done only once its rows are on disk, so whatever a crash
loses is pending on restart and goes again under the same key.

Stopping: a fatal answer (monthly limit, 401, 403), the operator's kill switch or a shutdown
sets the run's `DeliveryControl`. No new request is sent after that; requests in flight finish
and are recorded; retries waiting in a backoff give up at once (they stay pending).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import itertools
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from core import forking
from core.clock import Clock, timestamp_reader, unix_seconds
from core.compose import Composer
from core.delivery_log import LogWriter, RowFactory
from core.line_client import LineClient
from core.models import ActivationPolicy
from core.outbox import (
    RETRY_KEY_NAMESPACE,
    FreezeStopped,
    LiveFreeze,
    Manifest,
    Outbox,
    Request,
    exclusion_part_name,
    first_attempt_bound,
    key_still_valid,
    reissued_key,
)
from core.render_ahead import (
    BATCH_REQUESTS,
    Messages,
    Prepared,
    RenderAhead,
    RenderStopped,
    prepare,
)
from core.retry import ErrorClass, SendResult, send_with_retries
from core.store import DeliveryLog

logger = logging.getLogger(__name__)

DISPATCH_CHUNK = 1000
"""Requests covered by one dispatch mark (one small fsynced write per chunk)."""
RENDER_AHEAD_MIN_REQUESTS = 1_000
"""From this many pushes left to send, a forked child renders them (`core.render_ahead`): below
it the fork (10-30 ms with a large heap) costs about what it saves."""
TEMPLATE_ERROR = "template_error"
"""Error code of a push whose messages could not be rendered for its profile (never sent)."""


def retry_key(campaign_id: str, request_index: int, content: Any) -> str:
    """A key for any logical request: the same campaign, number and content, the same key."""
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{campaign_id}:{request_index}:{digest}"))


@dataclass(frozen=True)
class DeliveryProgress:
    """A snapshot for progress bars: the console's and the headless commands' on stderr.

    Counts are profiles of the whole campaign (a resumed run starts from what the log holds).
    """

    sent: int
    """Profiles whose bundle LINE accepted."""
    failed: int
    """Profiles with a failure row, exclusions included."""
    remaining: int
    rate: float
    """Profiles per second over the last few seconds."""
    eta_s: float | None
    requests_done: int = 0
    requests_total: int = 0
    total: int = 0
    """Profiles in the frozen audience."""
    final: bool = False


@dataclass
class DeliverySummary:
    """What one run of the engine did (and what is left)."""

    requests: int = 0
    """Logical LINE requests (push or multicast) sent in this run, not attempts."""
    delivered: int = 0
    """Profiles accepted in this run."""
    failed: int = 0
    """Profiles that got a failure row in this run (exclusions included)."""
    excluded: int = 0
    pending: int = 0
    """Requests still without an outcome (not sent yet, or stopped)."""
    unknown: list[int] = field(default_factory=list)
    """Pending requests not re-sent: LINE may have forgotten their retry key."""
    fatal: SendResult | None = None
    stopped: str | None = None
    """Why the run stopped before the end (None when it ran to the end)."""
    audience_error: str | None = None
    """A freeze still being written failed part-way (its audience became unreadable): what
    was sent is recorded, the rest waits for an operator."""

    @property
    def complete(self) -> bool:
        """Every request has an outcome."""
        return self.pending == 0 and not self.unknown and self.stopped is None


class StopDelivery(Exception):
    """Raised inside a retry's backoff when the run was told to stop."""


class DeliveryControl:
    """Tells a running delivery to stop; safe to call from any thread."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.fatal: SendResult | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def bind(self) -> None:
        """Attach to the running loop (the engine calls this)."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        if self.reason is not None:
            self._event.set()

    def stop(self, reason: str, *, fatal: SendResult | None = None) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.fatal = fatal
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)

    async def sleep(self, seconds: float) -> None:
        """Sleep, or raise `StopDelivery` as soon as the run is told to stop."""
        if self.stopped:
            raise StopDelivery
        if self._event is None:
            await asyncio.sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), seconds)
        if self.stopped:
            raise StopDelivery


@dataclass(frozen=True)
class EngineSettings:
    concurrency: int = 256
    flush_rows: int = 50_000
    flush_interval_s: float = 1.0
    progress_interval_s: float = 0.25
    state_poll_s: float = 1.0
    render_ahead_min_requests: int = RENDER_AHEAD_MIN_REQUESTS


ProgressCallback = Callable[[DeliveryProgress], None]


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    requests_done: int = 0


class _RateMeter:
    """Profiles per second over a sliding window of a few seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self.samples: list[tuple[float, int]] = []

    def rate(self, now: float, done: int) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.pop(0)
        first_t, first_done = self.samples[0]
        span = now - first_t
        return (done - first_done) / span if span > 0 else 0.0


def log_exclusions(outbox: Outbox, manifest: Manifest, log: DeliveryLog) -> int:
    """Write the outbox's exclusions to the log (fixed part names: doing it twice is harmless).

    Returns the number of profiles newly logged.
    """
    factory = RowFactory(
        campaign_id=manifest.campaign_id,
        channel_name=manifest.account.name,
        message_types=manifest.message_types,
    )
    at = unix_seconds(manifest.frozen_at)
    written = 0
    for number, profiles in enumerate(outbox.iter_exclusion_parts(manifest)):
        name = exclusion_part_name(number)
        if (log.directory / name).exists():
            continue
        rows: list[dict[str, Any]] = []
        for profile in profiles:
            factory.extend(
                rows,
                time=at,
                line_user_id=profile.line_user_id,
                profile_id=profile.profile_id,
                success=False,
                error_code=profile.reason,
            )
        log.write_part(name, rows)
        written += len(profiles)
    return written


@dataclass
class LogScan:
    recorded: set[int]
    delivered: int
    failed: int


def scan_log(log: DeliveryLog) -> LogScan:
    """Which requests have an outcome, and the campaign's figures so far (tests excluded)."""
    recorded: set[int] = set()
    delivered = failed = 0
    for row in log.rows():
        if row.get("is_test"):
            continue
        index = row.get("request_index")
        if index is not None:
            recorded.add(index)
        if row.get("message_index", 0) == 0:
            if row.get("status") == "success":
                delivered += 1
            else:
                failed += 1
    return LogScan(recorded, delivered, failed)


async def run_outbox(
    *,
    outbox: Outbox,
    manifest: Manifest,
    log: DeliveryLog,
    client: LineClient,
    clock: Clock,
    control: DeliveryControl | None = None,
    progress: ProgressCallback | None = None,
    still_active: Callable[[], bool] | None = None,
    settings: EngineSettings | None = None,
    stream: LiveFreeze | None = None,
) -> DeliverySummary:
    """Send every pending request of the outbox, record the outcomes, and say what is left.

    With `stream` the outbox is still being frozen (`manifest` is its provisional one): its
    requests are sent part by part as they are written, and the totals and exclusions are taken
    from the final manifest once the freeze ends.
    """
    settings = settings or EngineSettings()
    control = control or DeliveryControl()
    control.bind()
    summary = DeliverySummary()
    if stream is None:
        summary.excluded = manifest.totals.excluded
        summary.failed += log_exclusions(outbox, manifest, log)
    scan = scan_log(log)
    recorded = scan.recorded
    policy: ActivationPolicy = manifest.spec.activation
    unit = manifest.aggregation_unit
    bundle = manifest.bundle
    campaign_id = manifest.campaign_id
    composer = Composer(manifest.spec, campaign_id=campaign_id)
    factory = RowFactory(
        campaign_id=campaign_id,
        channel_name=manifest.account.name,
        message_types=manifest.message_types,
    )
    writer = LogWriter(
        log,
        flush_rows=settings.flush_rows,
        flush_interval_s=settings.flush_interval_s,
        background=True,
    )
    marks = outbox.dispatch_marks()
    watermark = marks[-1].upto if marks else -1
    decisions = outbox.decisions()
    final_manifest: Manifest | None = manifest if stream is None else None
    total_requests = manifest.totals.requests if stream is None else None
    total_profiles = manifest.totals.segment if stream is None else stream.estimate
    tally = _Tally(sent=scan.delivered, failed=scan.failed, requests_done=len(recorded))
    done_now: set[int] = set()
    left = settings.concurrency if total_requests is None else total_requests - len(recorded)
    workers_count = max(1, min(settings.concurrency, max(1, left)))
    pushes = manifest.mode == "push"
    render_apart = (
        pushes
        and (left if stream is None else stream.estimate) >= settings.render_ahead_min_requests
        and forking.fork_is_safe()
    )
    ahead: RenderAhead | None = None  # forked just before the run's tasks start

    now_s = timestamp_reader(clock)

    async def part_names() -> AsyncIterator[str]:
        """The outbox's requests parts in order; streamed, each once it is written."""
        nonlocal final_manifest
        if stream is None:
            for name in manifest.request_parts:
                yield name
            return
        index = 0
        while True:
            got = await asyncio.to_thread(stream.wait, index)
            if isinstance(got, str):
                yield got
                index += 1
            elif isinstance(got, Manifest):
                final_manifest = got
                return
            else:  # what was written is still sent; then the run stops (`requests`)
                summary.audience_error = _freeze_failure(got)
                return

    async def requests() -> AsyncGenerator[list[Prepared], None]:
        """The requests in order, a batch at a time (one hop per batch, not per request)."""
        async for batch in rendered():
            yield batch
        if summary.audience_error is not None:
            control.stop(summary.audience_error)

    async def rendered() -> AsyncIterator[list[Prepared]]:
        child = ahead
        if child is None:
            async for name in part_names():
                for batch in _batches(prepare(outbox.part_requests(name), composer, bundle)):
                    yield batch
            return
        names: asyncio.Queue[str | None] = asyncio.Queue()  # every part, for a fallback

        async def feed() -> None:
            try:
                async for name in part_names():
                    names.put_nowait(name)
                    child.render(name)
            finally:
                names.put_nowait(None)
                child.finish()

        feeder = asyncio.create_task(feed())
        after = -1
        try:
            try:
                async for batch in child:
                    yield batch
                    after = batch[-1].request.number  # all of it taken
                await feeder
                return
            except RenderStopped as stopped:
                logger.warning("%s; rendering from request %d on", stopped, after + 1)
            while (part := await names.get()) is not None:
                rest = (r for r in outbox.part_requests(part) if r.number > after)
                for batch in _batches(prepare(rest, composer, bundle)):
                    yield batch
            await feeder
        finally:
            feeder.cancel()

    now = now_s()
    marked_before = watermark  # requests up to here were marked by an earlier run

    def gate(prepared: Prepared) -> str | None:
        """The key `prepared` goes out under in this run, or None when it is not sent (already
        recorded, or past LINE's key window: unknown). A new chunk is marked dispatched, on
        disk, before any request of it is handed to a worker."""
        nonlocal watermark, now
        request = prepared.request
        number = request.number
        if number in recorded:
            return None
        reissue = decisions.resend.get(number)
        if reissue is not None:
            epoch, decided_at = reissue
            if not key_still_valid(decided_at, now):
                summary.unknown.append(number)
                return None
            return reissued_key(request.key, epoch)
        if number <= watermark:
            if number <= marked_before:  # first sent by an earlier run: is LINE's key still on?
                first = first_attempt_bound(marks, number)
                if first is not None and not key_still_valid(first, now):
                    summary.unknown.append(number)
                    return None
            return request.key
        watermark = number + DISPATCH_CHUNK - 1
        if total_requests is not None:
            watermark = min(watermark, total_requests - 1)
        now = now_s()
        outbox.mark_dispatch(watermark, now)
        return request.key

    # The workers take the next request straight from `ready`, as a bare loop takes the next
    # body from a shared iterator: no producer task and no queue hop per request. A worker that
    # finds it running low fetches the next batch (one at a time, under `refilling`) and gates
    # it whole, while the others go on sending.
    ready: collections.deque[tuple[Prepared, str]] = collections.deque()
    source = requests()
    refilling = asyncio.Lock()
    low_water = workers_count
    exhausted = False

    def halted() -> bool:
        """`control.stopped`, read afresh at each call (another task or thread may stop the run
        between two reads; a bare attribute read would be narrowed by the type checker)."""
        return control.stopped

    async def top_up() -> None:
        nonlocal exhausted
        async with refilling:
            if exhausted or halted() or len(ready) > low_water:
                return
            try:
                batch = await anext(source)
            except StopAsyncIteration:
                exhausted = True
                return
            for prepared in batch:
                if halted():
                    return
                key = gate(prepared)
                if key is not None:
                    ready.append((prepared, key))

    def record(
        request: Request,
        result: SendResult | None,
        code: str = "",
        accepted_rows: bytes | None = None,
    ) -> None:
        at = int(now_s())
        success = result is not None and result.accepted
        if result is not None:
            code = result.error_code
        request_id = result.effective_request_id if result is not None else None
        count = len(request.to)
        if success and accepted_rows is not None:
            factory.encode_accepted(writer, accepted_rows, count, time=at, request_id=request_id)
        else:
            factory.encode_request(
                writer,
                time=at,
                line_user_ids=request.to,
                profile_ids=request.profile_ids,
                success=success,
                error_code=code,
                request_id=request_id,
                request_index=request.number,
            )
        if success:
            summary.delivered += count
            tally.sent += count
        else:
            summary.failed += count
            tally.failed += count
        tally.requests_done += 1
        done_now.add(request.number)
        writer.maybe_flush()

    async def work() -> None:
        while True:
            if len(ready) <= low_water and not exhausted and not refilling.locked():
                await top_up()
            if not ready:
                if exhausted or halted():
                    return
                await top_up()  # waits for the worker fetching, or fetches
                continue
            if halted():
                return
            (request, messages, accepted_rows), key = ready.popleft()
            if messages is None:
                record(request, None, TEMPLATE_ERROR)
                continue
            attempt = _attempt(client, request, key, messages, unit, pushes=pushes)
            summary.requests += 1
            try:
                result = await send_with_retries(attempt, policy, sleep=control.sleep)
            except StopDelivery:
                continue
            if result.error_class is ErrorClass.FATAL:
                control.stop(_fatal_reason(result), fatal=result)
                continue
            record(request, result, accepted_rows=accepted_rows)

    meter = _RateMeter()

    def report(final: bool = False) -> None:
        if progress is None:
            return
        done = tally.sent + tally.failed
        remaining = max(0, total_profiles - done)
        rate = meter.rate(time.monotonic(), done)
        eta = remaining / rate if rate > 0 else None
        progress(
            DeliveryProgress(
                sent=tally.sent,
                failed=tally.failed,
                remaining=remaining,
                rate=rate,
                eta_s=eta,
                requests_done=tally.requests_done,
                requests_total=total_requests or 0,
                total=total_profiles,
                final=final,
            )
        )

    async def tick() -> None:
        last_poll = time.monotonic()
        while True:
            await asyncio.sleep(settings.progress_interval_s)
            writer.maybe_flush()
            report()
            if still_active is not None and time.monotonic() - last_poll >= settings.state_poll_s:
                last_poll = time.monotonic()
                if not control.stopped and not still_active():
                    control.stop("the campaign is no longer Active")

    report()
    with fewer_young_collections():  # see there: the batches in flight are not garbage
        if render_apart:
            ahead = RenderAhead(outbox, recorded, composer, factory)
        ticker = asyncio.create_task(tick())
        workers = [asyncio.create_task(work()) for _ in range(workers_count)]
        try:
            await asyncio.gather(*workers)
            if stream is not None and final_manifest is not None:
                total_requests = final_manifest.totals.requests
                total_profiles = final_manifest.totals.segment
                summary.excluded = final_manifest.totals.excluded
                newly_excluded = await asyncio.to_thread(
                    log_exclusions, outbox, final_manifest, log
                )
                summary.failed += newly_excluded
                tally.failed += newly_excluded
        finally:
            ticker.cancel()
            for task in workers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(ticker, *workers, return_exceptions=True)
            with contextlib.suppress(Exception):  # its own clean-up: the rendering feeder
                await source.aclose()
            if ahead is not None:
                ahead.close()
            writer.close()
    summary.fatal = control.fatal
    summary.stopped = control.reason
    if total_requests is None and stream is not None and stream.manifest is not None:
        total_requests = stream.manifest.totals.requests  # stopped, but the freeze had ended
    if total_requests is None:
        summary.pending = 1  # stopped while the rest was still being frozen: some, uncounted
    else:
        summary.pending = total_requests - len(recorded) - len(done_now) - len(summary.unknown)
    report(final=True)
    return summary


YOUNG_COLLECTION_THRESHOLD = 20_000
"""Allocations between young-generation collections while a delivery runs (CPython's default
is 700). The requests in flight arrive from the rendering child a batch of 256 at a time, five
containers each, and live until their outcome is recorded: at 700, 20,000 pushes ran about 100
young collections that found nothing to free but traversed the batch each time, and one full
collection (0.2-0.25 s of the sending thread's time in all; at 20,000, one young collection,
4 ms). Cyclic garbage waits at most 20,000 allocations longer: a few MB."""

_young_lock = threading.Lock()
_young_runs = 0
_young_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def fewer_young_collections() -> Iterator[None]:
    """Raise the young generation's threshold for the duration (runs may overlap: the first to
    start raises it, the last to end puts back what it found). A threshold already higher, or
    0 (automatic collection off), is left alone."""
    global _young_runs, _young_saved
    with _young_lock:
        if _young_runs == 0:
            found = gc.get_threshold()
            if 0 < found[0] < YOUNG_COLLECTION_THRESHOLD:
                _young_saved = found
                gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, found[1], found[2])
        _young_runs += 1
    try:
        yield
    finally:
        with _young_lock:
            _young_runs -= 1
            if _young_runs == 0 and _young_saved is not None:
                gc.set_threshold(*_young_saved)
                _young_saved = None


def _batches(prepared: Iterator[Prepared], size: int = BATCH_REQUESTS) -> Iterator[list[Prepared]]:
    while batch := list(itertools.islice(prepared, size)):
        yield batch


def _freeze_failure(error: BaseException) -> str:
    if isinstance(error, FreezeStopped):  # killed: nothing is wrong with the file
        return f"{error}. What was sent is recorded; resume to freeze it again and send the rest"
    what = str(error) or type(error).__name__  # an InputError's text is its describe()
    return (
        f"the audience could not be read to the end while it was being sent: {what}. What was "
        "sent is recorded; fix the profiles file as it was at launch and resume"
    )


def _attempt(
    client: LineClient,
    request: Request,
    key: str,
    messages: Messages,
    unit: str,
    *,
    pushes: bool,
) -> Callable[[], Awaitable[SendResult]]:
    """One logical request, sent the same way (same key, same bytes) on every attempt."""
    if pushes:
        to = request.to[0]

        def push() -> Awaitable[SendResult]:
            return client.push(to, messages, retry_key=key, aggregation_unit=unit)

        return push
    recipients = request.to

    def multicast() -> Awaitable[SendResult]:
        return client.multicast(recipients, messages, retry_key=key, aggregation_unit=unit)

    return multicast


def _fatal_reason(result: SendResult) -> str:
    if result.monthly_limit:
        return (
            "LINE refused: the account has reached its monthly message limit (429 "
            f"{result.message!r}); resume once the plan allows more messages"
        )
    if result.local_error == "missing_token":
        return f"cannot send: {result.message}"
    if result.status == 401:
        return (
            "LINE refused the channel access token (401"
            f"{': ' + result.message if result.message else ''}); fix the token and resume"
        )
    if result.status == 403:
        return (
            "LINE refused: this channel is not allowed to send these messages (403"
            f"{': ' + result.message if result.message else ''})"
        )
    return f"LINE refused ({result.status}: {result.message or 'no reason given'})"
