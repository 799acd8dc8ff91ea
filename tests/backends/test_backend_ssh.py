"""The ssh backend against real sshd: containers from the node image as remote hosts.

Needs a Docker daemon and root (the test network is a bridge of the guarded test range).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from harness.backends.base import BackendError
from harness.backends.docker import daemon_answers
from harness.backends.ssh import SshBackend
from harness.backends.ssh_check import run_checks
from harness.backends.ssh_inventory import load_inventory
from tests.backends.sshd_hosts import SshdHosts, new_key, sshd_hosts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not daemon_answers(), reason="needs root and a Docker daemon"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CHAIN_OF_A_RUN = "iptables -w -S 2>/dev/null | grep -o 'LH-[0-9a-f]*' | head -1"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdHosts]:
    # The default switch (15 s): shorter ones can fire on a heavily loaded machine.
    with sshd_hosts(tmp_path_factory.mktemp("sshd"), 3) as h:
        yield h


def harness(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        **kw,
    )


def test_hosts_check_reports_every_host_ready(hosts: SshdHosts) -> None:
    lines, added = run_checks(load_inventory(hosts.inventory), need_python=True)
    assert added == []
    failed = [line for line in lines if line[2] == "FAIL"]
    assert failed == []
    checks = {(h, c) for h, c, _, _ in lines}
    for name in hosts.addresses:
        for check in ("reach", "root", "iptables", "ss", "python3", "disk", "address", "clock"):
            assert (name, check) in checks


def test_a_changed_or_unknown_host_key_is_refused(hosts: SshdHosts, tmp_path: Path) -> None:
    inv = yaml.safe_load(hosts.inventory.read_text())
    keys = hosts.inventory.parent / "keys"
    inv["key"] = str(keys / "id_ed25519")
    # n2's entry carries another key: the host is an impostor as far as we know.
    lines = hosts.known_hosts.read_text().splitlines()
    _, other = new_key()
    lines[1] = f"{hosts.addresses['n2']} {other}"
    (tmp_path / "known_hosts").write_text("\n".join(lines) + "\n")
    inv["known_hosts"] = str(tmp_path / "known_hosts")
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(inv))
    r = harness("hosts", "check", str(tmp_path / "hosts.yaml"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "host key CHANGED" in r.stdout and "n2" in r.stdout
    backend = SshBackend("keytest1", hosts=tmp_path / "hosts.yaml")
    with pytest.raises(BackendError, match="host key CHANGED"):
        backend.provision(["n1", "n2", "n3"], shared_dir=tmp_path)
    # Nothing changed on any host before the refusal.
    for name in hosts.addresses:
        assert hosts.leftovers(name, "keytest1") == []
    # Unknown (no entry at all: n3) is refused too, unless trust on first use is explicit.
    (tmp_path / "known_hosts").write_text("\n".join(lines[:2]) + "\n")
    r = harness("hosts", "check", str(tmp_path / "hosts.yaml"))
    assert r.returncode == 1 and "host key unknown" in r.stdout
    r = harness("hosts", "check", "--trust-on-first-use", str(tmp_path / "hosts.yaml"))
    added = [line for line in r.stdout.splitlines() if line.startswith("trusted on first use")]
    assert len(added) == 1 and hosts.addresses["n3"] in added[0] and "SHA256:" in added[0]
    # ... but n2's changed key stays refused.
    assert "host key CHANGED" in r.stdout and r.returncode == 1
    r = harness("hosts", "check", str(tmp_path / "hosts.yaml"))
    assert "n3  reach     ok" in r.stdout


def test_an_address_equal_to_the_harness_source_is_refused(
    hosts: SshdHosts, tmp_path: Path
) -> None:
    inv = yaml.safe_load(hosts.inventory.read_text())
    keys = hosts.inventory.parent / "keys"
    inv["key"], inv["known_hosts"] = str(keys / "id_ed25519"), str(hosts.known_hosts)
    inv["nodes"][0]["address"] = hosts.gateway
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(inv))
    backend = SshBackend("addrtest", hosts=tmp_path / "hosts.yaml")
    with pytest.raises(BackendError, match="address the harness connects from"):
        backend.provision(["n1", "n2", "n3"], shared_dir=tmp_path)
    for name in hosts.addresses:
        assert hosts.leftovers(name, "addrtest") == []


@pytest.mark.parametrize(
    ("target", "nemesis", "time_limit"),
    [
        # One run per target under all three (faults of different nemeses overlap, each
        # on its own timeline, so every kind starts and heals within the run).
        ("etcd", "partition,pause,kill", 20),
        ("consul", "partition,pause,kill", 20),
        ("reference", "partition,pause,kill", 20),
    ],
)
def test_runs_on_ssh_hosts_and_leaves_nothing(
    hosts: SshdHosts, tmp_path: Path, target: str, nemesis: str, time_limit: int
) -> None:
    r = harness(
        "run", "--backend", "ssh", "--hosts", str(hosts.inventory), "--target", target,
        "--nemesis", nemesis, "--time-limit", str(time_limit), "--seed", "1",
        "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stdout + r.stderr
    run_dir = Path(r.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    results = yaml.safe_load((run_dir / "results.json").read_text())
    assert results["backend"] == "ssh" and results["error"] is None
    assert results["faults_done"] >= 1
    # Every fault that started was healed, on the hosts, and said so in the history.
    events = [
        e
        for e in map(json.loads, (run_dir / "history.jsonl").read_text().splitlines())
        if e["process"] == "nemesis"
    ]
    starts = [e for e in events if e["f"] in ("start-partition", "pause", "kill")]
    heals = [e for e in events if e["f"] in ("stop-partition", "resume", "restart")]
    assert starts and len(heals) >= len(starts), events
    # Every fault kind the schedule planned started (pause and kill take turns on one
    # timeline, so a short run may plan only one of them).
    started = {{"start-partition": "partition"}.get(e["f"], e["f"]) for e in starts}
    assert started == {f["kind"] for f in results["schedule"]}, events
    assert "partition" in started
    assert (run_dir / "report.html").is_file()
    # Member logs came back from the hosts; candidates wrote theirs here.
    logs = {p.name for p in (run_dir / "logs").iterdir()}
    program = {"etcd": "etcd", "consul": "consul", "reference": "elector"}[target]
    assert any(n.startswith(f"n1-{program}") for n in logs), logs
    assert "n1-candidate.log" in logs
    run_id = results["run_id"]
    for name in hosts.addresses:
        assert hosts.leftovers(name, run_id) == []


def test_second_run_uploads_nothing(hosts: SshdHosts, tmp_path: Path) -> None:
    # The second run carries the same inventory inline in its run configuration.
    inventory = yaml.safe_load(hosts.inventory.read_text())
    for key in ("key", "known_hosts"):
        inventory[key] = str(hosts.inventory.parent / inventory[key])
    inline = tmp_path / "inline.yaml"
    inline.write_text(yaml.safe_dump({"backend": {"kind": "ssh", "hosts": inventory}}))
    r = None
    for where in (["--backend", "ssh", "--hosts", str(hosts.inventory)], ["--config", str(inline)]):
        r = harness(
            "run", *where, "--target", "etcd",
            "--nemesis", "none", "--time-limit", "2", "--store", str(tmp_path / "store"),
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    assert r is not None
    assert "deploy etcd-3.5.16: already on every host, nothing uploaded" in r.stdout + r.stderr


def test_sigterm_mid_partition_heals_and_cleans(hosts: SshdHosts, tmp_path: Path) -> None:
    _kill_mid_partition(hosts, tmp_path, signal.SIGTERM, within_s=None)


def test_sigkill_mid_partition_dead_mans_switch(hosts: SshdHosts, tmp_path: Path) -> None:
    """The harness vanishes mid-partition: every host heals itself within N + 2 s."""
    watchdog_s = load_inventory(hosts.inventory).watchdog_s
    _kill_mid_partition(hosts, tmp_path, signal.SIGKILL, within_s=watchdog_s + 2)


def _kill_mid_partition(
    hosts: SshdHosts, tmp_path: Path, signum: int, within_s: float | None
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "target": "etcd",
                "nemesis": {
                    "faults": ["partition"],
                    "schedule": {"warmup_s": 1, "gap_s": [0.5, 0.5], "duration_s": [60, 60]},
                    "partition": {"modes": ["one"]},
                },
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--backend", "ssh",
         "--hosts", str(hosts.inventory), "--config", str(config), "--time-limit", "120",
         "--store", str(tmp_path / "store")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        run_id = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for name in hosts.addresses:
                _, out = hosts.exec(
                    name, "iptables -w -S 2>/dev/null | grep -o 'LH-[0-9a-f]*' | head -1"
                )
                if out.strip():
                    run_id = out.strip()[3:]
                    break
            if run_id:
                break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        assert run_id, "no partition chain appeared on any host"
        time.sleep(0.5)
        # Watchers inside every host, started before the signal, note when it is healed.
        bound = within_s if within_s is not None else 90.0
        with ThreadPoolExecutor(max_workers=len(hosts.addresses)) as pool:
            watchers = {
                n: pool.submit(hosts.wait_healed, n, run_id, bound + 30) for n in hosts.addresses
            }
            time.sleep(1.0)  # the watchers are polling
            killed_at = time.time()
            proc.send_signal(signum)
            healed = {n: w.result() for n, w in watchers.items()}
        if within_s is None:
            proc.wait(timeout=90)
            assert proc.returncode == 2
        else:
            proc.wait(timeout=10)
            # The candidates (local, children of the dead harness) went with it.
            left = subprocess.run(
                ["pgrep", "-f", f"harness.workloads.candidate.*{tmp_path}"],
                capture_output=True, text=True,
            )  # fmt: skip
            assert left.stdout.strip() == ""
        assert None not in healed.values(), healed
        healed_s = max(t for t in healed.values() if t is not None) - killed_at
        print(f"every host healed {healed_s:.2f} s after {signal.Signals(signum).name}")
        if within_s is not None:
            assert healed_s <= within_s, f"healed {healed_s:.2f} s after SIGKILL"
        # The run's files go right after, as the last step of the same heal.
        deadline = time.monotonic() + 15
        while left_over := [(n, x) for n in hosts.addresses for x in hosts.leftovers(n, run_id)]:
            assert time.monotonic() < deadline, f"left on hosts: {left_over}"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_partial_partitions_on_ssh_hosts_and_lossy_is_refused(
    hosts: SshdHosts, tmp_path: Path
) -> None:
    """one-link and one-direction go through the run's own chain on real hosts, like
    every partition, and heal; lossy is refused before anything starts (shared hosts)."""
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "target": "reference",
                "nemesis": {
                    "faults": ["partition"],
                    "schedule": {"warmup_s": 1, "gap_s": [0.5, 1], "duration_s": [1.5, 2.5]},
                    "partition": {"modes": ["one-link", "one-direction"]},
                },
            }
        )
    )
    r = harness(
        "run", "--backend", "ssh", "--hosts", str(hosts.inventory), "--config", str(config),
        "--time-limit", "12", "--seed", "7", "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stdout + r.stderr
    run_dir = Path(r.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    events = [
        e
        for e in map(json.loads, (run_dir / "history.jsonl").read_text().splitlines())
        if e["process"] == "nemesis"
    ]
    starts = [e for e in events if e["f"] == "start-partition"]
    assert {e["value"]["mode"] for e in starts} == {"one-link", "one-direction"}, events
    assert not any("error" in e["value"] for e in starts), starts
    assert len([e for e in events if e["f"] == "stop-partition"]) == len(starts)
    run_id = json.loads((run_dir / "results.json").read_text())["run_id"]
    for name in hosts.addresses:
        assert hosts.leftovers(name, run_id) == []
    r = harness(
        "run", "--backend", "ssh", "--hosts", str(hosts.inventory), "--target", "reference",
        "--nemesis", "lossy", "--time-limit", "5", "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "lossy: not on remote (ssh) hosts" in r.stdout + r.stderr
