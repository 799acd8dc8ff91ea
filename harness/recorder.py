"""The reference clock and the recorder that stamps events with it.

Every history timestamp is nanoseconds since the run began on ONE clock: the kernel's
monotonic clock, which network namespaces and containers on this machine share. The
run's origin travels to candidate processes in the environment (`HARNESS_T0_NS`), so
every writer stamps on the same clock. Clock-skew faults never touch these stamps.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from harness.history.writer import HistoryWriter

T0_ENV = "HARNESS_T0_NS"


class RefClock:
    """Nanoseconds since the run's origin on the shared monotonic clock."""

    def __init__(self, origin_ns: int | None = None) -> None:
        self.origin_ns = time.monotonic_ns() if origin_ns is None else origin_ns

    @classmethod
    def from_env(cls) -> RefClock:
        value = os.environ.get(T0_ENV)
        if value is None:
            raise RuntimeError(f"{T0_ENV} is not set: the harness passes the run's clock origin")
        return cls(int(value))

    def now(self) -> int:
        return time.monotonic_ns() - self.origin_ns

    def from_monotonic(self, monotonic_ns: int) -> int:
        return monotonic_ns - self.origin_ns


class Recorder:
    """Appends events to a history file, stamped on the reference clock.

    Events of one process must be strictly ordered in time (docs/HISTORY.md), so a
    stamp equal to or before that process's previous one is moved 1 ns past it.
    """

    def __init__(self, writer: HistoryWriter, clock: RefClock) -> None:
        self.writer = writer
        self.clock = clock
        self._last: dict[Any, int] = {}
        self._lock = threading.Lock()

    def record(
        self,
        process: Any,
        etype: str,
        f: str,
        value: dict[str, Any] | None = None,
        *,
        node: str | None = None,
        time_ns: int | None = None,
    ) -> int:
        """Record one event now (or at `time_ns`, never before the process's last one)."""
        with self._lock:
            stamp = self.clock.now() if time_ns is None else time_ns
            last = self._last.get(process)
            if last is not None and stamp <= last:
                stamp = last + 1
            self._last[process] = stamp
            event: dict[str, Any] = {"time": stamp, "process": process, "type": etype, "f": f}
            if value is not None:
                event["value"] = value
            if node is not None:
                event["node"] = node
            self.writer.append(event)
            return stamp

    def last_time(self, process: Any) -> int | None:
        with self._lock:
            return self._last.get(process)

    def close(self) -> None:
        self.writer.close()
