"""Append-only history writer: every event reaches the operating system as it happens.

Each `append` is one `os.write` of one JSON line on an O_APPEND descriptor (so several
processes may share a file and a killed harness loses nothing it recorded), and a
background thread fsyncs whenever something was written, at least every 100 ms.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from harness.safefile import open_append

FSYNC_INTERVAL_S = 0.05


class HistoryWriter:
    """Writes events (dicts in format v1) to one JSON Lines file, numbering them with `index`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float = FSYNC_INTERVAL_S,
        add_index: bool = True,
    ) -> None:
        self.path = Path(path)
        # Never through a link planted at the path: history/ is writable by the nodes.
        self._fd = open_append(self.path)
        self._lock = threading.Lock()
        self._dirty = False
        self._next_index = 0
        self._add_index = add_index
        self._closed = threading.Event()
        self._interval = fsync_interval
        self._syncer = threading.Thread(target=self._sync_loop, name="history-fsync", daemon=True)
        self._syncer.start()

    def append(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._closed.is_set():
                raise ValueError(f"{self.path}: history writer is closed")
            if self._add_index:
                event = {**event, "index": self._next_index}
                self._next_index += 1
            data = orjson.dumps(event) + b"\n"
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._dirty = True

    def flush(self) -> None:
        """fsync now if anything was written since the last fsync."""
        with self._lock:
            if self._dirty and not self._closed.is_set():
                os.fsync(self._fd)
                self._dirty = False

    def _sync_loop(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.flush()
            except OSError:
                # The descriptor may be gone at interpreter exit; the final close reports.
                return

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            if self._dirty:
                os.fsync(self._fd)
            os.close(self._fd)
        self._syncer.join(timeout=1.0)

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
