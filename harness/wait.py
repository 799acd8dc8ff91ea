"""One way to wait for a condition: `wait_until(predicate, timeout, what)`.

Every bounded wait in the harness (a daemon to exit, an exec to get a pid, a majority to
agree on a leader, killed processes to go away) polls a predicate until it holds or the
time is up, as testcontainers' wait strategies do. On timeout the error says what was
awaited and for how long, so a failure reads as a sentence, not as a bare `None`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class WaitTimeout(HarnessError, TimeoutError):
    """A bounded wait ended with its condition still false; the message says which."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g} s waiting for {what}")
        self.what = what
        self.timeout = timeout


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.01,
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and
    return that; raise WaitTimeout naming `what` once `timeout` seconds have passed.

    The predicate is always tried at least once, and once more at the deadline, so a
    zero timeout is a single look and a condition that became true during the last sleep
    is not reported as a timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(what, timeout)
        time.sleep(min(interval, left))
