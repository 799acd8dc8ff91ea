"""The runner: one run from provisioning to verdict, healing and tearing down on every
way out (success, failure, exception, Ctrl-C, SIGTERM, SIGHUP, SIGQUIT).

Phases (one method each): refuse what can be refused (target, nemeses, schedule,
backend), clean leftovers of crashed runs, provision nodes, start the resource, start
the target's members and the status probe, wait for a leader, start the candidates, run
the seeded fault schedule for the time limit, heal everything, let the cluster recover
for a quiet period, stop, tear down, merge the history, check it, write the run
directory. The undoing of each thing is pushed on one ExitStack as soon as it exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.backends import create_backend
from harness.backends import docker as docker_backend
from harness.backends.base import Backend, BackendError, BackendUnavailable, Node
from harness.backends.local import clean_leftovers as clean_local_leftovers
from harness.checker import Verdict, check
from harness.errors import HarnessError
from harness.exitcodes import EXIT_ERROR, EXIT_INVALID, EXIT_VALID
from harness.history import HistoryError, HistoryWriter, merge_histories
from harness.nemesis import all_nemeses, make_nemeses
from harness.nemesis._common import StartFailed
from harness.nemesis.base import Fault, FaultPlan, Nemesis, NemesisRefused, brackets_in
from harness.nemesis.durations import (
    Durations,
    default_durations,
    faults_to_fit,
    fitting_time_limit,
    timing_of,
)
from harness.nemesis.explicit import NODE_NAME, check_fits, kinds_of, plans_to_entries
from harness.nemesis.schedule import BRACKET_LEAD_S, BRACKET_TAIL_S, make_schedule
from harness.recorder import Recorder, RefClock
from harness.resource import ProtectedResource
from harness.run import signals
from harness.run.cluster import RunCluster
from harness.run.probe import StatusProbe
from harness.run.progress import LineProgress, Progress, RunStatus
from harness.run.signals import RunInterrupted
from harness.run.store import check_store, new_run_dir, write_config, write_results
from harness.runconfig import RunConfig
from harness.safefile import open_append
from harness.targets import TargetError, UnsupportedPair, make_target, pair_refusal
from harness.targets.base import Target
from harness.wait import WaitTimeout, wait_until
from harness.workloads.program import ProgramError, ProgramHistoryError, prepare_program_dir

log = logging.getLogger(__name__)
EXIT_CHECK_S = 1.0

LEADER_TIMEOUT_S = 30.0
RUN_LOG = "harness.log"


class RunError(HarnessError, RuntimeError):
    """The run could not be carried out (exit status 2); the message says why."""


@dataclass
class RunOutcome:
    run_dir: Path | None
    verdict: Verdict | None
    exit_code: int
    error: str | None = None
    backend: str | None = None
    interrupted: bool = False  # a teardown signal: callers running many runs should stop


def longest_member_pause_ns(plans: list[FaultPlan]) -> int:
    """The longest pause the schedule inflicts on a member. A frozen member cannot step
    down, and answers the first status request after waking from its frozen state, so
    the target's stale-leader grace (its running time to step down) is extended by it."""
    return max(
        (
            int(p.duration_s * 1e9)
            for p in plans
            if p.nemesis == "pause" and p.mode in ("member", "both")
        ),
        default=0,
    )


def explicit_plans(cfg: RunConfig, nemeses: list[str]) -> list[FaultPlan]:
    """The configuration's explicit schedule, checked against what the command line may
    have changed since it was read (nemeses, time limit, node count)."""
    assert cfg.plans is not None
    where = f"{cfg.source or 'config'}: nemesis.schedule"
    for i, plan in enumerate(cfg.plans):
        if plan.nemesis not in nemeses:
            raise ValueError(
                f"{where}[{i}]: a {plan.nemesis} fault, but the run's nemeses are "
                f"{', '.join(nemeses) or 'none'}"
            )
        target = plan.params.get("target")
        if isinstance(target, str) and NODE_NAME.fullmatch(target) and int(target[1:]) > cfg.nodes:
            raise ValueError(f"{where}[{i}].target: {target}, but the run has {cfg.nodes} nodes")
    check_fits(cfg.plans, cfg.time_limit, where)
    return list(cfg.plans)


def choose_backend(requested: str) -> tuple[str, str]:
    """(backend name, why): `auto` is docker whenever a Docker daemon answers, else local."""
    if requested != "auto":
        return requested, "as requested"
    if docker_backend.daemon_answers():
        return "docker", "auto: a Docker daemon answers"
    return "local", "auto: no Docker daemon answers"


class FaultDriver(threading.Thread):
    """Carries out the seeded schedule; remembers active faults so any exit can heal."""

    def __init__(
        self,
        cluster: RunCluster,
        nemeses: dict[str, Nemesis],
        plans: list[FaultPlan],
        status: RunStatus,
        progress: Progress,
    ) -> None:
        super().__init__(name="nemesis", daemon=True)
        self._cluster = cluster
        self._nemeses = nemeses
        self._plans = plans
        self._status = status
        self._progress = progress
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.active: list[tuple[FaultPlan, Fault]] = []
        self.error: BaseException | None = None
        self.done = 0

    def run(self) -> None:
        # Faults of different nemeses overlap, so walk one timeline of starts and heals.
        started = time.monotonic()
        steps = sorted(
            [(p.at_s, 1, i, p) for i, p in enumerate(self._plans)]
            + [(p.at_s + p.duration_s, 0, i, p) for i, p in enumerate(self._plans)],
            key=lambda step: step[:3],
        )
        faults: dict[int, Fault] = {}
        try:
            for at_s, is_start, i, plan in steps:
                if self._halt.wait(max(0.0, started + at_s - time.monotonic())):
                    return
                if not is_start:
                    if i in faults:
                        self._heal(plan, faults.pop(i))
                    continue
                try:
                    fault = self._nemeses[plan.nemesis].start(self._cluster, plan)
                except StartFailed as exc:
                    # Half-applied and not undone: keep it so that every exit heals it.
                    with self._lock:
                        self.active.append((plan, _Unfinished(plan, exc)))
                    raise
                faults[i] = fault
                with self._lock:
                    self.active.append((plan, fault))
                    self._status.faults = [f.description for _, f in self.active]
                self._progress.fault(self._status, f"fault: {fault.description}")
        except BaseException as exc:  # reported by the runner, which heals what is left
            self.error = exc

    def _heal(self, plan: FaultPlan, fault: Fault) -> None:
        fault.heal()
        with self._lock:
            if (plan, fault) in self.active:
                self.active.remove((plan, fault))
                self.done += 1
            self._status.faults = [f.description for _, f in self.active]
            self._status.faults_done = self.done
        self._progress.fault(self._status, f"healed: {fault.description}")

    def stop_and_heal(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)
        with self._lock:
            left = list(self.active)
        for plan, fault in left:
            try:
                self._heal(plan, fault)
            except Exception as exc:  # keep healing the others
                log.error("could not heal %s: %s", fault.description, exc)


class _Unfinished:
    """A fault whose start failed halfway and whose undo failed too: heal retries it."""

    def __init__(self, plan: FaultPlan, failure: StartFailed) -> None:
        self.description = f"{plan.nemesis} {plan.mode} (failed to start: {failure})"
        self._failure = failure

    def heal(self) -> None:
        self._failure.heal()


@dataclass
class _Prepared:
    """Everything a run needs that could be refused, made before anything is created."""

    backend_name: str
    why: str
    target: Target
    nemeses: list[Nemesis]
    plans: list[FaultPlan]
    backend: Backend
    every: bool = False  # `--nemesis all`: a nemesis that refuses the cluster is left out
    notes: list[str] = field(default_factory=list)  # said once, after the backend line


@contextlib.contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """RUN_DIR/harness.log: the harness's own log records (warnings and errors, with
    tracebacks) while the run lasts; opened without following links like every file of a
    run directory."""
    handler = logging.StreamHandler(os.fdopen(open_append(run_dir / RUN_LOG), "a"))
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        handler.stream.close()


class Runner:
    """One run. `execute` refuses what it can before creating anything; `_run` goes
    through the phases, each pushing the undoing of what it makes onto one ExitStack
    right after making it, so that every way out (success, failure, exception, a
    teardown signal) unwinds exactly what exists, in reverse order."""

    def __init__(self, cfg: RunConfig, *, store: Path, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.status = RunStatus()
        self.progress: Progress = progress or LineProgress()
        self.run_id = secrets.token_hex(4)
        self.plans: list[FaultPlan] = []
        self.driver: FaultDriver | None = None
        # The team's program folder (workload.command/files/client), and the cluster,
        # whose external programs' events are read back after teardown.
        self._program_dir: Path | None = None
        self._cluster: RunCluster | None = None
        # The nemeses the run used (`all` resolved), and those `all` left out, with why.
        self.nemesis_names: list[str] = [n for n in cfg.nemeses if n not in ("none", "all")]
        self.refused: dict[str, str] = {}

    def _phase(self, name: str) -> None:
        self.status.phase = name
        self.progress.phase(self.status, name)

    def execute(self) -> RunOutcome:
        # The raising handlers come first: building a schedule or cleaning leftovers can
        # take a while, and a signal during it must end the run, not be remembered.
        with signals.raising():
            try:
                return self._execute()
            except RunInterrupted as exc:
                return RunOutcome(None, None, EXIT_ERROR, f"interrupted by {exc}", interrupted=True)

    def _execute(self) -> RunOutcome:
        try:
            prepared = self._prepare()
        except (TargetError, BackendUnavailable, BackendError, ValueError) as exc:
            return RunOutcome(None, None, EXIT_ERROR, str(exc))
        cfg = self.cfg  # _prepare may have lengthened the default time limit
        backend_name = prepared.backend_name
        self.progress.fault(self.status, f"backend: {backend_name} ({prepared.why})")
        for note in prepared.notes:
            self.progress.fault(self.status, note)
        self._clean_leftovers(backend_name)
        run_dir = new_run_dir(self.store, cfg.target, cfg.nemeses, cfg.seed, self.run_id)
        with run_log(run_dir):
            write_config(run_dir, {**cfg.to_dict(), "run_id": self.run_id, "backend": backend_name})
            self.plans = prepared.plans
            outcome = RunOutcome(run_dir, None, EXIT_ERROR, None, backend_name)
            try:
                self._run(run_dir, prepared, outcome)
            except RunInterrupted as exc:  # after the teardown: while checking or writing
                outcome.error = f"interrupted by {exc}"
                outcome.interrupted = True
            except Exception:
                # The caller prints one line; the traceback belongs in the run's log.
                log.exception("run %s: internal error", self.run_id)
                raise
        return outcome

    # --- before anything exists -------------------------------------------------------

    def _prepare(self) -> _Prepared:
        """Everything that can be refused is refused here, before anything is created."""
        cfg = self.cfg
        backend_name, why = choose_backend(cfg.backend)
        backend_options: dict[str, Any] = {}
        if backend_name == "docker":
            backend_options["progress"] = lambda line: self.progress.fault(
                self.status, f"image: {line}"
            )
        where = cfg.server_source or f"{cfg.source or 'config'}: server"
        target = make_target(cfg.target, cfg.server, where)
        # What the target declared against what the backend offers: refused in one line
        # before anything (an image build, a node) exists.
        refusal = pair_refusal(cfg.target, backend_name)
        if refusal is not None:
            raise UnsupportedPair(refusal)
        if backend_name == "docker":
            # The run's own image: the target's server packages and the program's
            # requirements, each a layer cached by the hash of its inputs.
            backend_options["servers"] = target.run_packages
            backend_options["requirements"] = cfg.program.requirements
        if backend_name == "ssh":
            backend_options["hosts"] = cfg.hosts
            backend_options["inventory"] = cfg.inventory
            backend_options["needs_python"] = cfg.target == "reference"
            # Server trees are uploaded at provision, before the watchdogs start.
            backend_options["servers"] = target.run_packages
            backend_options["progress"] = lambda line: self.progress.fault(self.status, line)
        every = "all" in cfg.nemeses
        if not every:
            names = [n for n in cfg.nemeses if n != "none"]
        elif cfg.plans is not None:  # a replayed `all` run: the kinds it carried out
            names = [n for n in kinds_of(cfg.plans) if n != "none"]
        else:
            names = list(all_nemeses())
        settings = {
            name: {
                **target.nemesis_defaults.get(name, {}),
                **cfg.nemesis_settings.get(name, {}),
            }
            for name in {*target.nemesis_defaults, *cfg.nemesis_settings}
        }
        nemeses = make_nemeses(names, settings)
        notes: list[str] = []
        if cfg.plans is not None:
            plans = explicit_plans(cfg, names)
        else:
            durations, notes = self._durations(target, nemeses)
            plans = make_schedule(
                nemeses,
                self.cfg.seed,
                self.cfg.time_limit,
                warmup_s=cfg.schedule.warmup_s,
                gap_s=cfg.schedule.gap_s,
                duration_s=cfg.schedule.fixed_duration_s,
                durations=durations,
            )
        check_store(self.store)  # before the backend exists or leftovers are cleaned
        backend = create_backend(backend_name, self.run_id, **backend_options)
        return _Prepared(backend_name, why, target, nemeses, plans, backend, every, notes)

    def _durations(
        self, target: Target, nemeses: list[Nemesis]
    ) -> tuple[dict[str, Durations], list[str]]:
        """Fault durations from the target's timing unless the YAML set them, the time
        limit lengthened to fit them unless it was given, and the lines that say so."""
        cfg = self.cfg
        if not nemeses:
            return {}, []
        if cfg.schedule.duration_s is not None:
            lo, hi = cfg.schedule.duration_s
            return {}, [f"fault durations: {lo:g}-{hi:g} s (nemesis.schedule.duration_s)"]
        timing = timing_of(target)
        if timing is None:
            lo, hi = cfg.schedule.fixed_duration_s
            return {}, [
                f"fault durations: {lo:g}-{hi:g} s (target {cfg.target} states no timing: "
                f"the schedule's fixed defaults)"
            ]
        durations = default_durations(nemeses, timing)
        # One line per distinct choice: "partition, pause, kill: 0.3-2.9 s (why)".
        bracketing = brackets_in(nemeses)
        grouped: dict[Durations, list[str]] = {}
        for name, d in durations.items():
            if name not in bracketing:
                grouped.setdefault(d, []).append(name)
        notes = [f"fault durations: {d.describe(', '.join(ns))}" for d, ns in grouped.items()]
        notes += [
            f"fault durations: {name}: each brackets a {timeline} fault "
            f"(from {BRACKET_LEAD_S[0]:g}-{BRACKET_LEAD_S[1]:g} s before it to "
            f"{BRACKET_TAIL_S[0]:g}-{BRACKET_TAIL_S[1]:g} s after it)"
            for name, timeline in bracketing.items()
        ]
        if not cfg.time_limit_set:
            limit = fitting_time_limit(
                durations, cfg.schedule.warmup_s, cfg.schedule.gap_s, nemeses
            )
            if limit != cfg.time_limit:
                self.cfg = replace(cfg, time_limit=limit)
                notes.append(
                    f"time limit: {limit:g} s (the default, lengthened to fit "
                    f"{faults_to_fit(nemeses)} of the longest faults)"
                )
        return durations, notes

    def _clean_leftovers(self, backend_name: str) -> None:
        removed = clean_local_leftovers() + (
            docker_backend.clean_leftovers() if backend_name == "docker" else []
        )
        for line in removed:
            self.progress.fault(self.status, f"cleaned leftover of a crashed run: {line}")

    # --- the run ------------------------------------------------------------------------

    def _run(self, run_dir: Path, prepared: _Prepared, outcome: RunOutcome) -> None:
        backend, target = prepared.backend, prepared.target
        undo = contextlib.ExitStack()
        recorder = Recorder(HistoryWriter(run_dir / "history" / "runner.jsonl"), RefClock())
        self._on_exit(undo, "close history", recorder.close)
        try:
            if self.cfg.program.needs_program_dir:
                self._phase("preparing the program")
                try:
                    self._program_dir = prepare_program_dir(
                        self.cfg.program, run_dir, outcome.backend or "local"
                    )
                except ProgramError as exc:
                    raise RunError(str(exc)) from None
            # Teardown is safe after a half-done provisioning, and the target's close
            # after a failed setup, so both are pushed before the work they undo.
            self._on_exit(undo, "tear down nodes", backend.teardown)
            # Nodes that keep their logs elsewhere (ssh hosts) hand them over first (the
            # stack runs this after the members have stopped, before the teardown).
            self._on_exit(undo, "fetch node logs", backend.fetch_logs)
            self._on_exit(undo, "close target", target.close)
            nodes = self._provision(backend, target, run_dir)
            resource = self._start_resource(undo, recorder, backend)
            cluster = self._make_cluster(backend, nodes, target, recorder, run_dir, resource)
            self._admit_nemeses(cluster, prepared)
            probe = self._start_target(undo, cluster, target, nodes, recorder)
            self._wait_for_leader(probe)
            self._start_candidates(undo, cluster, nodes)
            self._wait_for_candidates(cluster, len(nodes))
            driver = self._start_schedule(undo, cluster, prepared.nemeses, prepared.plans)
            self._run_schedule(cluster, probe, driver)
            self._heal(driver)
            self._quiet(cluster, probe)
            self._stop(cluster, probe)
        except (RunError, NemesisRefused, BackendError, TargetError) as exc:
            outcome.error = str(exc)
        except RunInterrupted as exc:
            outcome.error = f"interrupted by {exc}"
            outcome.interrupted = True
        except Exception as exc:
            log.exception("run failed")
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            with signals.held():
                self._phase("tearing down")
                undo.close()
        if self._cluster is not None and not outcome.interrupted:
            try:
                self._cluster.collect_program_histories()
            except ProgramHistoryError as exc:
                outcome.error = f"{outcome.error}; {exc}" if outcome.error else str(exc)
        self._phase("checking")
        outcome.verdict = self._check(run_dir, target, outcome)
        if outcome.error is None and outcome.verdict is not None:
            valid = outcome.verdict["valid"]
            outcome.exit_code = (
                EXIT_VALID if valid is True else EXIT_INVALID if valid is False else EXIT_ERROR
            )
        write_results(run_dir, self._results(outcome, self.driver))
        self._write_report(run_dir)
        self._phase("done")

    def _on_exit(self, undo: contextlib.ExitStack, what: str, step: Callable[[], object]) -> None:
        """Push one clean-up step; a step that fails is reported and never stops the
        steps after it (the ones below it on the stack) from running."""

        def guarded() -> None:
            try:
                step()
            except Exception as exc:
                log.error("cleanup: could not %s: %s", what, exc)
                self.progress.fault(self.status, f"cleanup: could not {what}: {exc}")

        undo.callback(guarded)

    def _provision(self, backend: Backend, target: Target, run_dir: Path) -> list[Node]:
        self._phase("provisioning")
        nodes: list[Node] = backend.provision(
            [f"n{i + 1}" for i in range(self.cfg.nodes)], shared_dir=run_dir
        )
        for node in nodes:
            (run_dir / "nodes" / node.name).mkdir(parents=True, exist_ok=True)
        target.setup(backend, nodes, run_dir)
        return nodes

    def _start_resource(
        self, undo: contextlib.ExitStack, recorder: Recorder, backend: Backend
    ) -> ProtectedResource:
        resource = ProtectedResource(
            recorder.clock, host=backend.host_address, fencing=self.cfg.fencing
        ).start()
        self._on_exit(undo, "stop resource", resource.stop)
        return resource

    def _make_cluster(
        self,
        backend: Backend,
        nodes: list[Node],
        target: Target,
        recorder: Recorder,
        run_dir: Path,
        resource: ProtectedResource,
    ) -> RunCluster:
        """The cluster the nemeses act on."""
        cfg = self.cfg
        cluster = RunCluster(
            backend=backend,
            nodes=nodes,
            target=target,
            recorder=recorder,
            run_dir=run_dir,
            resource_url=resource.url,
            workload=cfg.workload,
            workload_explicit=cfg.workload_explicit,
            seed=cfg.seed,
            program=cfg.program,
            program_dir=self._program_dir,
        )
        self._cluster = cluster  # for reading back external programs' events after teardown
        return cluster

    def _admit_nemeses(self, cluster: RunCluster, prepared: _Prepared) -> None:
        """A nemesis that cannot work on this cluster refuses now: the run stops, unless
        it was chosen by `all`, which leaves it out (with its faults) and says why once."""
        kept: list[Nemesis] = []
        for nemesis in prepared.nemeses:
            reason = nemesis.refusal(cluster)
            if reason is None:
                kept.append(nemesis)
            elif prepared.every:
                self.refused[nemesis.name] = reason
                said = (
                    reason if reason.startswith(f"{nemesis.name}:") else f"{nemesis.name}: {reason}"
                )
                self.progress.fault(self.status, f"nemesis all: left out {said}")
            else:
                raise NemesisRefused(reason)
        if self.refused:
            names = {n.name for n in kept}
            prepared.nemeses = kept
            prepared.plans = [p for p in prepared.plans if p.nemesis in names]
            self.plans = prepared.plans
        self.nemesis_names = [n.name for n in prepared.nemeses]

    def _start_target(
        self,
        undo: contextlib.ExitStack,
        cluster: RunCluster,
        target: Target,
        nodes: list[Node],
        recorder: Recorder,
    ) -> StatusProbe:
        """Every member, then the status probe that watches them."""
        self._phase("starting target")
        # Pushed before the loop: stop_members stops whichever members did start when a
        # later one fails (the same holds for the candidates below).
        self._on_exit(undo, "stop members", cluster.stop_members)
        for node in nodes:
            cluster.start_member(node)
        probe = StatusProbe(target, nodes, recorder, self.cfg.probe_interval_ms / 1000)
        cluster.probe = probe
        self._on_exit(undo, "stop probe", probe.stop)
        probe.start()
        return probe

    def _wait_for_leader(self, probe: StatusProbe) -> None:
        self._phase("waiting for a leader")
        try:
            self.status.leader = probe.wait_for_leader(LEADER_TIMEOUT_S)
        except WaitTimeout as exc:
            raise RunError(f"no leader agreed by a majority within {LEADER_TIMEOUT_S:g} s") from exc

    def _start_candidates(
        self, undo: contextlib.ExitStack, cluster: RunCluster, nodes: list[Node]
    ) -> None:
        self._phase("running workload and faults")
        self._on_exit(undo, "stop candidates", cluster.stop_candidates)
        for node in nodes:
            cluster.start_candidate(node)

    def _wait_for_candidates(self, cluster: RunCluster, count: int) -> None:
        """Until `count` candidates have written their first event (`acquire` invoke).
        The schedule's offsets count from then: on a loaded machine a candidate takes
        seconds to start, and a fault (or a time limit) that comes before it would not be
        the run the schedule describes."""
        timeout_s = self.cfg.program.start_timeout_s

        def all_started() -> bool:
            if exited := cluster.exited_on_their_own():
                raise RunError("; ".join(exited))
            return cluster.started_candidates() >= count

        try:
            wait_until(
                all_started,
                timeout_s,
                f"{count} candidates' first events",
                interval=0.05,  # each look asks the backend whether processes exited
            )
        except WaitTimeout as exc:
            raise RunError(
                f"only {cluster.started_candidates()} of {count} candidates started within "
                f"{timeout_s:g} s (workload.start_timeout_s)"
            ) from exc

    def _start_schedule(
        self,
        undo: contextlib.ExitStack,
        cluster: RunCluster,
        nemeses: list[Nemesis],
        plans: list[FaultPlan],
    ) -> FaultDriver:
        driver = FaultDriver(
            cluster, {n.name: n for n in nemeses}, plans, self.status, self.progress
        )
        self.driver = driver
        # Pushed last, so it runs first: faults are healed before anything stops.
        self._on_exit(undo, "heal faults", driver.stop_and_heal)
        driver.start()
        return driver

    def _run_schedule(self, cluster: RunCluster, probe: StatusProbe, driver: FaultDriver) -> None:
        """The time limit: follow the leader, stop on a nemesis failure or on a member
        or candidate that exits on its own."""
        end = time.monotonic() + self.cfg.time_limit
        next_exit_check = 0.0
        while time.monotonic() < end:
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
            self.status.leader = probe.leader()
            if driver.error is not None:
                raise RunError(f"nemesis failed: {driver.error}") from driver.error
            if time.monotonic() < next_exit_check:
                continue
            # Once a second: on docker each look is an API call per process.
            next_exit_check = time.monotonic() + EXIT_CHECK_S
            if exited := cluster.exited_on_their_own():
                raise RunError("; ".join(exited))

    def _heal(self, driver: FaultDriver) -> None:
        self._phase("healing")
        driver.stop_and_heal()
        if driver.error is not None:
            raise RunError(f"nemesis failed: {driver.error}") from driver.error

    def _quiet(self, cluster: RunCluster, probe: StatusProbe) -> None:
        """Faults healed: the cluster recovers, watched, for the quiet period."""
        self._phase(f"quiet period ({self.cfg.quiet_s:g} s)")
        quiet_end = time.monotonic() + self.cfg.quiet_s
        while time.monotonic() < quiet_end:
            time.sleep(0.25)
            self.status.leader = probe.leader()
        if exited := cluster.exited_on_their_own():
            raise RunError("; ".join(exited))

    def _stop(self, cluster: RunCluster, probe: StatusProbe) -> None:
        """The orderly end (the clean-up steps do it again, harmlessly, on other exits)."""
        self._phase("stopping")
        cluster.stop_candidates()
        probe.stop()
        cluster.stop_members()

    def _check(self, run_dir: Path, target: Target, outcome: RunOutcome) -> Verdict | None:
        parts = sorted((run_dir / "history").glob("*.jsonl"))
        try:
            events = merge_histories(parts, run_dir / "history.jsonl")
            grace = self.cfg.stale_grace_ns
            if grace is None:
                grace = target.stale_grace_ns + longest_member_pause_ns(self.plans)
            return check(events, tolerance_ns=self.cfg.tolerance_ns, stale_grace_ns=grace)
        except HistoryError as exc:
            outcome.error = (outcome.error or "") + f"; history: {exc}"
            return None

    def _write_report(self, run_dir: Path) -> None:
        """report.html, best effort: a report that cannot be written is logged and never
        changes or hides the run's own result."""
        try:
            from harness.reports import write_run_report

            write_run_report(run_dir)
        except Exception as exc:
            log.warning("could not write the report of %s: %s", run_dir, exc)
            self.progress.fault(self.status, f"report: could not write it: {exc}")

    def _results(self, outcome: RunOutcome, driver: FaultDriver | None) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.cfg.target,
            "backend": outcome.backend,
            # The fault kinds the run used: `all` resolved to the supported ones.
            "nemeses": self.nemesis_names or ["none"],
            **({"nemesis_choice": "all"} if "all" in self.cfg.nemeses else {}),
            **({"nemeses_left_out": dict(self.refused)} if self.refused else {}),
            "seed": self.cfg.seed,
            "time_limit": self.cfg.time_limit,
            "wall_s": round(self.status.elapsed(), 3),
            "faults_done": driver.done if driver is not None else 0,
            # The schedule carried out, in the list form a configuration takes
            # (nemesis/explicit.py), so that it can be replayed and shrunk.
            "schedule": plans_to_entries(self.plans),
            "schedule_source": "explicit" if self.cfg.plans is not None else "seed",
            "origin": dict(self.cfg.origin) or None,
            "exit_code": outcome.exit_code,
            "error": outcome.error,
            "verdict": outcome.verdict,
        }


def execute(cfg: RunConfig, *, store: Path, progress: Progress | None = None) -> RunOutcome:
    return Runner(cfg, store=store, progress=progress).execute()
