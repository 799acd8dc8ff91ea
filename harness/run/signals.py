"""Which signals end a run in an orderly way, and the handlers that make them do so.

Ctrl-C (SIGINT), SIGTERM, a hang-up (SIGHUP: an SSH session to the CI box drops, a
terminal closes, some CI runners cancel a job this way) and SIGQUIT all mean "stop now":
each must heal every fault and tear every node down, never leave them to the next run.
Python's defaults for SIGHUP and SIGQUIT end the process at once, so all four are
handled here, and by one list that the runner and the suite share.

Handlers are only installed from the main thread (Python allows no other); elsewhere the
context managers do nothing and the caller's own handling applies.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

TEARDOWN_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
)


class RunInterrupted(BaseException):
    """One of TEARDOWN_SIGNALS arrived: unwind through every cleanup, then exit 2.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in a phase does
    not swallow it."""


Handler = Callable[[int, FrameType | None], None]


@contextlib.contextmanager
def handled(handler: Handler | int) -> Iterator[None]:
    """Every teardown signal goes to `handler` (or SIG_IGN) inside the block; the
    previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, handler) for sig in TEARDOWN_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise RunInterrupted(signal.Signals(signum).name)


def raising() -> contextlib.AbstractContextManager[None]:
    """Inside the block a teardown signal raises RunInterrupted in the main thread."""
    return handled(_raise)


def held() -> contextlib.AbstractContextManager[None]:
    """Inside the block teardown signals are ignored: a second Ctrl-C or SIGTERM must
    not cut a cleanup short."""
    return handled(signal.SIG_IGN)
