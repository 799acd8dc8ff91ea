"""The etcd and consul targets without servers: settings validation, command lines and
configuration, and how the status probe reads answers (through httpx.MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.backends.base import Node, SameHost
from harness.image.servers import ServerPackage
from harness.targets import TargetError, make_target
from harness.targets.consul import ConsulTarget
from harness.targets.etcd import EtcdTarget

NODES = [Node(f"n{i}", f"10.213.9.{10 + i}", f"h{i}") for i in (1, 2, 3)]


class FakeBackend(SameHost):
    name = "fake"
    run_id = "r1"
    host_address = "10.213.9.1"
    python = "/usr/bin/python3"

    def __init__(self) -> None:
        self.spawned: list[tuple[str, list[str]]] = []

    def server_root(self, package: ServerPackage) -> str:
        return f"/opt/servers/{package.name}"

    def spawn(self, node: Node, name: str, argv: Any, *, env: Any = None, log_path: Path) -> Any:
        self.spawned.append((node.name, list(argv)))
        return None


@pytest.mark.parametrize(
    ("target", "server", "message"),
    [
        ("etcd", {"version": "3.6.0"}, r"server.version': expected one of 3.5.16, 3.4.23"),
        ("etcd", {"heartbeat_interval_ms": 0}, r"server.heartbeat_interval_ms'"),
        ("etcd", {"election_timeout_ms": 300}, r"at least 5 x heartbeat_interval_ms \(500\)"),
        ("etcd", {"election": {"lease_ttl_s": "2"}}, r"server.election.lease_ttl_s'"),
        ("etcd", {"electon": {}}, r"unknown key 'server.electon'"),
        ("etcd", {"extra_flags": "--x"}, r"server.extra_flags': expected a list of strings"),
        ("consul", {"lock": {"session_ttl_s": 5}}, r"server.lock.session_ttl_s'.*10 to"),
        ("consul", {"lock": {"lock_delay_s": -1}}, r"server.lock.lock_delay_s'"),
        ("consul", {"raft_multiplier": 11}, r"server.raft_multiplier'"),
        ("consul", {"lock": []}, r"key 'server.lock': expected a mapping"),
        ("consul", "nope", r"key 'server': expected a mapping"),
    ],
)
def test_bad_settings_name_the_file_and_key(target: str, server: Any, message: str) -> None:
    with pytest.raises(TargetError, match=message) as info:
        make_target(target, server, "run.yaml")
    assert str(info.value).startswith("run.yaml: ")


def test_etcd_version_written_as_a_yaml_number_is_accepted() -> None:
    assert EtcdTarget({"version": "3.4.23"}).package == "etcd-3.4.23"
    with pytest.raises(TargetError):
        EtcdTarget({"version": 3.4})


def test_etcd_command_line_and_candidate(tmp_path: Path) -> None:
    target = EtcdTarget(
        {"heartbeat_interval_ms": 50, "election_timeout_ms": 500, "pre_vote": False,
         "extra_flags": ["--unsafe-no-fsync"], "election": {"name": "e1", "lease_ttl_s": 3}}
    )  # fmt: skip
    backend = FakeBackend()
    target.setup(backend, NODES, tmp_path)  # type: ignore[arg-type]
    target.start_member(NODES[1])
    (node, argv) = backend.spawned[0]
    assert node == "n2"
    assert argv[0] == "/opt/servers/etcd-3.5.16/usr/bin/etcd"
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert flags["--listen-client-urls"] == "http://10.213.9.12:2379"
    assert flags["--initial-cluster"] == (
        "n1=http://10.213.9.11:2380,n2=http://10.213.9.12:2380,n3=http://10.213.9.13:2380"
    )
    assert flags["--heartbeat-interval"] == "50" and flags["--election-timeout"] == "500"
    assert "--pre-vote=false" in argv and argv[-1] == "--unsafe-no-fsync"
    spec = target.candidate(NODES[0])
    assert spec.adapter == "etcd" and spec.endpoint == "http://10.213.9.11:2379"
    assert spec.options == {"election": "e1", "ttl_s": 3}
    assert target.stale_grace_ns == 2 * 500_000_000 + 500_000_000
    assert target.nemesis_defaults["clock"]["processes"] == "candidate"


def test_consul_configuration(tmp_path: Path) -> None:
    target = ConsulTarget(
        {"extra_config": {"performance": {"leave_drain_time": "1s"}, "log_level": "DEBUG"},
         "lock": {"lock_delay_s": 2.5}}
    )  # fmt: skip
    backend = FakeBackend()
    target.setup(backend, NODES, tmp_path)  # type: ignore[arg-type]
    config = json.loads((tmp_path / "nodes" / "n3" / "consul.json").read_text())
    assert config["bootstrap_expect"] == 3
    assert config["retry_join"] == ["10.213.9.11", "10.213.9.12"]
    assert config["bind_addr"] == config["client_addr"] == "10.213.9.13"
    # extra_config merges into sections instead of replacing them
    assert config["performance"] == {"raft_multiplier": 1, "leave_drain_time": "1s"}
    assert config["autopilot"] == {"cleanup_dead_servers": False}
    assert config["log_level"] == "DEBUG"
    target.start_member(NODES[2])
    assert backend.spawned[0][1] == [
        "/opt/servers/consul-1.8.7/usr/bin/consul",
        "agent",
        f"-config-file={tmp_path / 'nodes' / 'n3' / 'consul.json'}",
    ]
    spec = target.candidate(NODES[0])
    assert spec.options == {
        "key": "harness/leader",
        "ttl_s": 10,
        "lock_delay_s": 2.5,
        "serf_check": True,
    }
    off = ConsulTarget({"lock": {"serf_check": False}}).candidate(NODES[0]).options
    assert off["serf_check"] is False


def test_targets_refuse_a_backend_without_server_packages(tmp_path: Path) -> None:
    class Bare:
        name = "bare"

    for target in (EtcdTarget(), ConsulTarget()):
        with pytest.raises(TargetError, match="bare backend cannot install"):
            target.setup(Bare(), NODES, tmp_path)  # type: ignore[arg-type]


def _mock(target: Any, handler: Any) -> None:
    target._http = httpx.Client(transport=httpx.MockTransport(handler))
    target._nodes = NODES


def test_etcd_probe_maps_member_ids_to_names() -> None:
    ids = {"10.213.9.11": "111", "10.213.9.12": "222", "10.213.9.13": "333"}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if request.url.path == "/v3/maintenance/status":
            body: dict[str, Any] = {"header": {"member_id": ids[host]}, "raftTerm": "7"}
            if host != "10.213.9.13":
                body["leader"] = "222"  # n3 knows no leader: the field is omitted
            return httpx.Response(200, json=body)
        assert request.url.path == "/v3/cluster/member/list"
        members = [{"ID": i, "name": f"n{k}"} for k, i in enumerate(ids.values(), 1)]
        return httpx.Response(200, json={"members": members})

    target = EtcdTarget()
    _mock(target, handler)
    view = target.probe(NODES[0], 1.0)
    assert view is not None and (view.node, view.leader, view.term) == ("n1", "n2", 7)
    view = target.probe(NODES[2], 1.0)
    assert view is not None and (view.leader, view.term) == (None, 7)


def test_etcd_probe_without_an_answer_is_no_observation() -> None:
    target = EtcdTarget()
    _mock(target, lambda request: httpx.Response(503, json={"error": "x"}))
    assert target.probe(NODES[0], 1.0) is None


def test_consul_probe_drops_a_reading_that_straddles_a_term_change() -> None:
    terms = iter(["4", "4", "4", "5"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agent/self":
            return httpx.Response(200, json={"Stats": {"raft": {"term": next(terms)}}})
        return httpx.Response(200, json="10.213.9.13:8300")

    target = ConsulTarget()
    _mock(target, handler)
    view = target.probe(NODES[0], 1.0)
    assert view is not None and (view.leader, view.term) == ("n3", 4)
    assert target.probe(NODES[0], 1.0) is None


def test_consul_probe_without_leader() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agent/self":
            return httpx.Response(200, json={"Stats": {"raft": {"term": "9"}}})
        return httpx.Response(200, json="")

    target = ConsulTarget()
    _mock(target, handler)
    view = target.probe(NODES[1], 1.0)
    assert view is not None and (view.node, view.leader, view.term) == ("n2", None, 9)


def test_etcd_probe_drops_a_new_leader_named_beside_the_old_applied_term() -> None:
    answers = iter([("222", "2"), ("0", "2"), ("111", "2"), ("111", "3"), ("222", "3")])

    def handler(request: httpx.Request) -> httpx.Response:
        leader, term = next(answers)
        body: dict[str, Any] = {"header": {"member_id": "333"}, "raftTerm": term}
        if leader != "0":
            body["leader"] = leader
        return httpx.Response(200, json=body)

    target = EtcdTarget()
    _mock(target, handler)
    target._names.update({"111": "n1", "222": "n2"})
    views = [target.probe(NODES[2], 1.0) for _ in range(5)]
    seen = [None if v is None else (v.leader, v.term) for v in views]
    # n2 led term 2; n3 lost it (no leader), then heard of n1 while its applied term was
    # still 2: dropped until the term moved to 3. Then n2 again in 3: also a lagging term.
    assert seen == [("n2", 2), (None, 2), None, ("n1", 3), None]
