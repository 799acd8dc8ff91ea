"""`harness run` end to end on the local backend (root only): a clean run, SIGTERM,
SIGINT, SIGHUP, SIGQUIT and SIGKILL of the harness mid-run, and the pause and kill
nemeses.

Each run goes to its own tmp store; its processes are found by that path in
/proc/*/cmdline, its network objects by the exact names in its backend state file.
Whatever a test leaves behind is removed in `finally` by those exact names and pids.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import netns as nx
from harness.history import read_history
from harness.nemesis import all_nemeses

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local backend needs root"),
]

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD_PHASE = "phase: running workload and faults"


# --- what a run leaves on the machine ------------------------------------------------


def pids_mentioning(text: str) -> dict[int, str]:
    """pid -> state letter of every process whose command line contains `text`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text not in cmdline:
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        found[int(entry.name)] = stat.rsplit(")", 1)[1].split()[0]
    return found


def state_of(run_id: str) -> nx.RunState | None:
    for _, state in nx.read_states(nx.DEFAULT_STATE_DIR):
        if isinstance(state, nx.RunState) and state.run_id == run_id:
            return state
    return None


def forward_rules_of(short_id: str) -> list[str]:
    out = subprocess.run(
        ["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if f"{nx.COMMENT_PREFIX}{short_id}" in line]


def remains_of(state: nx.RunState, store: Path) -> list[str]:
    """Everything of the run still present: namespaces, links, rules, processes, state."""
    left = [f"netns {ns}" for ns in state.netns if Path("/run/netns", ns).exists()]
    left += [
        f"link {name}"
        for name in [state.bridge, *state.veths]
        if Path("/sys/class/net", name).exists()
    ]
    left += [f"rule {rule}" for rule in forward_rules_of(state.short_id)]
    left += [f"process {pid} ({st})" for pid, st in pids_mentioning(str(store)).items()]
    if nx.state_path(nx.DEFAULT_STATE_DIR, state.short_id).exists():
        left.append(f"state file of {state.short_id}")
    return left


def scrub(state: nx.RunState | None, store: Path) -> None:
    """Remove whatever a run left behind, by its exact pids and recorded names."""
    for pid in pids_mentioning(str(store)):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
    if state is not None:
        nx.remove_recorded(state)
        nx.state_path(nx.DEFAULT_STATE_DIR, state.short_id).unlink(missing_ok=True)


# --- running `harness run` -------------------------------------------------------------


class Run:
    def __init__(self, store: Path, *args: str) -> None:
        self.store = store
        store.mkdir(parents=True, exist_ok=True)
        self.out = store.parent / f"{store.name}.out"
        self.err = store.parent / f"{store.name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "run",
                    "--store",
                    str(store),
                    "--backend",
                    "local",
                    *args,
                ],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        self.state: nx.RunState | None = None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def run_dir(self) -> Path:
        return (self.store / "latest").resolve()

    def wait_for(self, text: str, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert self.proc.poll() is None, f"harness run ended early:\n{self.stderr()}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.stderr()}"
            time.sleep(0.05)

    def capture_state(self) -> nx.RunState:
        run_id = yaml_run_id(self.run_dir)
        state = state_of(run_id)
        assert state is not None, f"no backend state file for run {run_id}"
        self.state = state
        return state

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.state is None and (self.store / "latest").exists():
            self.state = state_of(yaml_run_id(self.run_dir))
        scrub(self.state, self.store)


def yaml_run_id(run_dir: Path) -> str:
    for line in (run_dir / "config.yaml").read_text().splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise AssertionError(f"no run_id in {run_dir / 'config.yaml'}")


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Any]:
    started: list[Run] = []

    def start(name: str, *args: str) -> Run:
        run = Run(tmp_path / name, *args)
        started.append(run)
        return run

    try:
        yield start
    finally:
        for run in started:
            run.close()


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"cfg-{len(list(tmp_path.glob('cfg-*')))}.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())  # type: ignore[no-any-return]


# --- (a) a clean run -----------------------------------------------------------------------


def test_short_run_without_faults(runs: Any, tmp_path: Path) -> None:
    cfg = config(tmp_path, "quiet_s: 0.5\n")
    run = runs("store", "--config", cfg, "--nemesis", "none", "--time-limit", "4", "--seed", "3")
    assert run.wait(timeout=90) == 0, run.stderr()
    run_dir = run.run_dir
    assert (run.store / "latest").is_symlink()
    assert run_dir.parent == run.store.resolve()
    assert f"run directory: {run_dir}" in run.stdout().replace(str(run.store), str(run_dir.parent))
    for name in ("config.yaml", "history.jsonl", "results.json", "report.html", "history", "logs"):
        assert (run_dir / name).exists(), name
    parts = {p.name for p in (run_dir / "history").glob("*.jsonl")}
    assert {"runner.jsonl", "p1.jsonl", "p2.jsonl", "p3.jsonl"} <= parts
    assert any((run_dir / "logs").iterdir())
    res = results(run_dir)
    assert res["verdict"]["valid"] is True
    assert res["exit_code"] == 0 and res["error"] is None
    assert res["nemeses"] == ["none"] and res["seed"] == 3
    assert res["verdict"]["stats"]["acquisitions"] >= 1
    events = read_history(run_dir / "history.jsonl")
    assert any(e.f == "write" and e.type == "ok" for e in events)
    check = subprocess.run(
        [sys.executable, "-m", "harness", "check", str(run_dir / "history.jsonl"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["valid"] is True
    state = state_of(yaml_run_id(run_dir))
    assert state is None, "the run's state file outlived it"
    assert pids_mentioning(str(run.store)) == {}


# --- (b), (c) SIGTERM, SIGINT, SIGHUP and SIGQUIT during the workload --------------------

PAUSE_SOON = """
    quiet_s: 0.5
    nemesis:
      faults: [pause]
      schedule: {warmup_s: 0.3, gap_s: [0.3, 0.5], duration_s: [4, 5]}
      pause: {modes: [both], targets: [all]}
"""


def wait_for_stopped(store: Path, timeout: float = 10.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = pids_mentioning(str(store))
        if any(st == "T" for st in procs.values()):
            return procs
        time.sleep(0.05)
    raise AssertionError(f"no process of the run was paused within {timeout} s")


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name
)
def test_signal_during_the_workload_heals_and_tears_down(
    runs: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    cfg = config(tmp_path, PAUSE_SOON)
    run = runs("store", "--config", cfg, "--time-limit", "30", "--seed", "5")
    run.wait_for(WORKLOAD_PHASE)
    state = run.capture_state()
    # A candidate has opened its history (on a loaded machine one may be frozen before
    # it even starts: then it has no file, and the merge check below has nothing to do).
    deadline = time.monotonic() + 20
    while not list((run.run_dir / "history").glob("p*.jsonl")):
        assert time.monotonic() < deadline, "no candidate wrote a history"
        time.sleep(0.05)
    # Something is frozen (the harness must SIGCONT it) and everything is up.
    before = wait_for_stopped(run.store)
    assert len(before) >= 7  # the harness, three electors, three candidates
    assert all(Path("/run/netns", ns).exists() for ns in state.netns)
    assert forward_rules_of(state.short_id)
    t0 = time.monotonic()
    os.kill(run.proc.pid, signum)
    code = run.wait(timeout=20)
    took = time.monotonic() - t0
    assert code == 2, run.stderr()
    assert took < 15, took
    assert f"interrupted by {signum.name}" in run.stderr()
    assert remains_of(state, run.store) == []
    run_dir = run.run_dir
    res = results(run_dir)
    assert res["exit_code"] == 2
    assert res["error"] == f"interrupted by {signum.name}"
    assert res["time_limit"] == 30.0 and res["wall_s"] < 25
    # The partial history was merged: every event each process recorded is in it (a
    # candidate frozen before its first event has none, so count per file).
    events = read_history(run_dir / "history.jsonl")
    parts = sorted((run_dir / "history").glob("p*.jsonl"))
    assert parts
    for part in parts:
        own = read_history(part)
        process = int(part.stem[1:])
        assert len(own) == sum(1 for e in events if e.process == process), part
    assert any(e.process == "nemesis" for e in events)
    assert res["verdict"] is not None and res["verdict"]["valid"] is not False
    # The report is written on interrupted runs too.
    assert 'id="report-data"' in (run_dir / "report.html").read_text()


# --- (d) the harness killed: the next run cleans up --------------------------------------


def test_sigkill_leftovers_are_cleaned_by_the_next_run(runs: Any, tmp_path: Path) -> None:
    cfg = config(tmp_path, PAUSE_SOON)
    first = runs("first", "--config", cfg, "--time-limit", "30", "--seed", "6")
    first.wait_for(WORKLOAD_PHASE)
    state = first.capture_state()
    wait_for_stopped(first.store)
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    # Left behind: the namespaces, the rules and the (partly frozen) daemons.
    left = remains_of(state, first.store)
    assert any(item.startswith("netns") for item in left), left
    assert any(item.startswith("process") for item in left), left
    assert not state.owner_alive()

    cfg2 = config(tmp_path, "quiet_s: 0.5\n")
    second = runs("second", "--config", cfg2, "--nemesis", "none", "--time-limit", "4")
    assert second.wait(timeout=90) == 0, second.stderr()
    err = second.stderr()
    assert "cleaned leftover of a crashed run" in err
    assert f"run {state.short_id}:" in err
    assert remains_of(state, first.store) == []


# --- (e) pause and kill complete and leave nothing frozen --------------------------------


@pytest.mark.parametrize("nemesis", ["pause", "kill"])
def test_pause_and_kill_runs_complete(runs: Any, tmp_path: Path, nemesis: str) -> None:
    cfg = config(
        tmp_path,
        """
        quiet_s: 1
        nemesis:
          schedule: {warmup_s: 0.5, gap_s: [0.3, 0.6], duration_s: [1, 1.5]}
        """,
    )
    run = runs("store", "--config", cfg, "--nemesis", nemesis, "--time-limit", "6", "--seed", "2")
    run.wait_for(WORKLOAD_PHASE)
    state = run.capture_state()
    code = run.wait(timeout=90)
    res = results(run.run_dir)
    # The safe default configuration: valid under both (a restarted candidate on a
    # leader gets a token of its own, never its killed predecessor's).
    assert code == 0, run.stdout() + run.stderr()
    assert res["error"] is None and res["verdict"]["valid"] is True
    assert res["faults_done"] >= 1, res
    assert remains_of(state, run.store) == []
    events = read_history(run.run_dir / "history.jsonl")
    assert any(e.process == "nemesis" for e in events)


# --- (f) --nemesis all: every supported fault kind, all healed ---------------------------


def test_all_runs_every_supported_fault_and_heals(runs: Any, tmp_path: Path) -> None:
    # The default durations (the reference elector's timing: at most 2.9 s for a node
    # fault) and short gaps, so that a round of the node timeline (partition, pause,
    # kill, lossy take turns) fits a short time limit whatever the seed: 2 s warm-up,
    # up to 0.5 s of start delay, 4 x (2.9 + 0.5) s.
    cfg = config(tmp_path, "quiet_s: 1\nnemesis:\n  schedule: {gap_s: [0.2, 0.5]}\n")
    run = runs("store", "--config", cfg, "--nemesis", "all", "--time-limit", "17", "--seed", "5030")
    run.wait_for(WORKLOAD_PHASE)
    state = run.capture_state()
    code = run.wait(timeout=120)
    res = results(run.run_dir)
    assert res["error"] is None, res["error"]
    assert code == 0, run.stdout() + run.stderr()  # the safe default configuration
    assert res["nemesis_choice"] == "all"
    # The real kinds: every registered nemesis works on the local backend.
    registry = all_nemeses()
    assert set(res["nemeses"]) == set(registry)
    assert {e["kind"] for e in res["schedule"]} == set(res["nemeses"])
    assert "fault durations: partition, pause, kill" in run.stderr()
    assert ": 0.3-2.9 s" in run.stderr()
    assert "fault durations: clock: each brackets a node fault" in run.stderr()
    events = read_history(run.run_dir / "history.jsonl")
    starts = {cls.report_band.start for cls in registry.values()}
    heals = {cls.report_band.heal: 0 for cls in registry.values()}
    started = [e for e in events if e.process == "nemesis" and e.f in starts]
    for e in events:
        if e.process == "nemesis" and e.f in heals:
            heals[e.f] += 1
    assert len(started) == res["faults_done"] == sum(heals.values())
    assert all(heals.values()), heals  # every kind healed at least once
    assert remains_of(state, run.store) == []
    assert pids_mentioning(str(run.store)) == {}
