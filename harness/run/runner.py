"""The runner: one run from provisioning to verdict, healing and tearing down on every
way out (success, failure, exception, Ctrl-C, SIGTERM).

Phases: clean leftovers of crashed runs, provision nodes, start the target, wait for a
leader, start the resource, the probe and the candidates, run the seeded fault schedule
for the time limit, heal everything, let the cluster recover for a quiet period, stop,
merge the history, check it, write the run directory, tear down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness.backends import create_backend
from harness.backends import docker as docker_backend
from harness.backends.base import Backend, BackendError, BackendUnavailable, Node
from harness.backends.local import clean_leftovers as clean_local_leftovers
from harness.checker import Verdict, check
from harness.history import HistoryError, HistoryWriter, merge_histories
from harness.recorder import Recorder, RefClock
from harness.resource import ProtectedResource
from harness.run.cluster import RunCluster
from harness.run.probe import StatusProbe
from harness.run.progress import LineProgress, Progress, RunStatus
from harness.run.store import new_run_dir, write_config, write_results
from harness.runconfig import RunConfig
from harness.targets import TargetError, make_target
from harness.targets.base import Target
from nemesis import make_nemeses
from nemesis._common import StartFailed
from nemesis.base import Fault, FaultPlan, Nemesis, NemesisRefused
from nemesis.schedule import make_schedule

log = logging.getLogger(__name__)
EXIT_CHECK_S = 1.0

LEADER_TIMEOUT_S = 30.0
EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


class RunError(RuntimeError):
    """The run could not be carried out (exit status 2); the message says why."""


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C: unwind through every cleanup, then exit 2."""


@dataclass
class RunOutcome:
    run_dir: Path | None
    verdict: Verdict | None
    exit_code: int
    error: str | None = None
    backend: str | None = None
    interrupted: bool = False  # SIGTERM or Ctrl-C: callers running many runs should stop


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


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise RunInterrupted in the main thread while running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise RunInterrupted(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """During cleanup a second Ctrl-C or SIGTERM must not cut the cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


class Runner:
    def __init__(self, cfg: RunConfig, *, store: Path, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.status = RunStatus()
        self.progress: Progress = progress or LineProgress()
        self.run_id = secrets.token_hex(4)
        self.plans: list[FaultPlan] = []

    def _phase(self, name: str) -> None:
        self.status.phase = name
        self.progress.phase(self.status, name)

    def execute(self) -> RunOutcome:
        cfg = self.cfg
        # Everything that can be refused is refused before anything is created.
        try:
            backend_name, why = choose_backend(cfg.backend)
            backend_options: dict[str, Any] = {}
            if backend_name == "docker":
                backend_options["progress"] = lambda line: self.progress.fault(
                    self.status, f"image: {line}"
                )
            where = cfg.server_source or f"{cfg.source or 'config'}: server"
            target = make_target(cfg.target, cfg.server, where)
            names = [n for n in cfg.nemeses if n != "none"]
            settings = {
                name: {
                    **target.nemesis_defaults.get(name, {}),
                    **cfg.nemesis_settings.get(name, {}),
                }
                for name in {*target.nemesis_defaults, *cfg.nemesis_settings}
            }
            nemeses = make_nemeses(names, settings)
            plans = make_schedule(
                nemeses,
                cfg.seed,
                cfg.time_limit,
                warmup_s=cfg.schedule.warmup_s,
                gap_s=cfg.schedule.gap_s,
                duration_s=cfg.schedule.duration_s,
            )
            backend = create_backend(backend_name, self.run_id, **backend_options)
        except (TargetError, BackendUnavailable, BackendError, ValueError) as exc:
            return RunOutcome(None, None, EXIT_ERROR, str(exc))
        self.progress.fault(self.status, f"backend: {backend_name} ({why})")
        removed = clean_local_leftovers() + (
            docker_backend.clean_leftovers() if backend_name == "docker" else []
        )
        for line in removed:
            self.progress.fault(self.status, f"cleaned leftover of a crashed run: {line}")
        run_dir = new_run_dir(self.store, cfg.target, cfg.nemeses, cfg.seed, self.run_id)
        write_config(run_dir, {**cfg.to_dict(), "run_id": self.run_id, "backend": backend_name})
        self.plans = plans
        outcome = RunOutcome(run_dir, None, EXIT_ERROR, None, backend_name)
        try:
            with _signals_raise():
                outcome = self._run(run_dir, backend, target, nemeses, plans, outcome)
        except RunInterrupted as exc:
            outcome.error = f"interrupted by {exc}"
            outcome.interrupted = True
        return outcome

    def _run(
        self,
        run_dir: Path,
        backend: Backend,
        target: Target,
        nemeses: list[Nemesis],
        plans: list[FaultPlan],
        outcome: RunOutcome,
    ) -> RunOutcome:
        cfg = self.cfg
        clock = RefClock()
        recorder = Recorder(HistoryWriter(run_dir / "history" / "runner.jsonl"), clock)
        resource: ProtectedResource | None = None
        cluster: RunCluster | None = None
        probe: StatusProbe | None = None
        driver: FaultDriver | None = None
        try:
            self._phase("provisioning")
            nodes: list[Node] = backend.provision(
                [f"n{i + 1}" for i in range(cfg.nodes)], shared_dir=run_dir
            )
            for node in nodes:
                (run_dir / "nodes" / node.name).mkdir(parents=True, exist_ok=True)
            target.setup(backend, nodes, run_dir)
            resource = ProtectedResource(
                clock, host=backend.host_address, fencing=cfg.fencing
            ).start()
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
            )
            for nemesis in nemeses:
                reason = nemesis.refusal(cluster)
                if reason is not None:
                    raise NemesisRefused(reason)
            self._phase("starting target")
            for node in nodes:
                cluster.start_member(node)
            probe = StatusProbe(target, nodes, recorder, cfg.probe_interval_ms / 1000)
            cluster.probe = probe
            probe.start()
            self._phase("waiting for a leader")
            leader = probe.wait_for_leader(LEADER_TIMEOUT_S)
            if leader is None:
                raise RunError(f"no leader agreed by a majority within {LEADER_TIMEOUT_S:.0f} s")
            self.status.leader = leader
            self._phase("running workload and faults")
            for node in nodes:
                cluster.start_candidate(node)
            driver = FaultDriver(
                cluster, {n.name: n for n in nemeses}, plans, self.status, self.progress
            )
            driver.start()
            end = time.monotonic() + cfg.time_limit
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
            self._phase("healing")
            driver.stop_and_heal()
            if driver.error is not None:
                raise RunError(f"nemesis failed: {driver.error}") from driver.error
            self._phase(f"quiet period ({cfg.quiet_s:g} s)")
            quiet_end = time.monotonic() + cfg.quiet_s
            while time.monotonic() < quiet_end:
                time.sleep(0.25)
                self.status.leader = probe.leader()
            if exited := cluster.exited_on_their_own():
                raise RunError("; ".join(exited))
            self._phase("stopping")
            cluster.stop_candidates()
            probe.stop()
            cluster.stop_members()
        except (RunError, NemesisRefused, BackendError, TargetError) as exc:
            outcome.error = str(exc)
        except RunInterrupted as exc:
            outcome.error = f"interrupted by {exc}"
            outcome.interrupted = True
        except Exception as exc:
            log.exception("run failed")
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            with _signals_held():
                self._phase("tearing down")
                self._cleanup(backend, target, recorder, resource, cluster, probe, driver)
        self._phase("checking")
        verdict = self._check(run_dir, target, outcome)
        outcome.verdict = verdict
        if outcome.error is None and verdict is not None:
            outcome.exit_code = {True: EXIT_VALID, False: EXIT_INVALID}.get(
                verdict["valid"], EXIT_ERROR
            )
        write_results(run_dir, self._results(outcome, driver))
        self._write_report(run_dir)
        self._phase("done")
        return outcome

    def _cleanup(
        self,
        backend: Backend,
        target: Target,
        recorder: Recorder,
        resource: ProtectedResource | None,
        cluster: RunCluster | None,
        probe: StatusProbe | None,
        driver: FaultDriver | None,
    ) -> None:
        steps: list[tuple[str, Any]] = []
        if driver is not None:
            steps.append(("heal faults", driver.stop_and_heal))
        if cluster is not None:
            steps.append(("stop candidates", cluster.stop_candidates))
        if probe is not None:
            steps.append(("stop probe", probe.stop))
        if cluster is not None:
            steps.append(("stop members", cluster.stop_members))
        if resource is not None:
            steps.append(("stop resource", resource.stop))
        steps += [
            ("close target", target.close),
            ("tear down nodes", backend.teardown),
            ("close history", recorder.close),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # every later step must still run
                log.error("cleanup: could not %s: %s", what, exc)
                self.progress.fault(self.status, f"cleanup: could not {what}: {exc}")

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
            from reports import write_run_report

            write_run_report(run_dir)
        except Exception as exc:
            log.warning("could not write the report of %s: %s", run_dir, exc)
            self.progress.fault(self.status, f"report: could not write it: {exc}")

    def _results(self, outcome: RunOutcome, driver: FaultDriver | None) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.cfg.target,
            "backend": outcome.backend,
            "nemeses": list(self.cfg.nemeses),
            "seed": self.cfg.seed,
            "time_limit": self.cfg.time_limit,
            "wall_s": round(self.status.elapsed(), 3),
            "faults_done": driver.done if driver is not None else 0,
            # The seeded schedule, as planned: which fault, mode and parameters, when.
            "schedule": [dataclasses.asdict(plan) for plan in self.plans],
            "exit_code": outcome.exit_code,
            "error": outcome.error,
            "verdict": outcome.verdict,
        }


def execute(cfg: RunConfig, *, store: Path, progress: Progress | None = None) -> RunOutcome:
    return Runner(cfg, store=store, progress=progress).execute()
