"""The runner's phases over fakes (no nodes, no processes): a clean run, a phase that
fails half-way, and teardown signals during the workload and while the schedule is
built. Each asserts what was made and that all of it was undone, in reverse."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from harness.run import runner as runner_module
from harness.run.progress import RunStatus
from harness.run.runner import EXIT_ERROR, EXIT_VALID, Runner, RunOutcome
from harness.runconfig import RunConfig
from harness.testing import FakeBackend, FakeTarget, Journal

TEARDOWN_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT]


class Phases:
    """A Progress that keeps the phases and can send a signal when one begins."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.signal_at: tuple[str, int] | None = None

    def phase(self, status: RunStatus, name: str) -> None:
        self.names.append(name)
        if self.signal_at is not None and name == self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])
            time.sleep(1.0)  # the handler raises here, in the main thread

    def fault(self, status: RunStatus, text: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeBackend, FakeTarget]:
    backend = FakeBackend(journal=Journal())
    target = FakeTarget(backend)
    monkeypatch.setattr(runner_module, "create_backend", lambda *a, **k: backend)
    monkeypatch.setattr(runner_module, "make_target", lambda *a, **k: target)
    monkeypatch.setattr(runner_module, "clean_local_leftovers", lambda: [])
    return backend, target


def run(tmp_path: Path, progress: Phases | None = None) -> RunOutcome:
    cfg = RunConfig(backend="local", time_limit=0.3, quiet_s=0.0, probe_interval_ms=20)
    return Runner(cfg, store=tmp_path / "store", progress=progress or Phases()).execute()


def assert_all_undone(backend: FakeBackend) -> None:
    journal = backend.journal
    assert all(d.status is not None for d in backend.daemons), journal
    # Daemons stop before the target closes, which is before the nodes go, which is last.
    stops = [i for i, line in enumerate(journal) if line.startswith("stop ")]
    assert max(stops, default=-1) < journal.index_of("close target") < journal.index_of("teardown")
    assert journal[-1] == "teardown"
    assert journal.count("teardown") == 1 and journal.count("close target") == 1


def test_a_clean_run_goes_through_every_phase_and_undoes_everything(
    tmp_path: Path, fakes: tuple[FakeBackend, FakeTarget]
) -> None:
    backend, _ = fakes
    progress = Phases()
    outcome = run(tmp_path, progress)
    assert outcome.error is None and outcome.exit_code == EXIT_VALID, outcome
    assert progress.names[:5] == [
        "provisioning",
        "starting target",
        "waiting for a leader",
        "running workload and faults",
        "healing",
    ]
    assert progress.names[-4:] == ["stopping", "tearing down", "checking", "done"]
    assert [line for line in backend.journal if line.startswith("spawn")] == [
        "spawn member on n1",
        "spawn member on n2",
        "spawn member on n3",
        "spawn candidate-p1 on n1",
        "spawn candidate-p2 on n2",
        "spawn candidate-p3 on n3",
    ]
    assert_all_undone(backend)
    assert outcome.run_dir is not None and (outcome.run_dir / "results.json").exists()


def test_a_phase_that_fails_half_way_undoes_what_was_made(
    tmp_path: Path, fakes: tuple[FakeBackend, FakeTarget]
) -> None:
    backend, _ = fakes
    backend.fail_spawn = "candidate-p2"
    outcome = run(tmp_path)
    assert outcome.exit_code == EXIT_ERROR
    assert outcome.error == "fake backend: candidate-p2 on n2 failed to start"
    journal = backend.journal
    assert "spawn candidate-p3 on n3" not in journal
    # The candidate that did start is stopped before the members (pushed later, undone first).
    assert journal.index_of("stop candidate-p1 on n1") < journal.index_of("stop member on n1")
    assert_all_undone(backend)


def test_no_leader_is_an_error_that_says_so_and_undoes_everything(
    tmp_path: Path, fakes: tuple[FakeBackend, FakeTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, target = fakes
    target.answer = lambda node: None  # nobody answers
    monkeypatch.setattr(runner_module, "LEADER_TIMEOUT_S", 0.3)
    outcome = run(tmp_path)
    assert outcome.error == "no leader agreed by a majority within 0.3 s"
    assert not any(line.startswith("spawn candidate") for line in backend.journal)
    assert_all_undone(backend)


@pytest.mark.parametrize("signum", TEARDOWN_SIGNALS, ids=lambda s: s.name)
def test_a_teardown_signal_during_the_workload_undoes_everything(
    tmp_path: Path, fakes: tuple[FakeBackend, FakeTarget], signum: signal.Signals
) -> None:
    backend, _ = fakes
    progress = Phases()
    progress.signal_at = ("running workload and faults", signum)
    previous = signal.getsignal(signum)
    outcome = run(tmp_path, progress)
    assert outcome.interrupted and outcome.error == f"interrupted by {signum.name}"
    assert outcome.exit_code == EXIT_ERROR
    assert "tearing down" in progress.names
    assert_all_undone(backend)
    assert signal.getsignal(signum) == previous  # the runner's handler is gone again


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_while_the_schedule_is_built_ends_the_run_before_anything_exists(
    tmp_path: Path,
    fakes: tuple[FakeBackend, FakeTarget],
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
) -> None:
    backend, _ = fakes

    def slow_schedule(*args: Any, **kwargs: Any) -> list[Any]:
        os.kill(os.getpid(), signum)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # a schedule that takes long to build
            time.sleep(0.01)
        raise AssertionError("the signal did not interrupt the schedule's building")

    monkeypatch.setattr(runner_module, "make_schedule", slow_schedule)
    started = time.monotonic()
    outcome = run(tmp_path)
    assert time.monotonic() - started < 4
    assert outcome.interrupted and outcome.error == f"interrupted by {signum.name}"
    assert outcome.run_dir is None
    assert list(backend.journal) == []  # nothing was made, so nothing to undo


def test_a_schedule_that_cannot_advance_is_refused_before_anything_exists(
    tmp_path: Path, fakes: tuple[FakeBackend, FakeTarget]
) -> None:
    from harness.runconfig import Schedule

    backend, _ = fakes
    cfg = RunConfig(
        backend="local",
        nemeses=("partition",),
        schedule=Schedule(warmup_s=0.0, gap_s=(0.0, 0.0), duration_s=(0.0004, 0.0004)),
    )
    started = time.monotonic()
    outcome = Runner(cfg, store=tmp_path / "store", progress=Phases()).execute()
    assert time.monotonic() - started < 2
    assert outcome.exit_code == EXIT_ERROR and outcome.run_dir is None
    assert outcome.error is not None and "nemesis.schedule.duration_s" in outcome.error
    assert list(backend.journal) == []
