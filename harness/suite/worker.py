"""One suite run in a child process of its own (`python -m harness.suite.worker`), for
`harness suite --jobs N`.

Why a process per run: the Runner catches SIGTERM/SIGINT in its main thread to tear
everything down, and the runs' probes and candidates are timing sensitive, so runs side
by side must not share one interpreter (and its GIL). The parent writes a pickled
`(RunConfig, store)` to stdin; the child writes JSON lines to the file descriptor named
by $LH_WORKER_FD: `{"phase": ...}` and `{"event": ...}` while running, and finally
`{"outcome": {...}}`. Everything else the run prints (logs) goes to stderr, which the
parent sends to a log file. The child dies with its parent (PR_SET_PDEATHSIG: SIGTERM,
so a killed suite still tears its runs down).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from harness.run.progress import RunStatus

PROTOCOL_FD_ENV = "LH_WORKER_FD"
PARENT_ENV = "LH_WORKER_PARENT"
_PR_SET_PDEATHSIG = 1


class PipeProgress:
    """A Progress that reports to the parent as JSON lines."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def _send(self, status: RunStatus, **data: Any) -> None:
        data.update(leader=status.leader, faults=list(status.faults), done=status.faults_done)
        with contextlib.suppress(OSError):  # the parent is gone: the run still tears down
            self._out.write(orjson.dumps(data) + b"\n")
            self._out.flush()

    def phase(self, status: RunStatus, name: str) -> None:
        self._send(status, phase=name)

    def fault(self, status: RunStatus, text: str) -> None:
        self._send(status, event=text)

    def close(self) -> None:
        pass


def _die_with_parent() -> None:
    """SIGTERM when the parent dies (the Runner then tears the run down); if the parent is
    already gone, stop before creating anything."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and str(os.getppid()) != expected:
        sys.exit(2)


def main() -> int:
    _die_with_parent()
    fd = int(os.environ[PROTOCOL_FD_ENV])
    out = os.fdopen(fd, "wb")
    cfg, store = pickle.loads(sys.stdin.buffer.read())
    from harness.suite.runner import execute_run

    outcome = execute_run(cfg, Path(store), PipeProgress(out))
    data = {
        "run_dir": str(outcome.run_dir) if outcome.run_dir is not None else None,
        "verdict": outcome.verdict,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "backend": outcome.backend,
        "interrupted": outcome.interrupted,
    }
    out.write(orjson.dumps({"outcome": data}) + b"\n")
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
