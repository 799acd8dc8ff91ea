"""The ssh backend's inventory: every mistake names the file, the node and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.backends.ssh import SshBackend
from harness.backends.ssh_inventory import InventoryError, load_inventory
from harness.backends.ssh_watchdog import heal_script
from harness.cli import main


def write(tmp_path: Path, data: object) -> Path:
    (tmp_path / "id").write_text("key")
    (tmp_path / "known").write_text("")
    path = tmp_path / "hosts.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def good() -> dict:
    return {
        "user": "root",
        "key": "id",
        "known_hosts": "known",
        "nodes": [
            {"name": "n1", "ssh": "192.0.2.11", "address": "10.0.0.11"},
            {"name": "n2", "ssh": "192.0.2.12", "port": 2222, "address": "10.0.0.12"},
        ],
    }


def test_a_good_inventory_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, good()))
    assert inv.key == tmp_path / "id"
    assert inv.known_hosts == tmp_path / "known"
    assert [(n.name, n.port, n.address) for n in inv.nodes] == [
        ("n1", 22, "10.0.0.11"),
        ("n2", 2222, "10.0.0.12"),
    ]
    assert inv.watchdog_s == 15.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["nodes"][1].update(address="ten"), "key 'nodes[1].address'"),
        (lambda d: d["nodes"][0].update(port=0), "key 'nodes[0].port'"),
        (lambda d: d["nodes"][1].pop("ssh"), "key 'nodes[1].ssh': missing"),
        (lambda d: d["nodes"][1].update(address="10.0.0.11"), "key 'nodes[1].address'"),
        (lambda d: d["nodes"][1].update(name="n1"), "key 'nodes[1].name'"),
        (lambda d: d["nodes"][0].update(colour="red"), "unknown key 'nodes[0].colour'"),
        (lambda d: d.update(key="missing-file"), "key 'key': expected an existing file"),
        (lambda d: d.pop("known_hosts"), "key 'known_hosts': missing"),
        (lambda d: d.update(watchdog_s=1), "key 'watchdog_s'"),
        (lambda d: d.update(nodes=[]), "key 'nodes'"),
        (lambda d: d.update(remote_dir="relative"), "key 'remote_dir'"),
    ],
)
def test_every_mistake_names_file_node_and_key(tmp_path: Path, change, expected: str) -> None:
    data = good()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert str(err.value).startswith(str(path) + ":")
    assert expected in str(err.value)


def test_a_bad_inventory_is_exit_2_before_anything_runs(tmp_path: Path, capsys) -> None:
    data = good()
    data["nodes"][0]["address"] = "nowhere"
    path = write(tmp_path, data)
    assert main(["hosts", "check", str(path)]) == 2
    assert "key 'nodes[0].address'" in capsys.readouterr().err
    code = main(["run", "--backend", "ssh", "--hosts", str(path), "--store", str(tmp_path / "s")])
    assert code == 2
    assert "key 'nodes[0].address'" in capsys.readouterr().err


def test_the_backend_wants_an_inventory() -> None:
    with pytest.raises(Exception, match="--hosts"):
        SshBackend("abc")


def test_the_run_has_its_own_chain_and_says_what_it_assumes(tmp_path: Path) -> None:
    backend = SshBackend("0123abcd", hosts=write(tmp_path, good()))
    assert backend.partition_chain == "LH-0123abcd"
    assert backend.shares_clock is False and backend.shares_files is False
    assert backend.remote_run == "/var/lib/leader-harness/runs/0123abcd"


def test_heal_script_names_only_the_runs_own_things() -> None:
    script = heal_script("/var/lib/leader-harness/runs/r1", "LH-r1", "r1")
    assert "iptables -w -X $C" in script and "C='LH-r1'" in script
    assert "LH_RUN=$ID" in script and "ID='r1'" in script
    assert 'rm -rf "$R"' in script and "R='/var/lib/leader-harness/runs/r1'" in script
