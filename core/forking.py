"""Helper processes forked from the console: where that is safe, and how a child keeps out of
its parent's way.

A forked child inherits everything it needs (the outbox, the frozen campaign, what was already
sent) without pickling, and starts in milliseconds where a spawned one would import the whole
console again (0.4-0.7 s). It does one piece of CPU work that would otherwise share the
interpreter lock with the sending, talks to its parent over a pipe, and leaves with `os._exit`.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from core.errors import LccError

if TYPE_CHECKING:  # the pipe's type only; multiprocessing loads it when a pipe is made
    from multiprocessing.connection import Connection

_parent_pid: int | None = None
"""In a child: the process that forked it."""


def fork_is_safe() -> bool:
    """Linux only: macOS's system libraries may not survive a fork of a threaded process."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def start_child(
    target: Callable[..., int], args: tuple[Any, ...], *, name: str, daemon: bool
) -> tuple[BaseProcess, Connection]:
    """Fork a child that runs `target(*args, connection)` and exits with the code it returns (1
    if it raises); the parent gets the process and its own end of their duplex pipe. A child
    forked from the main thread is SIGKILLed when that thread dies."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    from_main_thread = threading.current_thread() is threading.main_thread()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a threaded process; the child takes no lock another
        # thread may hold, and leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        process = context.Process(
            target=_child_main,
            args=(target, (*args, theirs), os.getpid(), from_main_thread),
            name=name,
            daemon=daemon,
        )
        process.start()
    theirs.close()
    return process, ours


def _child_main(
    target: Callable[..., int], args: tuple[Any, ...], parent: int, die_with_parent: bool
) -> None:
    global _parent_pid
    _parent_pid = parent
    # The parent's objects are never collected here: a collection that walked them would touch
    # (and so copy) every page of the parent's heap.
    gc.freeze()
    if die_with_parent:
        _die_with_parent(parent)
    # The parent's handlers are not this process's business: a signal here must not be written
    # to the parent's event loop (the wakeup fd is shared), nor run its handlers. Ctrl-C goes to
    # the whole process group: the parent decides what its children do about it.
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 1
    try:
        code = target(*args)
    finally:
        os._exit(code)  # no inherited atexit handlers, no flush of the parent's buffers


def _die_with_parent(parent: int) -> None:
    """SIGKILL this child when the thread that forked it (the main thread) dies."""
    import ctypes  # in the child only: not a cost of every start of the console

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # it died before the signal was set


def poll_slice(connection: Connection, slice_s: float) -> float | None:
    """Wait up to `slice_s` for a child's next message: None when one is there, else the
    seconds of the wait that count as the child's silence.

    That is the whole wait, unless it took far longer than asked: then this process was stopped
    meanwhile (Ctrl-Z, a debugger), its children with it, and only one slice counts, so a
    console resumed after a long stop does not take its children for stuck."""
    started = time.monotonic()
    if connection.poll(slice_s):
        return None
    return min(time.monotonic() - started, 2 * slice_s)


def poll_slice_for(stall_s: float) -> float:
    """The slices a wait for `stall_s` of silence is polled in."""
    return min(1.0, stall_s / 4)


def parent_gone() -> bool:
    """In a child: its parent has ended (it was adopted by another process)."""
    return _parent_pid is not None and os.getppid() != _parent_pid


def portable(error: BaseException) -> BaseException:
    """The error itself if it survives a pipe, else an LccError with its words."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return LccError(str(error) or type(error).__name__)
    return error
