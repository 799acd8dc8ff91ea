"""Run configuration: harness/runconfig.py `load_run_config` / `parse_run_config`.

Defaults, a full YAML, every error naming the file and the key, a plain elector
configuration taken as `server`, command-line overrides, `workload_explicit`; and
`harness run` refusing a bad configuration before it creates anything.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import main
from harness.runconfig import ConfigError, RunConfig, Schedule, load_run_config, parse_run_config
from harness.workloads.settings import CandidateSettings

ROOT = Path(__file__).resolve().parents[2]

FULL = textwrap.dedent(
    """
    target: reference
    backend: local
    nodes: 5
    time_limit: 12.5
    seed: 42
    quiet_s: 1.5
    probe_interval_ms: 250
    nemesis:
      faults: [partition, pause]
      schedule: {warmup_s: 0.5, gap_s: [0.25, 1], duration_s: [1, 2]}
      partition: {modes: [one]}
    server: {heartbeat_interval_ms: 40}
    workload: {discipline: naive, write_interval_ms: 20, hold_s: [1, 2]}
    resource: {fencing: false}
    check: {tolerance_ns: 1000, stale_grace_ns: 5000000}
    """
)


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


# --- defaults and a full file ----------------------------------------------------------


def test_no_file_gives_the_defaults() -> None:
    cfg = load_run_config(None)
    assert cfg == RunConfig()
    assert (cfg.target, cfg.backend, cfg.nodes, cfg.time_limit) == ("reference", "auto", 3, 30.0)
    assert cfg.nemeses == ("none",)
    assert cfg.schedule == Schedule(2.0, (1.0, 3.0), None)
    assert cfg.workload == CandidateSettings()
    assert cfg.workload_explicit == {}
    assert cfg.fencing is True
    assert (cfg.tolerance_ns, cfg.stale_grace_ns) == (0, None)
    assert cfg.source is None


def test_empty_file_gives_the_defaults_with_its_source(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    cfg = load_run_config(path)
    assert cfg.source == str(path)
    assert cfg.to_dict() == RunConfig().to_dict()


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    cfg = load_run_config(path)
    assert cfg.target == "reference"
    assert cfg.backend == "local"
    assert cfg.nodes == 5
    assert cfg.time_limit == 12.5
    assert cfg.seed == 42
    assert cfg.quiet_s == 1.5
    assert cfg.probe_interval_ms == 250
    assert cfg.nemeses == ("partition", "pause")
    assert cfg.schedule == Schedule(0.5, (0.25, 1.0), (1.0, 2.0))
    assert cfg.nemesis_settings == {"partition": {"modes": ["one"]}}
    assert cfg.server == {"heartbeat_interval_ms": 40}
    assert cfg.workload.discipline == "naive"
    assert cfg.workload.write_interval_ms == 20
    assert cfg.workload.hold_s == (1.0, 2.0)
    assert cfg.workload.lease_margin_ms == CandidateSettings().lease_margin_ms
    assert cfg.fencing is False
    assert cfg.tolerance_ns == 1000
    assert cfg.stale_grace_ns == 5_000_000
    # to_dict round-trips through the parser (it is what config.yaml holds).
    again = parse_run_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "again")
    assert again.to_dict() == cfg.to_dict()


def test_faults_as_a_comma_separated_string(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "nemesis: {faults: 'kill,clock'}"))
    assert cfg.nemeses == ("kill", "clock")


def test_partial_schedule_keeps_the_other_defaults(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "nemesis: {schedule: {warmup_s: 0}}"))
    assert cfg.schedule == Schedule(0.0, (1.0, 3.0), None)  # durations: the target's


# --- errors: the file and the key --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("nodes: 3\nbogus: 1\n", "'bogus'"),
        ("nemesis: {faults: [partition, flood]}", "'nemesis.faults'"),
        ("nemesis: {faults: [none, kill]}", "'nemesis.faults'"),
        ("nemesis: {frobnicate: {}}", "'nemesis.frobnicate'"),
        ("nemesis: {none: {}}", "'nemesis.none'"),
        ("nemesis: {clock: 3}", "'nemesis.clock'"),
        ("nemesis: [partition]", "'nemesis'"),
        ("nodes: 4", "'nodes'"),
        ("nodes: three", "'nodes'"),
        ("nodes: 0", "'nodes'"),
        ("time_limit: 0", "'time_limit'"),
        ("time_limit: -5", "'time_limit'"),
        ("time_limit: soon", "'time_limit'"),
        ("time_limit: 100000", "'time_limit'"),
        ("seed: -1", "'seed'"),
        ("target: zookeeper", "'target'"),
        ("backend: kubernetes", "'backend'"),
        ("quiet_s: -1", "'quiet_s'"),
        ("quiet_s: true", "'quiet_s'"),
        ("probe_interval_ms: 1", "'probe_interval_ms'"),
        ("nemesis: {schedule: {gap_s: 2}}", "'nemesis.schedule.gap_s'"),
        ("nemesis: {schedule: {gap_s: [1, 2, 3]}}", "'nemesis.schedule.gap_s'"),
        ("nemesis: {schedule: {gap_s: [3, 1]}}", "'nemesis.schedule.gap_s[1]'"),
        ("nemesis: {schedule: {gap_s: [a, 1]}}", "'nemesis.schedule.gap_s[0]'"),
        ("nemesis: {schedule: {duration_s: '2-5'}}", "'nemesis.schedule.duration_s'"),
        ("nemesis: {schedule: {warmup_s: -1}}", "'nemesis.schedule.warmup_s'"),
        ("nemesis: {schedule: {warmup: 1}}", "'nemesis.schedule.warmup'"),
        ("resource: {fencing: 'yes please'}", "'resource.fencing'"),
        ("resource: {fencing: 1}", "'resource.fencing'"),
        ("resource: {fence: true}", "'resource.fence'"),
        ("check: {tolerance_ns: -1}", "'check.tolerance_ns'"),
        ("check: {tolerance_ns: lots}", "'check.tolerance_ns'"),
        ("check: {stale_grace_ns: -5}", "'check.stale_grace_ns'"),
        ("check: {tolerance: 1}", "'check.tolerance'"),
        ("server: [1, 2]", "'server'"),
        ("workload: {discipline: reckless}", "'workload.discipline'"),
        ("workload: {write_interval_ms: 0}", "'workload.write_interval_ms'"),
        ("workload: {write_interval_ms: 2.5}", "'workload.write_interval_ms'"),
        ("workload: {hold_s: [3, 1]}", "'workload.hold_s[1]'"),
        ("workload: {hold_s: 3}", "'workload.hold_s'"),
        ("workload: {resign_probability: 2}", "'workload.resign_probability'"),
        ("workload: {speed: 11}", "'workload.speed'"),
        ("workload: 5", "'workload'"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    message = error_of(tmp_path, text)
    assert key in message, message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    message = error_of(tmp_path, "- 1\n- 2\n")
    assert "top level" in message and "mapping" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes: 3\nseed: 1\nnemesis: {faults: [partition\ntime_limit: 5\n")
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    line = int(message[len(str(path)) + 1 :].split(":", 1)[0])
    assert line in (4, 5), message
    assert "invalid YAML" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))
    assert "cannot read" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"seed: 1 # caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))


# --- a plain elector configuration ------------------------------------------------------


def test_plain_elector_config_is_the_server_section() -> None:
    path = ROOT / "configs" / "reference" / "unsafe-no-persist.yaml"
    cfg = load_run_config(path)
    assert cfg.server == yaml.safe_load(path.read_text())
    assert cfg.server["persist_votes"] is False
    assert cfg.target == "reference"
    assert cfg.nodes == 3 and cfg.nemeses == ("none",)
    # Also with the target given on the command line.
    cfg = load_run_config(path, {"target": "reference", "nemeses": ("kill",)})
    assert cfg.server["persist_votes"] is False
    assert cfg.nemeses == ("kill",)


@pytest.mark.parametrize("name", ["safe", "unsafe-no-check-quorum", "unsafe-zero-drift"])
def test_every_reference_config_is_accepted(name: str) -> None:
    path = ROOT / "configs" / "reference" / f"{name}.yaml"
    assert load_run_config(path).server == yaml.safe_load(path.read_text())


def test_run_config_is_not_mistaken_for_an_elector_config(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "seed: 7\nserver: {pre_vote: false}\n"))
    assert cfg.seed == 7 and cfg.server == {"pre_vote": False}


# --- command-line overrides --------------------------------------------------------------


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    overrides: dict[str, Any] = {
        "target": None,
        "nemeses": ("kill",),
        "backend": None,
        "nodes": 3,
        "time_limit": 4.0,
        "seed": 0,  # falsy but given: it must still win
    }
    cfg = load_run_config(path, overrides)
    assert cfg.nemeses == ("kill",)
    assert cfg.nodes == 3
    assert cfg.time_limit == 4.0
    assert cfg.seed == 0
    # None means "not given": the file's value stays.
    assert cfg.backend == "local"
    assert cfg.target == "reference"
    assert cfg.quiet_s == 1.5


def test_overrides_without_a_file() -> None:
    cfg = load_run_config(None, {"nodes": 5, "seed": 9, "backend": None})
    assert (cfg.nodes, cfg.seed, cfg.backend) == (5, 9, "auto")


# --- workload_explicit -------------------------------------------------------------------


def test_workload_explicit_keeps_only_the_keys_the_yaml_set(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "workload: {lease_margin_ms: 80, discipline: guarded}\n"))
    assert set(cfg.workload_explicit) == {"lease_margin_ms", "discipline"}
    assert cfg.workload_explicit["lease_margin_ms"] == 80
    assert cfg.workload.lease_margin_ms == 80
    assert cfg.workload.write_interval_ms == CandidateSettings().write_interval_ms
    assert load_run_config(write(tmp_path, "seed: 1\n", "b.yaml")).workload_explicit == {}


# --- harness run refuses before creating anything ----------------------------------------


def test_harness_run_bad_config_exits_2_without_a_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "nodes: 3\ntime_limit: -1\n", "bad.yaml")
    store = tmp_path / "store"
    code = main(["run", "--config", str(config), "--store", str(store)])
    _, err = capsys.readouterr()
    assert code == 2
    assert str(config) in err and "'time_limit'" in err
    assert not store.exists()


def test_harness_run_invalid_yaml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "seed: [1\n", "bad.yaml")
    store = tmp_path / "store"
    assert main(["run", "--config", str(config), "--store", str(store)]) == 2
    assert f"{config}:" in capsys.readouterr().err
    assert not store.exists()


def test_harness_run_nodes_4_exits_2(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--nodes", "4", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "--nodes" in proc.stderr and "4" in proc.stderr
    assert not store.exists()


def _inline_hosts(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "id").write_text("key")
    (tmp_path / "known").write_text("")
    return {
        "key": "id",
        "known_hosts": "known",
        "nodes": [
            {"name": "n1", "ssh": "192.0.2.11", "address": "10.0.0.11"},
            {"name": "n2", "ssh": "192.0.2.12", "port": 2222, "address": "10.0.0.12"},
        ],
    }


def test_backend_mapping_carries_the_inventory_inline(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"backend": {"kind": "ssh", "hosts": _inline_hosts(tmp_path)}}))
    cfg = load_run_config(path)
    assert cfg.backend == "ssh" and cfg.hosts is None
    assert cfg.inventory is not None
    assert cfg.inventory.key == tmp_path / "id"  # relative to the run configuration
    assert [(n.name, n.port) for n in cfg.inventory.nodes] == [("n1", 22), ("n2", 2222)]
    # Written back (results.json, replay) it reads the same, from anywhere.
    again = tmp_path / "elsewhere" / "again.yaml"
    again.parent.mkdir()
    again.write_text(yaml.safe_dump(cfg.to_dict()))
    back = load_run_config(again).inventory
    assert back is not None and back.to_dict() == cfg.inventory.to_dict()
    # --hosts on the command line replaces it.
    assert load_run_config(path, {"hosts": "/x/hosts.yaml"}).inventory is None


def test_backend_mapping_with_an_inventory_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("backend: {kind: ssh, hosts: inv/hosts.yaml}\n")
    cfg = load_run_config(path)
    assert (cfg.backend, cfg.hosts, cfg.inventory) == (
        "ssh",
        str(tmp_path / "inv/hosts.yaml"),
        None,
    )


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"kind": "ssh", "hosts": {"nodes": []}}, "key 'backend.hosts.key': missing"),
        (
            {"kind": "docker", "hosts": "h.yaml"},
            "key 'backend.hosts': an inventory is for kind ssh",
        ),
        ({"kind": "vm"}, "key 'backend.kind'"),
        ({"kind": "ssh", "user": "x"}, "unknown key 'backend.user'"),
        ({"kind": "ssh", "hosts": 3}, "key 'backend.hosts': expected the path of an ssh inventory"),
    ],
)
def test_backend_mapping_mistakes_name_the_key(tmp_path: Path, backend: Any, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"backend": backend}))
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_a_bad_inline_node_names_its_key_path(tmp_path: Path) -> None:
    hosts = _inline_hosts(tmp_path)
    hosts["nodes"][1]["address"] = "ten"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"backend": {"kind": "ssh", "hosts": hosts}}))
    with pytest.raises(ConfigError, match=r"key 'backend\.hosts\.nodes\[1\]\.address'"):
        load_run_config(path)
    path.write_text(yaml.safe_dump({"backend": {"kind": "ssh", "hosts": _inline_hosts(tmp_path)},
                                    "hosts": "h.yaml"}))  # fmt: skip
    with pytest.raises(ConfigError, match="inventory is given twice"):
        load_run_config(path)
