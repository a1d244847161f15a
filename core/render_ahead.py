"""A push campaign's messages rendered ahead of the sending, by a forked child.

Before a personalised push goes out the engine reads it from its outbox part, renders the
profile's Liquid, appends UTM to its links and encodes the messages (17 us of CPU for the
benchmark's message, with its log rows built ahead), all of it under the interpreter lock the
HTTP client needs too. Where fork is safe (`core.forking`) a child does that work on another
core and hands the parent batches of requests with their messages already encoded, and with
the log rows each would get if LINE accepts it (`RowFactory.accepted_rows`: hashing the
recipient and encoding the row cost the parent about a tenth of its time per push); the parent
only sends and fills in LINE's answer. The bytes are the ones the parent would have rendered:
the same composer, the same frozen inputs, the same encoder (`prepare` is the parent's own path,
and the fallback).

What goes to LINE, in what order, under which key, and when it is recorded does not change: the
parent still writes the dispatch marks, sends and logs. A child that dies hands nothing half-done
over; the parent renders the rest itself from the next request on.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from core import forking
from core.compose import Composer
from core.delivery_log import RowFactory
from core.outbox import Outbox, Request
from core.personalize import TemplateError

if TYPE_CHECKING:  # the pipe's type only; multiprocessing loads it when a pipe is made
    from multiprocessing.connection import Connection

BATCH_REQUESTS = 256
"""Requests per message from the child: one thread hop and one pickle per batch."""

STALL_S = 60.0
"""A child that owes the parent a part and says nothing for this long is stuck (stopped, or
waiting on a lock another thread held at the fork; a batch takes milliseconds): it is killed and
the parent renders the rest itself."""

Messages = list[dict[str, Any]] | orjson.Fragment


class Prepared(NamedTuple):
    request: Request
    messages: Messages | None
    """What is sent (encoded when rendered ahead); None when the push's template cannot render
    for its profile (it is logged as such and never sent)."""
    accepted_rows: bytes | None = None
    """Its log rows should LINE accept it (`RowFactory.accepted_rows`), when rendered ahead."""


def prepare(
    requests: Iterable[Request], composer: Composer, bundle: list[dict[str, Any]] | None
) -> Iterator[Prepared]:
    """In this process: a push rendered for its profile, a multicast with the shared bundle."""
    for request in requests:
        if request.attributes is None:
            yield Prepared(request, bundle)
            continue
        try:
            yield Prepared(request, composer.bundle(request.profile()))
        except TemplateError:
            yield Prepared(request, None)


class RenderStopped(Exception):
    """The child ended without saying so (killed), or was stuck and killed: the parent renders
    the rest. Its text says which."""


class RenderAhead:
    """Pushes rendered by a forked child, part by part as the parent names the parts (`render`,
    then `finish`), in order, without those in `skip` (already recorded)."""

    def __init__(
        self, outbox: Outbox, skip: set[int], composer: Composer, rows: RowFactory
    ) -> None:
        # a daemon: at exit it is killed, not waited for (what it renders can be rendered again)
        self._process, self._connection = forking.start_child(
            _render_in_child, (outbox, skip, composer, rows), name="lcc-render", daemon=True
        )
        self._owed = 0
        """Parts (and the end) told and not yet answered; a silent child owing none is idle."""
        self._silent_s = 0.0
        """How long the child has said nothing while it owed something."""

    def render(self, part: str) -> None:
        """Render this requests part next (it is on disk)."""
        self._tell(part)

    def finish(self) -> None:
        """No more parts: end once the last one is handed over."""
        self._tell(None)

    def _tell(self, part: str | None) -> None:
        self._owed += 1
        with contextlib.suppress(OSError, ValueError):  # a dead child is noticed by the reader
            self._connection.send(part)

    def _receive(self) -> bytes | float:
        """The child's next message, or the seconds of silence to count (`poll_slice`)."""
        silent = forking.poll_slice(self._connection, forking.poll_slice_for(STALL_S))
        return self._connection.recv_bytes() if silent is None else silent

    async def __aiter__(self) -> AsyncIterator[list[Prepared]]:
        """The rendered requests in order, in the child's batches."""
        fragment = orjson.Fragment
        while True:
            try:
                data = await asyncio.to_thread(self._receive)
            except (EOFError, OSError):
                await asyncio.to_thread(self._process.join)  # it is exiting: not on the loop
                raise RenderStopped(
                    f"the rendering process stopped (exit code {self._process.exitcode})"
                ) from None
            if isinstance(data, float):
                if self._owed:
                    self._silent_s += data
                    if self._silent_s >= STALL_S:
                        self._process.kill()
                        raise RenderStopped(
                            f"the rendering process stopped answering for {STALL_S:g} s and was "
                            "killed"
                        )
                continue
            self._silent_s = 0.0
            kind, payload = pickle.loads(data)
            if kind in ("part", "end"):
                self._owed -= 1
            if kind == "end":
                return
            if kind == "error":
                raise payload
            if payload:
                yield [
                    Prepared(
                        Request(number, key, to, profile_ids, None),
                        None if body is None else fragment(body),
                        rows,
                    )
                    for number, key, to, profile_ids, body, rows in payload
                ]

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._connection.close()


def _render_in_child(
    outbox: Outbox, skip: set[int], composer: Composer, rows: RowFactory, connection: Connection
) -> int:
    def send(kind: str, payload: Any) -> None:
        connection.send_bytes(pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL))

    dumps = orjson.dumps
    try:
        while (part := connection.recv()) is not None:
            batch: list[tuple[int, str, list[str], list[str], bytes | None, bytes | None]] = []
            for request in outbox.part_requests(part):
                number, to, profile_ids = request.number, request.to, request.profile_ids
                if number in skip:
                    continue
                try:
                    body: bytes | None = dumps(composer.bundle(request.profile()))
                    accepted = rows.accepted_rows(to, profile_ids, number)
                except TemplateError:
                    body = accepted = None
                batch.append((number, request.key, to, profile_ids, body, accepted))
                if len(batch) >= BATCH_REQUESTS:
                    send("batch", batch)
                    batch = []
            send("part", batch)  # a part's last requests go now, not with the next part
            if forking.parent_gone():
                return 1
        send("end", None)
    except EOFError:
        return 1  # the parent is gone
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            send("error", forking.portable(exc))
        return 1
    finally:
        connection.close()
    return 0
