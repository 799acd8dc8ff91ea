"""Bring your own, end to end on the local backend (root only): an external candidate
program under `harness run` (valid, malformed, silent), and a throw-away target, nemesis
and backend registered from this test going through `harness run`, the report and a
suite without any other module of the harness knowing their names; the backend's
declared offers decide which targets it is refused for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import plugins
from harness.backends.local import LocalBackend
from harness.history import read_history
from harness.nemesis.base import Cluster, FaultPlan, ReportBand
from harness.targets.reference import ReferenceTarget

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local backend needs root"),
]

LEADER = textwrap.dedent(
    """
    import time
    from harness.workloads.clients.reference import ReferenceClient
    from leader_harness_client import Harness

    h = Harness()
    client = ReferenceClient(h.endpoint, request_timeout_s=1.0, client_id=f"p{h.process}")
    while True:
        h.campaigning()
        try:
            grant = client.campaign(1.0)
        except Exception as exc:
            h.acquire_unknown(repr(exc))
            time.sleep(0.1)
            continue
        if grant is None:
            h.not_acquired()
            time.sleep(0.1)
            continue
        h.acquired(grant.token)
        for _ in range(10):
            h.write(grant.token)
            time.sleep(0.05)
        h.releasing(grant.token)
        client.resign()
        h.released()
        time.sleep(0.3)
    """
)


def _run(tmp_path: Path, workload: dict[str, Any], program: str) -> subprocess.CompletedProcess:
    (tmp_path / "leader.py").write_text(program)
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "target": "reference",
                "backend": "local",
                "time_limit": 10,
                "quiet_s": 1,
                "workload": {"command": [sys.executable, "leader.py"], "files": ["leader.py"],
                             **workload},
            }
        )
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--config", str(config),
         "--store", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_external_program_runs_and_its_events_join_the_history(tmp_path: Path) -> None:
    done = _run(tmp_path, {}, LEADER)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "store" / "latest"
    events = read_history(run_dir / "history.jsonl")
    acquired = [e for e in events if e.f == "acquire" and e.type == "ok"]
    assert acquired and all(e.node in ("n1", "n2", "n3") for e in acquired)
    writes = [e for e in events if e.f == "write" and e.type == "ok"]
    assert writes, "the program's writes reached the resource and the history"
    assert (run_dir / "report.html").is_file()


def test_malformed_program_events_are_a_run_that_could_not_run(tmp_path: Path) -> None:
    bad = LEADER.replace("h = Harness()", "h = Harness()\nh._file.write('oops\\n')")
    done = _run(tmp_path, {}, bad)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "line 1: not valid JSON" in done.stdout + done.stderr
    assert "external candidate on n" in done.stdout + done.stderr


def test_a_program_that_records_nothing_is_named(tmp_path: Path) -> None:
    done = _run(tmp_path, {"start_timeout_s": 5}, "import time\ntime.sleep(60)\n")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "recorded nothing in $HARNESS_HISTORY" in done.stdout + done.stderr
    assert "started within 5 s (workload.start_timeout_s)" in done.stdout + done.stderr


# --- a throw-away target, nemesis and backend, registered from here ---------------


class ThrowawayTarget(ReferenceTarget):
    """The reference elector under another name: a target nobody else knows. It inherits
    the reference target's declarations: its members read a clock file, and it needs
    nothing of a backend."""

    name = "throwaway"


class ThrowawayBackend(LocalBackend):
    """Network namespaces under another name, declaring that it installs no servers."""

    name = "nsonly"
    offers = frozenset({"shared-clock", "shared-files"})


class _Thaw:
    def __init__(self, cluster: Cluster, node: Any, daemon: Any) -> None:
        self.cluster, self.node, self.daemon = cluster, node, daemon
        self.description = f"freeze candidate on {node.name}"
        self.healed = False

    def heal(self) -> None:
        if self.healed:
            return
        self.healed = True
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.signal(signal.SIGCONT)
        self.cluster.record("thaw", {"nodes": [self.node.name]})


class FreezeNemesis:
    """SIGSTOP of one node's candidate, recorded as freeze/thaw: a nemesis with events,
    a report band and a colour of its own."""

    name = "freeze"
    modes = ("candidate",)
    report_band = ReportBand("freeze", "freeze", "thaw", "rgb(1, 2, 3)")

    def __init__(self, settings: Any = None) -> None:
        if settings:
            raise ValueError(f"nemesis freeze: takes no settings, got {settings!r}")

    def refusal(self, cluster: Cluster) -> str | None:
        return None

    def start(self, cluster: Cluster, plan: FaultPlan) -> _Thaw:
        node = cluster.nodes[plan.pick % len(cluster.nodes)]
        daemon = cluster.candidate(node)
        if daemon is not None and daemon.poll() is None:
            daemon.signal(signal.SIGSTOP)
        cluster.record("freeze", {"nodes": [node.name]})
        return _Thaw(cluster, node, daemon)


@pytest.fixture
def registered() -> Iterator[None]:
    plugins.register(plugins.TARGET_GROUP, "throwaway", ThrowawayTarget)
    plugins.register(plugins.NEMESIS_GROUP, "freeze", FreezeNemesis)
    plugins.register(plugins.BACKEND_GROUP, "nsonly", ThrowawayBackend)
    try:
        yield
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "throwaway")
        plugins.unregister(plugins.NEMESIS_GROUP, "freeze")
        plugins.unregister(plugins.BACKEND_GROUP, "nsonly")


def test_registered_target_and_nemesis_run_report_and_suite(
    tmp_path: Path, registered: None
) -> None:
    from harness.cli import main

    store = tmp_path / "store"
    code = main(["run", "--target", "throwaway", "--nemesis", "freeze", "--backend",
                 "nsonly", "--time-limit", "8", "--seed", "3", "--store", str(store)])  # fmt: skip
    assert code in (0, 1)
    run_dir = store / "latest"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["target"] == "throwaway" and results["faults_done"] >= 1
    assert results["backend"] == "nsonly"
    events = read_history(run_dir / "history.jsonl")
    assert any(e.f == "freeze" for e in events) and any(e.f == "thaw" for e in events)
    report = (run_dir / "report.html").read_text()
    assert '"kind":"freeze"' in report.replace(" ", "") and "rgb(1, 2, 3)" in report
    # Its declared clock file reaches the clock nemesis: members' clocks are skewed.
    code = main(["run", "--target", "throwaway", "--nemesis", "clock", "--backend", "nsonly",
                 "--time-limit", "6", "--seed", "1001", "--store", str(store)])  # fmt: skip
    assert code in (0, 1)
    skews = [e for e in read_history(store / "latest" / "history.jsonl") if e.f == "clock-skew"]
    # (with no member clock file the nemesis would have refused: exit status 2)
    assert skews and all(e.value["processes"] in ("both", "member") for e in skews), skews[:2]

    # The backend declares no server packages: etcd is refused on it in one line, and
    # nothing is created (no run directory beyond the one above).
    runs_before = sorted(p.name for p in store.iterdir())
    code = main(["run", "--target", "etcd", "--backend", "nsonly", "--store", str(store)])
    assert code == 2
    assert sorted(p.name for p in store.iterdir()) == runs_before

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        json.dumps(
            {
                "name": "throwaway",
                "cases": [
                    {"name": "freeze", "target": "throwaway", "time_limit": 6,
                     "nemesis": {"faults": ["freeze"]}, "runs": 1,
                     "expect": {"acquisitions_min": 1}},
                ],
            }
        )
    )  # fmt: skip
    assert main(["suite", str(suite), "--backend", "local", "--store", str(store)]) == 0

    # Unregistered, the names are unknown again: nothing else held on to them.
    plugins.unregister(plugins.TARGET_GROUP, "throwaway")
    with pytest.raises(SystemExit) as info:
        main(["run", "--target", "throwaway", "--store", str(store)])
    assert info.value.code == 2
