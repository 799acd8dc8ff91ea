"""Runs side by side on one machine (`harness suite --jobs N`).

Each run is a child process (harness/suite/worker.py) with its own Runner, so it gets
its own run id, and from that its own network, names and nodes: the backends allocate
ids, /24s and names under a host-wide lock, and clean up only what a dead owner process
left. Up to N worker threads each start one child at a time and relay its progress; the
runs are started longest first (expected duration), which shortens the wall time.

Ctrl-C, SIGTERM, SIGHUP or SIGQUIT: no new run starts, every running child gets SIGTERM
(its Runner heals every fault and tears everything down) and the suite waits for all of
them. Children run
in sessions of their own, so a terminal's Ctrl-C reaches them only through the parent,
once; if the parent dies, each child gets SIGTERM from the kernel (PR_SET_PDEATHSIG).

`auto_jobs()` is the machine's limit for `--jobs auto` (see `RUN_CPU_CORES`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.exitcodes import EXIT_ERROR
from harness.run import signals as run_signals
from harness.run.progress import Progress, RunStatus
from harness.run.runner import RunOutcome
from harness.runconfig import RunConfig
from harness.suite.worker import PARENT_ENV, PROTOCOL_FD_ENV

# What one run of 3 reference-elector nodes costs (bench/suite_jobs.py, local backend, on
# the project's 2-core machine): 8.0 to 9.4 CPU seconds over a ~25 s run (0.35 cores on
# average, more while starting), a peak of 208 to 232 MB. Figures stayed put up to 3 runs
# on 2 cores; at 4 the runs' leaderless time grew beyond a suite's default tolerance
# (5 points) and at 6 failover p50 doubled and a detection was lost (README, Benchmarks).
# So: a run counts as half a core with one run's worth kept for the machine, and 300 MB.
RUN_CPU_CORES = 0.5
RUN_MEMORY_MB = 300
MAX_AUTO_JOBS = 16


def auto_jobs(cores: int | None = None, available_mb: int | None = None) -> int:
    """How many runs fit side by side on this machine without slowing each other."""
    cores = cores if cores is not None else (len(os.sched_getaffinity(0)) or 1)
    available_mb = available_mb if available_mb is not None else _available_mb()
    by_cpu = int(cores / RUN_CPU_CORES) - 1
    by_memory = available_mb // RUN_MEMORY_MB
    return max(1, min(by_cpu, by_memory, MAX_AUTO_JOBS))


def _available_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return RUN_MEMORY_MB  # unknown: memory does not limit


def parse_jobs(text: str) -> int | str:
    """`--jobs`: a positive integer or `auto` (argparse type; ValueError names the value)."""
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer or auto, got {text!r}") from None
    if not 1 <= value <= 64:
        raise ValueError(f"expected 1 to 64 or auto, got {text!r}")
    return value


class Children:
    """The live child processes; a stop signal is forwarded to every one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self.stopping: str | None = None  # the signal that stopped the suite

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)
            stopping = self.stopping
        if stopping is not None:  # started while the stop was being forwarded
            _terminate(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def stop(self, why: str) -> None:
        with self._lock:
            self.stopping = self.stopping or why
            procs = list(self._procs)
        for proc in procs:
            _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)


def run_in_child(
    cfg: RunConfig, store: Path, progress: Progress, children: Children | None = None
) -> RunOutcome:
    """One run in a child process; its progress is relayed to `progress`."""
    store.mkdir(parents=True, exist_ok=True)
    log_path = store / f".worker-seed{cfg.seed}-{os.getpid()}-{threading.get_ident()}.log"
    read_fd, write_fd = os.pipe()
    env = {**os.environ, PROTOCOL_FD_ENV: str(write_fd), PARENT_ENV: str(os.getpid())}
    status = RunStatus()
    outcome: dict[str, Any] | None = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.suite.worker"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=(write_fd,),
                start_new_session=True,  # Ctrl-C reaches it once, through Children.stop
            )
        os.close(write_fd)
        write_fd = -1
        if children is not None:
            children.add(proc)
        try:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(pickle.dumps((cfg, str(store))))
                proc.stdin.close()
            with os.fdopen(read_fd, "rb") as messages:
                read_fd = -1
                for line in messages:
                    outcome = _relay(line, status, progress) or outcome
            proc.wait()
        finally:
            if children is not None:
                children.discard(proc)
            if proc.poll() is None:  # an exception in this thread: never leave it running
                _terminate(proc)
                proc.wait()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    if outcome is not None:
        _drop_empty(log_path)
        return RunOutcome(
            Path(outcome["run_dir"]) if outcome["run_dir"] else None,
            outcome["verdict"],
            outcome["exit_code"],
            outcome["error"],
            outcome["backend"],
            bool(outcome["interrupted"]),
        )
    stopped = children.stopping if children is not None else None
    tail = _tail(log_path)
    error = f"run process exited with status {proc.returncode} without an outcome"
    if stopped:
        error = f"interrupted by {stopped}"
    elif tail:
        error += f": {tail} (log: {log_path})"
    return RunOutcome(None, None, EXIT_ERROR, error, None, interrupted=stopped is not None)


def _relay(line: bytes, status: RunStatus, progress: Progress) -> dict[str, Any] | None:
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict):
        return None
    if "outcome" in msg:
        return msg["outcome"] if isinstance(msg["outcome"], dict) else None
    status.leader = msg.get("leader")
    status.faults = list(msg.get("faults") or [])
    status.faults_done = int(msg.get("done") or 0)
    if "phase" in msg:
        status.phase = str(msg["phase"])
        progress.phase(status, status.phase)
    elif "event" in msg:
        progress.fault(status, str(msg["event"]))
    return None


def _drop_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# ----------------------------------------------------------------------------- display


class RunLines:
    """One line per running run on a terminal (rich Live); finished runs print above."""

    def __init__(self, console: Console | None = None, *, live: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()
        self._rows: dict[int, tuple[str, RunStatus]] = {}
        self._next = 0
        use_live = self.console.is_terminal if live is None else live
        self._live = (
            Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            if use_live
            else None
        )

    def __enter__(self) -> RunLines:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        with self._lock:
            rows = list(self._rows.values())
        for label, s in rows:
            faults = ", ".join(s.faults) or "-"
            table.add_row(
                label, f"{s.elapsed():5.1f} s", s.phase, f"leader {s.leader or '-'}", faults
            )
        return table

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def add(self, label: str) -> SlotProgress:
        with self._lock:
            key = self._next
            self._next += 1
            self._rows[key] = (label, RunStatus())
        self.refresh()
        return SlotProgress(self, key, label)

    def update(self, key: int, status: RunStatus) -> None:
        with self._lock:
            if key in self._rows:
                self._rows[key] = (self._rows[key][0], status)
        self.refresh()

    def remove(self, key: int) -> None:
        with self._lock:
            self._rows.pop(key, None)
        self.refresh()

    def print(self, text: str) -> None:
        """A line above the running runs (or plain, without a terminal)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class SlotProgress:
    """The Progress of one running run: updates its line; with `verbose`, prints events."""

    def __init__(self, lines: RunLines, key: int, label: str, verbose: bool = False) -> None:
        self._lines = lines
        self._key = key
        self._label = label
        self.verbose = verbose

    def phase(self, status: RunStatus, name: str) -> None:
        self._lines.update(self._key, status)
        if self.verbose:
            self._lines.print(f"{self._label} [{status.elapsed():6.1f}s] phase: {name}")

    def fault(self, status: RunStatus, text: str) -> None:
        self._lines.update(self._key, status)
        if self.verbose:
            self._lines.print(f"{self._label} [{status.elapsed():6.1f}s] {text}")

    def close(self) -> None:
        self._lines.remove(self._key)


# ----------------------------------------------------------------------------- the pool


@contextlib.contextmanager
def forward_signals(children: Children) -> Iterator[None]:
    """A teardown signal (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) in the main thread: stop
    starting runs and SIGTERM every child."""

    def handler(signum: int, frame: FrameType | None) -> None:
        children.stop(signal.Signals(signum).name)

    with run_signals.handled(handler):
        yield


def run_pool(
    tasks: Sequence[Any],
    jobs: int,
    work: Callable[[Any], None],
    children: Children,
) -> None:
    """`work(task)` for every task on `jobs` threads, until done or `children.stopping`.
    The main thread waits in short steps so that signal handlers run promptly."""
    todo: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for task in tasks:
        todo.put(task)
    errors: list[BaseException] = []

    def worker() -> None:
        while children.stopping is None:
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            try:
                work(task)
            except BaseException as exc:  # reported after the others finish
                errors.append(exc)
                children.stop(f"an error in the suite: {exc}")
                return

    threads = [
        threading.Thread(target=worker, name=f"suite-job-{i + 1}", daemon=True)
        for i in range(max(1, min(jobs, len(tasks))))
    ]
    for t in threads:
        t.start()
    with forward_signals(children):
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    if errors:
        raise errors[0]
