"""What a person watching a run sees: phase, elapsed time, current leader, active faults.

`LiveProgress` redraws one panel on a terminal (rich); `LineProgress` prints a line per
phase change and fault, for CI logs and pytest. Both read the same `RunStatus`.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass
class RunStatus:
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    leader: str | None = None
    faults: list[str] = field(default_factory=list)
    faults_done: int = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Progress(Protocol):
    def phase(self, status: RunStatus, name: str) -> None: ...

    def fault(self, status: RunStatus, text: str) -> None: ...

    def close(self) -> None: ...


class LineProgress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def _print(self, status: RunStatus, text: str) -> None:
        print(f"[{status.elapsed():6.1f}s] {text}", file=self._stream, flush=True)

    def phase(self, status: RunStatus, name: str) -> None:
        self._print(status, f"phase: {name}")

    def fault(self, status: RunStatus, text: str) -> None:
        self._print(status, text)

    def close(self) -> None:
        pass


class LiveProgress:
    def __init__(self, status: RunStatus, title: str) -> None:
        self._status = status
        self._title = title
        self._console = Console(stderr=True)
        self._live = Live(self._render(), console=self._console, refresh_per_second=4)
        self._live.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True, name="progress")
        self._thread.start()

    def _render(self) -> Table:
        s = self._status
        table = Table(title=self._title, show_header=False, min_width=50)
        table.add_row("phase", s.phase)
        table.add_row("elapsed", f"{s.elapsed():.1f} s")
        table.add_row("leader", s.leader or "-")
        table.add_row("active faults", ", ".join(s.faults) or "-")
        table.add_row("faults done", str(s.faults_done))
        return table

    def _refresh(self) -> None:
        while not self._stop.wait(0.25):
            self._live.update(self._render())

    def phase(self, status: RunStatus, name: str) -> None:
        self._live.update(self._render())

    def fault(self, status: RunStatus, text: str) -> None:
        self._live.console.print(f"[{status.elapsed():6.1f}s] {text}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._live.update(self._render())
        self._live.stop()
