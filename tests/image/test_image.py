"""The node image: cache keys, pins, the private apt config (unit), and the built image
(integration: servers report their versions, the venv imports, iptables with NET_ADMIN).

The integration tests call `ensure_image()`, which is a no-op when CI has built the image
beforehand (`.ci/run` runs `harness image build`); they skip only when no docker daemon
answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import build_parser, main
from harness.image import build, rootfs, servers, wheels
from harness.image.apt import KEYRING, PrivateApt
from harness.image.errors import ImageError

REPO = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------- pins


def test_servers_are_the_three_pinned_trees() -> None:
    assert list(servers.SERVERS) == ["etcd-3.5.16", "etcd-3.4.23", "consul-1.8.7"]
    suites = {name: s.suite for name, s in servers.SERVERS.items()}
    assert suites == {
        "etcd-3.5.16": "trixie",
        "etcd-3.4.23": "bookworm",
        "consul-1.8.7": "bullseye",
    }
    for name, server in servers.SERVERS.items():
        assert name == f"{server.system}-{server.version}"
        for package, version in server.packages:
            # Exact Debian versions (upstream-revision), never a range or "latest".
            assert version.startswith(server.version + "-") or version.startswith(
                server.version + "+"
            ), (package, version)
            assert not any(c in version for c in "<>*= "), version


def test_etcd_trees_have_etcdctl_and_consul_has_consul() -> None:
    for name in ("etcd-3.5.16", "etcd-3.4.23"):
        assert servers.server_program(name, "etcd") == "usr/bin/etcd"
        assert servers.server_program(name, "etcdctl") == "usr/bin/etcdctl"
        assert {p for p, _ in servers.SERVERS[name].packages} == {"etcd-server", "etcd-client"}
    assert servers.server_program("consul-1.8.7", "consul") == "usr/bin/consul"
    assert servers.image_program("etcd-3.5.16", "etcd") == "/opt/servers/etcd-3.5.16/usr/bin/etcd"
    with pytest.raises(KeyError, match="unknown server"):
        servers.server_program("etcd-9.9.9", "etcd")
    with pytest.raises(KeyError, match="no program"):
        servers.server_program("consul-1.8.7", "etcd")


def test_server_cache_is_complete_only_with_matching_marker_and_programs(tmp_path: Path) -> None:
    server = servers.SERVERS["consul-1.8.7"]
    tree = tmp_path / server.name
    assert not servers._is_complete(server, tree)
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/consul").write_text("")
    assert not servers._is_complete(server, tree)  # no marker: an interrupted unpack
    servers._marker(tree).write_text('{"packages": ["consul=0.0.1-1"]}')
    assert not servers._is_complete(server, tree)  # another pin
    servers._marker(tree).write_text(json.dumps({"packages": server.pins()}))
    assert servers._is_complete(server, tree)
    (tree / "usr/bin/consul").unlink()
    assert not servers._is_complete(server, tree)


# ----------------------------------------------------------------------------- apt


def test_private_apt_never_reads_the_systems_apt_config(tmp_path: Path) -> None:
    apt = PrivateApt(tmp_path / "apt", ["trixie", "bookworm", "trixie", "bullseye"])
    assert apt.suites == ("trixie", "bookworm", "bullseye")
    for key, value in apt.settings().items():
        if key.startswith("Dir"):
            assert value == "/dev/null" or value.startswith(str(tmp_path)), (key, value)
            assert not value.startswith("/etc"), (key, value)
    values = [opt.split("=", 1)[1] for opt in apt.options()[1::2]]
    assert not [v for v in values if v.startswith("/etc")]
    assert "Dir::Etc::SourceParts=/dev/null" in apt.options()
    assert apt._env()["APT_CONFIG"].startswith(str(tmp_path))


def test_private_apt_sources_are_signed_by_debians_keyring(tmp_path: Path) -> None:
    apt = PrivateApt(tmp_path / "apt", ["trixie", "bullseye"])
    lines = apt.sources_text().splitlines()
    assert lines == [
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian trixie main",
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian bullseye main",
    ]
    assert "trusted=yes" not in apt.sources_text()
    if KEYRING.is_file():
        apt.write_config()
        assert apt.sources_list.read_text() == apt.sources_text()
        assert apt.apt_conf.read_text().count("Dir::") >= 10


def test_missing_keyring_is_a_clear_error(tmp_path: Path) -> None:
    apt = PrivateApt(tmp_path / "apt", ["trixie"], keyring=tmp_path / "nope.gpg")
    with pytest.raises(ImageError, match="keyring"):
        apt.write_config()


def test_debootstrap_checks_signatures() -> None:
    cmd = rootfs.debootstrap_command(Path("/x/rootfs"), Path("/x/debs"))
    assert f"--keyring={KEYRING}" in cmd
    assert "--force-check-gpg" in cmd
    assert not any("no-check" in arg for arg in cmd)
    assert cmd[-3:] == ["bookworm", "/x/rootfs", "http://deb.debian.org/debian"]
    include = next(a for a in cmd if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert {"python3", "python3-venv", "iproute2", "iptables", "procps"} <= set(include)


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        ("I: Validating bash 5.2.15-2+b13", True),
        ("I: Validating bsdutils 1:2.38.1-5+deb12u3", True),
        ("I: Extracting libc6...", True),
        ("I: Unpacking libc6:amd64...", True),
        ("I: Configuring libkrb5-3:amd64...", True),
        ("I: Retrieving Packages", False),
        ("I: Unpacking the base system...", False),
        ("I: Configuring required packages...", False),
    ],
)
def test_debootstrap_progress_drops_per_package_lines(line: str, noise: bool) -> None:
    assert bool(rootfs._PER_PACKAGE.match(line)) is noise


# ----------------------------------------------------------------------------- wheels


def test_third_party_pins_follow_pyproject_with_markers_for_the_image() -> None:
    pins = wheels.third_party_pins()
    for name in ("docker", "py-consul", "httpx", "orjson", "pyyaml", "rich", "requests"):
        assert name in pins
    for absent in ("pywin32", "pytest", "hypothesis", "ruff", "leader-harness"):
        assert absent not in pins
    assert all(v and v[0].isdigit() for v in pins.values())


def test_wheel_download_targets_the_images_python() -> None:
    args = " ".join(wheels.TARGET_PIP_ARGS)
    assert "--only-binary=:all:" in args and "--python-version 3.11" in args
    assert "--platform manylinux_2_17_x86_64" in args  # orjson, pyyaml publish these
    assert "--platform manylinux_2_37_x86_64" not in args  # bookworm has glibc 2.36


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    for package in wheels.SOURCE_PACKAGES:
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f'"""{package}"""\n')
    return root


def test_source_hash_covers_package_files_and_pyproject_only(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    first = wheels.source_hash(root)
    assert wheels.source_hash(root) == first
    # Not inputs: bytecode, caches, README, tests.
    (root / "harness" / "__pycache__").mkdir()
    (root / "harness" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "harness" / "y.pyc").write_bytes(b"\0")
    (root / "README.md").write_text("docs\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    assert wheels.source_hash(root) == first
    # Inputs: any package file (code or data) and pyproject.toml.
    (root / "nemesis" / "__init__.py").write_text('"""changed"""\n')
    second = wheels.source_hash(root)
    assert second != first
    (root / "reports" / "template.html").write_text("<html>")
    third = wheels.source_hash(root)
    assert third != second
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n")
    assert wheels.source_hash(root) != third
    # Renaming a file changes the hash even with the same bytes.
    before = wheels.source_hash(root)
    (root / "reports" / "template.html").rename(root / "reports" / "other.html")
    assert wheels.source_hash(root) != before


# ----------------------------------------------------------------------------- cache keys


def test_plan_is_stable_and_layers_chain(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    a, b = build.plan(root), build.plan(root)
    assert a == b
    assert a.node.ref.startswith("leader-harness-node:") and len(a.node.ref.split(":")[1]) == 16
    assert a.base.parent == a.rootfs.ref and a.node.parent == a.base.ref
    assert a.node.labels[build.LABEL_INPUTS] == a.node.inputs_hash
    assert a.node.labels[build.LABEL_LAYER] == "node"


def test_code_change_rebuilds_only_the_node_layer(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    before = build.plan(root)
    (root / "workloads" / "__init__.py").write_text('"""changed"""\n')
    after = build.plan(root)
    assert after.rootfs == before.rootfs
    assert after.base == before.base
    assert after.node.inputs_hash != before.node.inputs_hash


def test_server_pin_change_rebuilds_only_that_servers_layer(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    old = servers.SERVERS["consul-1.8.7"]
    bumped = servers.ServerPackage(
        name=old.name,
        system=old.system,
        version=old.version,
        suite=old.suite,
        packages=(("consul", "1.8.7+dfsg1-2+b4"),),
        programs=old.programs,
        version_command=old.version_command,
    )
    before = build.run_plan([old], (), root)
    after = build.run_plan([bumped], (), root)
    assert after.node == before.node  # rootfs, base and node layers are untouched
    assert before.servers is not None and after.servers is not None
    assert after.servers.inputs_hash != before.servers.inputs_hash
    assert after.servers.parent == before.node.node.ref
    assert after.image == after.servers.ref and after.reqs is None


def test_node_image_carries_no_server_and_a_target_without_packages_uses_it(
    tmp_path: Path,
) -> None:
    root = _project_copy(tmp_path)
    bare = build.run_plan((), (), root)
    assert bare.layers == [] and bare.image == bare.node.node.ref
    assert "servers" not in build.BASE_DOCKERFILE and "/opt/servers" not in build.BASE_DOCKERFILE


def test_run_layers_chain_and_are_keyed_by_their_inputs(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    etcd = servers.SERVERS["etcd-3.5.16"]
    consul = servers.SERVERS["consul-1.8.7"]
    full = build.run_plan([etcd], ["etcd3gw==2.4.2"], root)
    assert full.servers is not None and full.reqs is not None
    assert full.servers.repo == build.SERVERS_REPO and full.reqs.repo == build.REQS_REPO
    assert full.reqs.parent == full.servers.ref and full.image == full.reqs.ref
    assert full.reqs.labels["org.leader-harness.layer"] == "reqs"
    # Same inputs, same keys (order and duplicates do not matter); other inputs, others.
    again = build.run_plan([etcd, etcd], ["etcd3gw==2.4.2", "etcd3gw==2.4.2"], root)
    assert again == build.run_plan([etcd], ["etcd3gw==2.4.2"], root)
    assert again.image == full.image
    assert build.run_plan([consul], ["etcd3gw==2.4.2"], root).reqs != full.reqs
    other_req = build.run_plan([etcd], ["etcd3gw==2.4.1"], root)
    assert other_req.servers == full.servers and other_req.reqs != full.reqs
    # Requirements alone sit directly on the node image.
    only_reqs = build.run_plan((), ["etcd3gw==2.4.2"], root)
    assert only_reqs.servers is None and only_reqs.reqs is not None
    assert only_reqs.reqs.parent == only_reqs.node.node.ref
    # A code change moves the node layer, and the run layers with it.
    (root / "harness" / "extra.py").write_text("X = 2\n")
    moved = build.run_plan([etcd], ["etcd3gw==2.4.2"], root)
    assert moved.servers != full.servers and moved.reqs != full.reqs


def test_servers_dockerfile_copies_trees_installs_debs_and_checks_versions() -> None:
    tree = servers.SERVERS["etcd-3.4.23"]
    deps = servers.ServerPackage(
        "jq-1.6", "jq", "1.6", "bookworm", (("jq", "1.6-2.1+deb12u2"),), {"jq": "usr/bin/jq"},
        ("jq", "--version"), resolve_deps=True,
    )  # fmt: skip
    only_tree = build.servers_dockerfile("parent:x", [tree])
    assert "COPY servers/ /opt/servers/" in only_tree and "dpkg -i" not in only_tree
    assert "/opt/servers/etcd-3.4.23/usr/bin/etcd --version >/dev/null" in only_tree
    both = build.servers_dockerfile("parent:x", [tree, deps])
    assert "dpkg -i /tmp/debs/*.deb" in both and "/usr/bin/jq --version >/dev/null" in both
    assert deps.image_root == "/" and deps.image_program("jq") == "/usr/bin/jq"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"name": "bad name"}, "the name must be"),
        ({"packages": ()}, "no Debian packages"),
        ({"packages": (("jq", ">=1.6"),)}, "exact version"),
        ({"programs": {"jq": "/usr/bin/jq"}}, "relative to the package's root"),
        ({"version_command": ("java", "-version")}, "none of its programs"),
        ({"suite": "trixie"}, "must come from the node image's suite"),
    ],
)
def test_bad_server_package_declarations_are_refused(change: dict[str, Any], error: str) -> None:
    fields: dict[str, Any] = {
        "name": "jq-1.6", "system": "jq", "version": "1.6", "suite": "bookworm",
        "packages": (("jq", "1.6-2.1+deb12u2"),), "programs": {"jq": "usr/bin/jq"},
        "version_command": ("jq", "--version"), "resolve_deps": True,
    }  # fmt: skip
    package = servers.ServerPackage(**{**fields, **change})
    with pytest.raises(servers.ServerPackageError, match=error):
        package.check()


def test_a_package_with_dependencies_is_never_unpacked_as_a_tree(tmp_path: Path) -> None:
    deps = servers.ServerPackage(
        "jq-1.6", "jq", "1.6", "bookworm", (("jq", "1.6-2.1+deb12u2"),), {"jq": "usr/bin/jq"},
        resolve_deps=True,
    )  # fmt: skip
    with pytest.raises(servers.ServerPackageError, match="needs its Debian dependencies"):
        servers.ensure_servers(tmp_path, packages=[deps])


def test_resolution_asks_apt_with_the_images_status_and_caches_the_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resolve_debs: apt's private status is the image's, the pins go to
    `apt-get install --download-only`, and a second call reuses the downloaded set."""
    calls: list[tuple[str, list[str]]] = []
    status = b"Package: libc6\nStatus: install ok installed\n"
    seen: list[bytes] = []

    def fake_update(self: PrivateApt) -> None:
        self.write_config()
        calls.append(("update", list(self.suites)))

    def fake_download(self: PrivateApt, pins: list[str], dest: Path) -> list[Path]:
        calls.append(("resolve", list(pins)))
        seen.append(self.status_file.read_bytes())
        for name in ("jq_1.6-2.1+deb12u2_amd64.deb", "libjq1_1.6-2.1+deb12u2_amd64.deb"):
            (dest / name).write_bytes(b"deb")
        return sorted(dest.glob("*.deb"))

    monkeypatch.setattr(PrivateApt, "update", fake_update)
    monkeypatch.setattr(PrivateApt, "download_with_dependencies", fake_download)
    deps = servers.ServerPackage(
        "jq-1.6", "jq", "1.6", "bookworm", (("jq", "1.6-2.1+deb12u2"),), {"jq": "usr/bin/jq"},
        resolve_deps=True,
    )  # fmt: skip
    first = servers.resolve_debs(deps, status, tmp_path)
    assert [d.name for d in first] == [
        "jq_1.6-2.1+deb12u2_amd64.deb",
        "libjq1_1.6-2.1+deb12u2_amd64.deb",
    ]
    assert calls == [("update", ["bookworm"]), ("resolve", ["jq=1.6-2.1+deb12u2"])]
    assert servers.resolve_debs(deps, status, tmp_path) == first
    assert len(calls) == 2  # cached: apt was not asked again
    # Another image (another status) is resolved again.
    servers.resolve_debs(deps, b"", tmp_path)
    assert len(calls) == 4 and seen == [status, b""]


def test_wheel_pin_change_rebuilds_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project_copy(tmp_path)
    before = build.plan(root)
    pins = dict(before.pins, httpx="0.0.1")
    monkeypatch.setattr(wheels, "third_party_pins", lambda _root=None: pins)
    after = build.plan(root)
    assert after.rootfs == before.rootfs
    assert after.base.inputs_hash != before.base.inputs_hash


def test_rootfs_recipe_change_rebuilds_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project_copy(tmp_path)
    before = build.plan(root)
    monkeypatch.setattr(rootfs, "INCLUDE", (*rootfs.INCLUDE, "strace"))
    after = build.plan(root)
    assert after.rootfs.inputs_hash != before.rootfs.inputs_hash
    assert after.base.inputs_hash != before.base.inputs_hash
    assert after.node.inputs_hash != before.node.inputs_hash


def test_expected_image_matches_plan() -> None:
    assert build.expected_image() == build.plan().node.ref


def test_labelled_dockerfile_adds_one_label_step(tmp_path: Path) -> None:
    layer = build.plan(_project_copy(tmp_path)).node
    text = build._labelled("FROM x\n", layer)
    assert text.count("LABEL") == 1
    assert f'{build.LABEL_INPUTS}="{layer.inputs_hash}"' in text


# ----------------------------------------------------------------------------- cli


def test_cli_has_image_build_and_show() -> None:
    args: Any = build_parser().parse_args(["image", "build", "--force"])
    assert args.force is True
    args = build_parser().parse_args(["image", "show"])
    assert callable(args.handler)


def test_cli_show_lists_the_stack_then_run_layers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        build.ROOTFS_REPO: {"ref": "leader-harness-rootfs:1", "exists": True},
        build.BASE_REPO: {"ref": "leader-harness-base:2", "exists": True},
        build.NODE_REPO: {"ref": "leader-harness-node:3", "exists": False},
        "run_layers": [
            {"ref": "leader-harness-servers:4", "layer": "servers", "parent": "n:3"},
        ],
    }
    monkeypatch.setattr(build, "image_status", lambda: status)
    assert main(["image", "show"]) == 1  # the node image is missing: a "no"
    assert capsys.readouterr().out.splitlines() == [
        "leader-harness-rootfs:1  present",
        "leader-harness-base:2  present",
        "leader-harness-node:3  missing",
        "leader-harness-servers:4  present (servers layer on n:3)",
    ]


def test_cli_build_refuses_an_unknown_target_before_building(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def built(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("nothing may be built for an unknown target")

    monkeypatch.setattr(build, "ensure_image", built)
    assert main(["image", "build", "--target", "nope"]) == 2
    assert "harness image build: unknown target 'nope'" in capsys.readouterr().err


def _no_daemon() -> Any:
    raise ImageError("no docker daemon answers (test); is dockerd running?")


def test_cli_errors_exit_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "docker_client", _no_daemon)
    assert main(["image", "show"]) == 2
    assert "no docker daemon answers" in capsys.readouterr().err
    assert main(["image", "build"]) == 2
    assert "harness image build: no docker daemon answers" in capsys.readouterr().err


# ----------------------------------------------------------------------------- integration


def _docker_or_skip() -> Any:
    try:
        return build.docker_client()
    except ImageError as exc:
        pytest.skip(f"no docker daemon: {exc}")


@pytest.fixture(scope="module")
def node_image() -> tuple[Any, str]:
    client = _docker_or_skip()
    return client, build.ensure_image()


@pytest.fixture(scope="module")
def servers_image() -> tuple[Any, str]:
    """The node image plus a servers layer with every built-in server."""
    client = _docker_or_skip()
    return client, build.ensure_run_image(list(servers.SERVERS.values()))


def _run(client: Any, image: str, command: list[str], **kwargs: Any) -> str:
    out = client.containers.run(image, command, remove=True, stderr=True, **kwargs)
    return out.decode()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("server", "command", "expected"),
    [
        ("etcd-3.5.16", ["etcd", "--version"], "etcd Version: 3.5.16"),
        ("etcd-3.5.16", ["etcdctl", "version"], "etcdctl version: 3.5.16"),
        ("etcd-3.4.23", ["etcd", "--version"], "etcd Version: 3.4.23"),
        ("etcd-3.4.23", ["etcdctl", "version"], "etcdctl version: 3.4.23"),
        ("consul-1.8.7", ["consul", "version"], "Consul v1.8.7"),
    ],
)
def test_servers_report_their_versions(
    servers_image: tuple[Any, str], server: str, command: list[str], expected: str
) -> None:
    client, image = servers_image
    program = servers.SERVERS[server].image_program(command[0])
    assert expected in _run(client, image, [program, *command[1:]])


@pytest.mark.integration
def test_venv_imports_the_project_and_its_clients(node_image: tuple[Any, str]) -> None:
    client, image = node_image
    code = (
        "import harness, harness.workloads, harness.nemesis, harness.reports, consul, httpx, sys"
        "\nimport importlib.util as u"
        "\nprint(sys.version)"
        # One import namespace: nothing but `harness` comes from the project.
        "\nprint([m for m in ('workloads', 'nemesis', 'reports') if u.find_spec(m)])"
    )
    out = _run(client, image, [build.IMAGE_PYTHON, "-c", code])
    assert out.startswith("3.11.")
    assert out.splitlines()[-1] == "[]"


@pytest.mark.integration
def test_tools_are_present(node_image: tuple[Any, str]) -> None:
    client, image = node_image
    out = _run(client, image, ["sh", "-c", "python3 -V && ip -V && ps --version && ss -V"])
    assert "Python 3.11" in out and "iproute2" in out and "procps" in out


@pytest.mark.integration
def test_iptables_works_with_only_net_admin(node_image: tuple[Any, str]) -> None:
    client, image = node_image
    script = "iptables -A OUTPUT -d 10.0.0.1 -j DROP && iptables -S OUTPUT"
    out = _run(client, image, ["sh", "-c", script], cap_drop=["ALL"], cap_add=["NET_ADMIN"])
    assert "-A OUTPUT -d 10.0.0.1/32 -j DROP" in out


@pytest.mark.integration
def test_image_is_labelled_with_its_inputs(node_image: tuple[Any, str]) -> None:
    client, image = node_image
    labels = client.images.get(image).labels
    assert labels[build.LABEL_INPUTS] == build.plan().node.inputs_hash
    assert labels[build.LABEL_LAYER] == "node"


def test_without_a_source_checkout_or_installed_files_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No checkout at tmp_path: the installed distribution would be the source (see
    # tests/test_installed_wheel.py); with none installed either, say what is missing.
    monkeypatch.setattr(wheels, "PROJECT", "no-such-distribution-xyz")
    with pytest.raises(ImageError, match=r"neither a source checkout .* nor an installed"):
        build.plan(tmp_path)


def test_prune_removes_only_tags_the_current_inputs_no_longer_name() -> None:
    from harness.image.build import plan, prune_images

    p = plan()
    layer = "org.leader-harness.layer"
    parent = "org.leader-harness.parent"

    class FakeImage:
        def __init__(self, *tags: str, on: str = "") -> None:
            self.tags = list(tags)
            self.labels = {layer: "x", parent: on} if on else {layer: "x"}

    class FakeImages:
        def __init__(self) -> None:
            self.removed: list[str] = []

        def list(self, filters: dict[str, str]) -> list[FakeImage]:
            assert filters == {"label": layer}
            return [
                FakeImage(p.node.ref),
                FakeImage("leader-harness-node:0000000000000000"),
                FakeImage(p.base.ref, "leader-harness-base:1111111111111111"),
                FakeImage(p.rootfs.ref),
                FakeImage("someone-else:latest"),  # labelled by another project: not ours
                # Run layers on the current node image (and on those) stay; on an old one go.
                FakeImage("leader-harness-servers:2222222222222222", on=p.node.ref),
                FakeImage(
                    "leader-harness-reqs:3333333333333333",
                    on="leader-harness-servers:2222222222222222",
                ),
                FakeImage(
                    "leader-harness-servers:4444444444444444",
                    on="leader-harness-node:0000000000000000",
                ),
                FakeImage(
                    "leader-harness-reqs:5555555555555555",
                    on="leader-harness-servers:4444444444444444",
                ),
            ]

        def remove(self, tag: str) -> None:
            self.removed.append(tag)

    class FakeClient:
        images = FakeImages()

    removed, kept = prune_images(FakeClient())
    assert removed == [  # children before their parents
        "leader-harness-reqs:5555555555555555",
        "leader-harness-servers:4444444444444444",
        "leader-harness-node:0000000000000000",
        "leader-harness-base:1111111111111111",
    ]
    assert FakeClient.images.removed == removed and kept == []


# ----------------------------------------------------------------------------- run layers

JQ = servers.ServerPackage(
    "jq-1.6", "jq", "1.6", "bookworm", (("jq", "1.6-2.1+deb12u2"),), {"jq": "usr/bin/jq"},
    ("jq", "--version"), resolve_deps=True,
)  # fmt: skip


@pytest.mark.integration
def test_a_package_with_dependencies_is_resolved_and_installed_in_its_layer(
    node_image: tuple[Any, str],
) -> None:
    """jq needs libjq1 and libonig5, which the node image lacks: apt resolves them on the
    host against the image's dpkg status, and dpkg -i installs all of it in the layer
    (with no network); the node image itself stays without them."""
    client, node = node_image
    lines: list[str] = []
    image = build.ensure_run_image([JQ], progress=lines.append)
    assert image == build.run_plan([JQ]).image and image.startswith(build.SERVERS_REPO)
    assert "jq-1.6" in _run(client, image, ["jq", "--version"]) or "jq-1.6" in _run(
        client, image, ["/usr/bin/jq", "--version"]
    )
    status = _run(client, image, ["dpkg-query", "-W", "-f=${Package} ${Status}\n"])
    for package in ("jq", "libjq1", "libonig5"):
        assert f"{package} install ok installed" in status
    assert "libonig5" not in _run(client, node, ["dpkg-query", "-W", "-f=${Package}\n"])
    again: list[str] = []
    assert build.ensure_run_image([JQ], progress=again.append) == image
    assert again == [f"run image {image} is current"]  # a second run builds nothing


@pytest.mark.integration
def test_requirements_are_a_layer_of_wheels_installed_offline(
    node_image: tuple[Any, str],
) -> None:
    client, _ = node_image
    reqs = ["six==1.16.0"]
    image = build.ensure_run_image((), reqs)
    assert image.startswith(build.REQS_REPO)
    code = "import six; print(six.__version__, six.__file__)"
    out = _run(
        client, image, ["python3", "-c", code],
        environment={"PYTHONPATH": build.IMAGE_REQUIREMENTS},
    )  # fmt: skip
    assert out.split() == ["1.16.0", f"{build.IMAGE_REQUIREMENTS}/six.py"]
    again: list[str] = []
    assert build.ensure_run_image((), reqs, progress=again.append) == image
    assert again == [f"run image {image} is current"]
