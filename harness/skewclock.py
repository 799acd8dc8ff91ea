"""A clock whose offset and rate the harness can change while a process runs.

Used by the reference elector and by candidates: every timer and lease check reads
`SkewClock.now_ns()`. Python programs cannot be skewed reliably with libfaketime (see
docs/FACTS.md), so skew comes from a small JSON control file that the clock nemesis
writes on the node:

    {"offset_ns": 0, "rate": 1.0, "since_ns": 0}

The skewed reading is `real + offset_ns + (rate - 1) * max(0, real - since_ns)`, with
`real` the kernel's monotonic clock. It is a pure function of the file's content, so the
writer can change rate without a jump by choosing `since_ns` = now. A missing or empty
file means real time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Skew:
    offset_ns: int = 0
    rate: float = 1.0
    since_ns: int = 0

    def apply(self, real_ns: int) -> int:
        drift = (self.rate - 1.0) * max(0, real_ns - self.since_ns)
        return real_ns + self.offset_ns + int(drift)

    def invert(self, skewed_ns: int) -> int:
        """The real monotonic time at which this skew reads `skewed_ns`."""
        after = self.since_ns + (skewed_ns - self.offset_ns - self.since_ns) / self.rate
        if after >= self.since_ns:
            return int(after)
        return skewed_ns - self.offset_ns

    def to_json(self) -> str:
        return json.dumps(
            {"offset_ns": self.offset_ns, "rate": self.rate, "since_ns": self.since_ns}
        )

    @classmethod
    def from_json(cls, text: str) -> Skew:
        if not text.strip():
            return cls()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("clock control file: expected a JSON object")
        offset = data.get("offset_ns", 0)
        rate = data.get("rate", 1.0)
        since = data.get("since_ns", 0)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ValueError("clock control file: offset_ns must be an integer")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            raise ValueError("clock control file: rate must be a positive number")
        if not isinstance(since, int) or isinstance(since, bool):
            raise ValueError("clock control file: since_ns must be an integer")
        return cls(offset_ns=offset, rate=float(rate), since_ns=since)


def write_skew(path: str | os.PathLike[str], skew: Skew) -> None:
    """Replace the control file atomically, so a reader never sees half a file."""
    from harness.safefile import write_atomic  # the one way files are replaced

    write_atomic(path, skew.to_json())


class SkewClock:
    """Monotonic nanoseconds, skewed as the control file says (real time without one)."""

    def __init__(self, control_file: str | os.PathLike[str] | None = None) -> None:
        self._path = None if control_file is None else os.fspath(control_file)
        self._skew = Skew()
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _current_skew(self) -> Skew:
        if self._path is None:
            return self._skew
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._stamp, self._skew = None, Skew()
            return self._skew
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._stamp:
            with self._lock:
                try:
                    with open(self._path, encoding="utf-8") as fh:
                        self._skew = Skew.from_json(fh.read())
                except (OSError, ValueError):
                    # A bad control file must not stop the node; keep the last good skew.
                    pass
                self._stamp = stamp
        return self._skew

    def now_ns(self) -> int:
        return self._current_skew().apply(time.monotonic_ns())

    def now(self) -> float:
        return self.now_ns() / 1e9

    def monotonic_at(self, skewed_ns: int) -> int:
        """When (real monotonic ns) this clock read, or will read, `skewed_ns`: used to
        stamp, on the reference clock, the moment a skewed deadline passed."""
        return self._current_skew().invert(skewed_ns)
