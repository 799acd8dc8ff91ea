"""Registries: the command line's vocabulary and the report's fault bands come from the
target and nemesis registries (built-ins, then plugins), never from lists elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import options as opts
from harness import plugins
from harness.backends import BACKENDS, OFFERS, backend_offers
from harness.backends.base import Node
from harness.backends.local import LocalBackend
from harness.image.servers import SERVERS, ServerPackage
from harness.nemesis import NEMESES, make_nemeses
from harness.nemesis.base import ReportBand
from harness.reports.timeline import fault_bands
from harness.runconfig import parse_run_config
from harness.targets import (
    TARGETS,
    ClockControl,
    TargetError,
    declaration,
    make_target,
    pair_refusal,
    supported_backends,
)
from harness.targets.etcd import EtcdTarget
from harness.targets.reference import ReferenceTarget


class Other(ReferenceTarget):
    name = "other"


class Wobble:
    name = "wobble"
    modes = ("one",)
    report_band = ReportBand("wobble", "wobble-on", "wobble-off", "#abcdef")

    def __init__(self, settings: object = None) -> None:
        self.settings = settings


@pytest.fixture
def registered() -> Iterator[None]:
    plugins.register(plugins.TARGET_GROUP, "other", Other)
    plugins.register(plugins.NEMESIS_GROUP, "wobble", Wobble)
    try:
        yield
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "other")
        plugins.unregister(plugins.NEMESIS_GROUP, "wobble")


def test_builtins_are_the_registries() -> None:
    assert set(TARGETS) <= set(opts.target_names())
    assert opts.nemesis_names()[0] == "none" and set(NEMESES) <= set(opts.nemesis_names())
    assert opts.target_names() == opts.TARGETS  # the old constant, now read on use
    kinds = {kind for kind, _, _ in fault_bands().values()}
    assert kinds >= {"partition", "pause", "kill", "clock"}


def test_a_registered_target_and_nemesis_are_accepted_everywhere(registered: None) -> None:
    assert opts.parse_target("other") == "other"
    assert opts.parse_nemeses("wobble,pause") == ("wobble", "pause")
    cfg = parse_run_config(
        {"target": "other", "nemesis": {"faults": ["wobble"], "wobble": {"x": 1}}}, "f.yaml"
    )
    assert cfg.target == "other" and cfg.nemesis_settings == {"wobble": {"x": 1}}
    assert isinstance(make_target("other", {}), Other)
    (built,) = make_nemeses(["wobble"], {"wobble": {"x": 1}})
    assert isinstance(built, Wobble) and built.settings == {"x": 1}
    assert fault_bands()["wobble-on"] == ("wobble", "wobble-off", "#abcdef")


def test_unregistered_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(opts.OptionError, match=r"unknown target 'other'; expected one of .*etcd"):
        opts.parse_target("other")
    with pytest.raises(TargetError, match="unknown target 'other'"):
        make_target("other", {})
    with pytest.raises(opts.OptionError, match="unknown nemesis 'wobble'"):
        opts.parse_nemeses("wobble")


def test_a_plugin_may_not_take_a_builtin_name() -> None:
    plugins.register(plugins.TARGET_GROUP, "etcd", Other)
    try:
        with pytest.raises(plugins.PluginError, match="'etcd', which is a built-in name"):
            opts.target_names()
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "etcd")


# --- declarations: clock, needs, server packages; backends' offers ----------------------

JQ = ServerPackage(
    "jq-1.6", "jq", "1.6", "bookworm", (("jq", "1.6-2.1+deb12u2"),), {"jq": "usr/bin/jq"},
    ("jq", "--version"), resolve_deps=True,
)  # fmt: skip


class JvmLike(EtcdTarget):
    """A target whose server needs its Debian dependencies installed (as ZooKeeper's JRE)."""

    name = "jvmlike"
    program = "jq"
    server_packages = (JQ,)
    needs = frozenset({"server-deps"})


class NoServers(LocalBackend):
    """A backend offering only namespaces: no server packages at all."""

    name = "bare"
    offers = frozenset({"shared-clock", "shared-files"})


@pytest.fixture
def declared() -> Iterator[None]:
    plugins.register(plugins.TARGET_GROUP, "jvmlike", JvmLike)
    plugins.register(plugins.BACKEND_GROUP, "bare", NoServers)
    try:
        yield
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "jvmlike")
        plugins.unregister(plugins.BACKEND_GROUP, "bare")


def test_builtin_targets_declare_their_clock_needs_and_packages() -> None:
    ref, etcd, consul = declaration("reference"), declaration("etcd"), declaration("consul")
    assert ref.member_clock == "clock-file" and ref.needs == frozenset()
    assert ref.server_packages == ()
    assert etcd.member_clock == consul.member_clock == "kernel"
    assert etcd.needs == consul.needs == frozenset({"server-trees"})
    assert [p.name for p in etcd.server_packages] == ["etcd-3.5.16", "etcd-3.4.23"]
    assert [p.name for p in consul.server_packages] == ["consul-1.8.7"]
    # A run's packages are the chosen version's only.
    assert [p.name for p in make_target("etcd", {"version": "3.4.23"}).run_packages] == [
        "etcd-3.4.23"
    ]
    assert make_target("reference", {}).run_packages == ()
    # The declaration agrees with the optional protocol it stands for.
    assert isinstance(make_target("reference", {}), ClockControl)
    assert not isinstance(make_target("etcd", {}), ClockControl)


def test_builtin_backends_declare_what_they_offer() -> None:
    assert backend_offers("docker") == frozenset(OFFERS)
    assert backend_offers("local") == {"shared-clock", "shared-files", "server-trees"}
    assert backend_offers("ssh") == {"server-trees"}
    for name, cls in BACKENDS.items():  # the words agree with the class's own answers
        offers = backend_offers(name)
        assert ("shared-clock" in offers) == cls.shares_clock, name
        assert ("shared-files" in offers) == cls.shares_files, name
        assert ("server-trees" in offers) == callable(getattr(cls, "server_root", None)), name


def test_supported_backends_follow_from_needs_and_offers(declared: None) -> None:
    assert supported_backends("reference") == ["docker", "local", "ssh", "bare"]
    assert supported_backends("etcd") == ["docker", "local", "ssh"]
    assert supported_backends("jvmlike") == ["docker"]
    assert pair_refusal("etcd", "docker") is None and pair_refusal("jvmlike", "docker") is None
    line = pair_refusal("jvmlike", "local")
    assert line == (
        "target jvmlike cannot run on the local backend: it needs server-deps (server "
        "packages installed with their Debian dependencies (e.g. a JRE)), which local does "
        "not offer; backends that can: docker"
    )
    assert "\n" not in line
    refused = pair_refusal("etcd", "bare")
    assert refused is not None and "needs server-trees" in refused
    assert "backends that can: docker, local, ssh" in refused
    # A registered backend is a --backend choice like the built-ins.
    assert opts.parse_backend("bare") == "bare"


def test_harness_run_refuses_an_unsupported_pair_before_anything_starts(
    declared: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    store = tmp_path / "store"
    code = main(["run", "--target", "jvmlike", "--backend", "local", "--store", str(store)])
    assert code == 2
    err = capsys.readouterr().err
    assert "target jvmlike cannot run on the local backend" in err
    assert len([line for line in err.splitlines() if "jvmlike" in line]) == 1
    assert not store.exists() or not any(store.iterdir())  # no run directory was made


class _Declared(ReferenceTarget):
    name = "declared"


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"member_clock": None}, "`member_clock` must be one of clock-file, kernel"),
        ({"member_clock": "kernel"}, "implements member_clock_file"),
        ({"needs": {"server-trees"}}, "`needs` must be a frozenset"),
        ({"needs": frozenset({"gpu"})}, "`needs` must be a frozenset"),
        ({"server_packages": [JQ]}, "must be a tuple of ServerPackage"),
        ({"server_packages": (JQ,)}, "`needs` must name 'server-deps'"),
        (
            {"server_packages": (SERVERS["consul-1.8.7"],)},
            "`needs` must name 'server-trees'",
        ),
    ],
)
def test_a_target_with_a_missing_or_contradicting_declaration_is_refused(
    attrs: dict[str, Any], error: str
) -> None:
    bad = type("Bad", (_Declared,), attrs)
    plugins.register(plugins.TARGET_GROUP, "declared", bad)
    try:
        with pytest.raises(plugins.PluginError, match=re.escape(error)):
            declaration("declared")
        with pytest.raises(plugins.PluginError, match="target 'declared'"):
            make_target("declared", {})
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "declared")


def test_a_kernel_clock_target_with_a_clock_file_method_is_refused() -> None:
    class Liar(EtcdTarget):
        def member_clock_file(self, node: Any) -> str:
            return "/tmp/clock"

    plugins.register(plugins.TARGET_GROUP, "liar", Liar)
    try:
        with pytest.raises(plugins.PluginError, match="declare 'clock-file'"):
            declaration("liar")
    finally:
        plugins.unregister(plugins.TARGET_GROUP, "liar")


def test_a_backend_without_offers_is_refused() -> None:
    # A set, not a frozenset of known words.
    Vague = type("Vague", (LocalBackend,), {"offers": {"shared-clock"}})
    plugins.register(plugins.BACKEND_GROUP, "vague", Vague)
    try:
        with pytest.raises(plugins.PluginError, match="backend 'vague': `offers` must be"):
            backend_offers("vague")
    finally:
        plugins.unregister(plugins.BACKEND_GROUP, "vague")


def test_the_member_clock_file_follows_the_declaration() -> None:
    """RunCluster asks the declaration: a target declaring "kernel" gets no member clock
    file even on a backend that shares the clock (the clock nemesis then refuses)."""
    from harness.run.cluster import RunCluster

    class Probe:
        def __init__(self, target: Any, shares_clock: bool) -> None:
            self.target = target
            self.backend = type("B", (), {"shares_clock": shares_clock})()

    node = Node("n1", "10.0.0.1", "h")
    ref = make_target("reference", {})
    ref._run_dir = Path("/run")  # type: ignore[attr-defined]
    assert RunCluster.member_clock_file(Probe(ref, True), node) == str(  # type: ignore[arg-type]
        Path("/run/nodes/n1/member-clock.json")
    )
    assert RunCluster.member_clock_file(Probe(ref, False), node) is None  # type: ignore[arg-type]
    assert RunCluster.member_clock_file(Probe(make_target("etcd", {}), True), node) is None  # type: ignore[arg-type]
