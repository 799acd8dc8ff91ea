"""The running cluster as the runner and the nemeses see it: members and candidates.

It owns the member and candidate daemons of every node, restarts them after kills, and
gives each candidate incarnation a new process id (Jepsen's convention: a crashed
process never comes back; the runner records `crash` for the old id). A candidate killed
while frozen (SIGSTOP, the pause nemesis) never ran again after it froze, so its `crash`
is recorded at the moment it froze: a guarded candidate that had woken would have
recorded `lost` at its lease deadline, and one killed frozen must not be read as having
believed it led until the kill (`pause` and `kill` overlap in `--nemesis all`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness.backends.base import Backend, Daemon, Node, ProgramRequirements
from harness.recorder import T0_ENV, Recorder
from harness.run.probe import StatusProbe
from harness.safefile import open_read
from harness.targets.base import ClockControl, Target, TargetError
from harness.wait import WaitTimeout, wait_until
from harness.workloads.program import (
    ProgramHistoryError,
    ProgramSpec,
    normalize_program_history,
    program_env,
    raw_history_path,
)
from harness.workloads.settings import CandidateSettings

KILL_WAIT_S = 5.0
TAIL_BYTES = 16384


class FreezeTracking:
    """A candidate's daemon that remembers since when it is frozen: SIGSTOP sets
    `frozen_at` (reference-clock ns), SIGCONT clears it. Everything else is the daemon's."""

    def __init__(self, daemon: Daemon, now: Callable[[], int]) -> None:
        self._daemon = daemon
        self._now = now
        self.name = daemon.name
        self.node = daemon.node
        self.frozen_at: int | None = None

    def signal(self, signum: int) -> None:
        self._daemon.signal(signum)
        # Stamped after the signal: the process cannot record anything later than this.
        if signum == signal.SIGSTOP and self.frozen_at is None:
            self.frozen_at = self._now()
        elif signum == signal.SIGCONT:
            self.frozen_at = None

    def stop(self, timeout: float = 5.0) -> int | None:
        return self._daemon.stop(timeout)

    def poll(self) -> int | None:
        return self._daemon.poll()

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (pid, container name, ...) stay reachable.
        return getattr(self._daemon, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._daemon, name, value)

    _OWN = frozenset({"_daemon", "_now", "name", "node", "frozen_at"})


def holding_since(history: Path, wall_t0_ns: int = 0) -> int | None:
    """When the candidate writing `history` acquired, if its latest word on the election
    is still that acquisition (no `lost`, `release` or new `acquire` since). Reads back
    from the end, in growing windows, only as far as the latest such word."""
    try:
        with open_read(history) as f:  # node-written: never through a link
            size = f.seek(0, os.SEEK_END)
            window = TAIL_BYTES
            while True:
                start = max(0, size - window)
                f.seek(start)
                lines = f.read(size - start).splitlines()
                if start > 0:
                    lines = lines[1:]  # the first line read may be cut
                found, since = _latest_word(lines, wall_t0_ns)
                if found or start == 0:
                    return since
                window *= 4
    except OSError:
        return None


def _latest_word(lines: list[bytes], wall_t0_ns: int = 0) -> tuple[bool, int | None]:
    for line in reversed(lines):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line being written
        if not isinstance(event, dict):
            continue  # an external program's malformed line: reported at the end
        f_name, etype = event.get("f"), event.get("type")
        if f_name == "acquire" and etype == "ok":
            # An external program may stamp on the wall clock (docs/CANDIDATE.md).
            stamp = event.get("time", event.get("wall_ns", 0) - wall_t0_ns)
            return True, int(stamp) if isinstance(stamp, int) else None
        if f_name in ("acquire", "release", "lost") and (f_name != "acquire" or etype == "invoke"):
            return True, None
    return False, None


def _wait_gone(daemon: Daemon, timeout: float = KILL_WAIT_S) -> None:
    """Best effort after SIGKILL: a daemon still there is reported by the runner's
    exit checks and removed by teardown, so a timeout here is not an error."""
    with contextlib.suppress(WaitTimeout):
        wait_until(
            lambda: daemon.poll() is not None, timeout, f"{daemon.name} to exit after SIGKILL"
        )


class RunCluster:
    def __init__(
        self,
        *,
        backend: Backend,
        nodes: Sequence[Node],
        target: Target,
        recorder: Recorder,
        run_dir: Path,
        resource_url: str,
        workload: CandidateSettings,
        workload_explicit: dict[str, Any],
        seed: int,
        program: ProgramSpec | None = None,
        program_dir: Path | None = None,
    ) -> None:
        self.backend = backend
        self.nodes = list(nodes)
        self.target = target
        self._rec = recorder
        self._run_dir = run_dir
        self._resource_url = resource_url
        self._workload = workload
        self._workload_explicit = workload_explicit
        self._seed = seed
        self._program = program or ProgramSpec()
        self._program_dir = program_dir
        # The wall clock's reading at the reference clock's origin, for programs that
        # can only stamp on the wall clock (a shell script's `date +%s%N`).
        self.wall_t0_ns = time.time_ns() - recorder.clock.now()
        self._external: list[tuple[int, str]] = []  # (process, node) of external programs
        self._members: dict[str, Daemon | None] = {n.name: None for n in self.nodes}
        self._candidates: dict[str, tuple[Daemon, int] | None] = {n.name: None for n in self.nodes}
        self._incarnations = dict.fromkeys((n.name for n in self.nodes), 0)
        self._lock = threading.RLock()
        self.probe: StatusProbe | None = None

    # --- members ---------------------------------------------------------------------

    def member(self, node: Node) -> Daemon | None:
        with self._lock:
            return self._members[node.name]

    def start_member(self, node: Node) -> None:
        with self._lock:
            current = self._members[node.name]
            if current is not None and current.poll() is None:
                return
            self._members[node.name] = self.target.start_member(node)

    def kill_member(self, node: Node) -> None:
        with self._lock:
            daemon = self._members[node.name]
            self._members[node.name] = None
        if daemon is not None and daemon.poll() is None:
            daemon.signal(signal.SIGKILL)
            _wait_gone(daemon)

    # --- candidates ------------------------------------------------------------------

    def candidate(self, node: Node) -> Daemon | None:
        with self._lock:
            entry = self._candidates[node.name]
            return None if entry is None else entry[0]

    def start_candidate(self, node: Node) -> None:
        with self._lock:
            entry = self._candidates[node.name]
            if entry is not None and entry[0].poll() is None:
                return
            index = self.nodes.index(node)
            process = index + 1 + len(self.nodes) * self._incarnations[node.name]
            self._incarnations[node.name] += 1
            spec = self.target.candidate(node)
            # The target's candidate defaults, then whatever the run's YAML set itself.
            settings = {**self._workload.to_dict(), **spec.settings, **self._workload_explicit}
            log_path = self._run_dir / "logs" / f"{node.name}-candidate.log"
            env = {T0_ENV: str(self._rec.clock.origin_ns)}
            if self._program_dir is not None:
                env.update(program_env(self._program_dir, self._requirements_path()))
            if self._program.external:
                daemon = self._start_program(node, process, spec, settings, env, log_path)
            else:
                adapter, options = spec.adapter, spec.options
                if self._program.client:
                    adapter, options = self._program.client, self._program.options
                # Where nodes do not share the harness's clock, candidates run here (the
                # backend's spawn_candidate), under this machine's interpreter.
                python = self.backend.python if self.backend.shares_clock else sys.executable
                argv = [
                    python, "-m", "harness.workloads.candidate",
                    "--process", str(process),
                    "--node", node.name,
                    "--adapter", adapter,
                    "--endpoint", spec.endpoint,
                    "--resource", self._resource_url,
                    "--history", str(self._run_dir / "history" / f"p{process}.jsonl"),
                    "--clock-file", self.candidate_clock_file(node),
                    "--settings", json.dumps(settings),
                    "--adapter-options", json.dumps(options),
                    "--seed", str(self._seed),
                ]  # fmt: skip
                daemon = self.backend.spawn_candidate(
                    node, f"candidate-p{process}", argv, env=env, log_path=log_path
                )
            self._candidates[node.name] = (FreezeTracking(daemon, self._rec.clock.now), process)

    def _start_program(
        self,
        node: Node,
        process: int,
        spec: Any,
        settings: dict[str, Any],
        env: dict[str, str],
        log_path: Path,
    ) -> Daemon:
        """An external candidate: the team's command, in the program folder, told
        everything through HARNESS_* variables (docs/CANDIDATE.md)."""
        assert self._program_dir is not None
        options = spec.options
        endpoints = [self.target.candidate(n).endpoint for n in self.nodes]
        env = {
            **env,
            "HARNESS_PROCESS": str(process),
            "HARNESS_NODE": node.name,
            "HARNESS_NODES": ",".join(n.name for n in self.nodes),
            "HARNESS_ENDPOINT": spec.endpoint,
            "HARNESS_ENDPOINTS": ",".join(endpoints),
            "HARNESS_RESOURCE": self._resource_url,
            "HARNESS_ELECTION": str(options.get("election") or options.get("key") or "leader"),
            "HARNESS_TARGET": self.target.name,
            "HARNESS_TARGET_OPTIONS": json.dumps(options),
            "HARNESS_HISTORY": str(raw_history_path(self._run_dir, process)),
            "HARNESS_WALL_T0_NS": str(self.wall_t0_ns),
            "HARNESS_CLOCK_FILE": self.candidate_clock_file(node),
            "HARNESS_SETTINGS": json.dumps(settings),
            "HARNESS_SEED": str(self._seed),
        }
        server_bin = getattr(self.target, "server_bin", None)
        if server_bin:
            env["HARNESS_SERVER_BIN"] = server_bin
        # The shell changes into the program folder and then becomes the program (exec):
        # the daemon's pid is the program's own, which is what pause and kill signal.
        argv = ["sh", "-c", 'cd "$0" && exec "$@"', str(self._program_dir), *self._program.command]
        self._external.append((process, node.name))
        return self.backend.spawn(node, f"candidate-p{process}", argv, env=env, log_path=log_path)

    def collect_program_histories(self) -> None:
        """After the candidates stopped: turn every external program's event file into
        its part of the history. A node whose programs recorded nothing, or a malformed
        line, stops the check with the node, the line and the problem."""
        counts: dict[str, int] = {}
        for process, node in self._external:
            n = normalize_program_history(
                raw_history_path(self._run_dir, process),
                self._run_dir / "history" / f"p{process}.jsonl",
                process=process,
                node=node,
                wall_t0_ns=self.wall_t0_ns,
            )
            counts[node] = counts.get(node, 0) + n
        if silent := sorted(node for node, n in counts.items() if n == 0):
            raise ProgramHistoryError(
                f"external candidate on {', '.join(silent)} recorded nothing in "
                f"$HARNESS_HISTORY (see logs/<node>-candidate.log and docs/CANDIDATE.md)"
            )

    def kill_candidate(self, node: Node) -> None:
        with self._lock:
            entry = self._candidates[node.name]
            self._candidates[node.name] = None
        if entry is None:
            return
        daemon, process = entry
        frozen_at = getattr(daemon, "frozen_at", None)
        if daemon.poll() is None:
            daemon.signal(signal.SIGKILL)
            _wait_gone(daemon)
        value: dict[str, Any] = {"signal": "SIGKILL"}
        if frozen_at is not None:
            value["frozen"] = True  # stamped when it froze: it never ran after that
        self._rec.record(process, "info", "crash", value, node=node.name, time_ns=frozen_at)

    def stop_candidates(self) -> None:
        """End of the run: SIGCONT+SIGTERM every candidate (their open operations stay
        open, which the history allows)."""
        with self._lock:
            entries = [e for e in self._candidates.values() if e is not None]
            self._candidates = dict.fromkeys(self._candidates)
        for daemon, _ in entries:
            daemon.stop(timeout=3.0)

    def stop_members(self) -> None:
        with self._lock:
            daemons = [d for d in self._members.values() if d is not None]
            self._members = dict.fromkeys(self._members)
        for daemon in daemons:
            daemon.stop(timeout=3.0)

    def _current(self, node: Node, kind: str) -> Daemon | None:
        if kind == "member":
            return self._members[node.name]
        entry = self._candidates[node.name]
        return None if entry is None else entry[0]

    def exited_on_their_own(self) -> list[str]:
        """Members and candidates that ended without a nemesis or the runner stopping
        them (a kill clears the entry before it signals), one line each."""
        kinds = ("member", "candidate")
        with self._lock:
            running = [
                (node, kind, daemon)
                for node in self.nodes
                for kind in kinds
                if (daemon := self._current(node, kind)) is not None
            ]
        problems = []
        for node, kind, daemon in running:
            status = daemon.poll()
            with self._lock:
                still_current = self._current(node, kind) is daemon
            if status is not None and still_current:
                problems.append(
                    f"{daemon.name} on {node.name} exited on its own with status {status} "
                    f"(logs in {self._run_dir / 'logs'})"
                )
        return problems

    # --- what nemeses ask ------------------------------------------------------------

    def leader(self) -> Node | None:
        name = self.probe.leader() if self.probe is not None else None
        return next((n for n in self.nodes if n.name == name), None)

    def _candidate_history(self, process: int) -> Path:
        """Where a candidate writes its events while it runs: the built-in candidate's
        own history file, or an external program's raw events file."""
        if process in {p for p, _ in self._external}:
            return raw_history_path(self._run_dir, process)
        return self._run_dir / "history" / f"p{process}.jsonl"

    def started_candidates(self) -> int:
        """How many live candidates have written their first event."""
        with self._lock:
            live = [e[1] for n in self.nodes if (e := self._candidates[n.name]) is not None]
        return sum(
            1
            for process in live
            if (path := self._candidate_history(process)).exists() and path.stat().st_size > 0
        )

    def holder(self) -> Node | None:
        """The node whose live candidate most recently acquired and still believes it
        holds the election, read from the tails of the candidates' history files."""
        with self._lock:
            live = [(n, e[1]) for n in self.nodes if (e := self._candidates[n.name]) is not None]
        best: tuple[int, Node] | None = None
        for node, process in live:
            since = holding_since(self._candidate_history(process), self.wall_t0_ns)
            if since is not None and (best is None or since > best[0]):
                best = (since, node)
        return None if best is None else best[1]

    def member_clock_file(self, node: Node) -> str | None:
        # What the target declared, not what its methods suggest (the registry checked
        # that a "clock-file" target implements ClockControl). A member on a host of its
        # own keeps that host's clock (out of scope to skew).
        if self.target.member_clock != "clock-file" or not self.backend.shares_clock:
            return None
        if not isinstance(self.target, ClockControl):
            raise TargetError(
                f"target {self.target.name} declares member_clock 'clock-file' but has no "
                "member_clock_file"
            )
        return self.target.member_clock_file(node)

    def _requirements_path(self) -> list[str]:
        """Where the backend put the program's requirements (the docker run image), for
        PYTHONPATH; elsewhere they are the host's own (checked before the run)."""
        if isinstance(self.backend, ProgramRequirements):
            path = self.backend.requirements_path()
            return [path] if path else []
        return []

    def candidate_clock_file(self, node: Node) -> str:
        return str(self._run_dir / "nodes" / node.name / "candidate-clock.json")

    def record(self, f: str, value: dict[str, Any]) -> None:
        self._rec.record("nemesis", "info", f, value)
