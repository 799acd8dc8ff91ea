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

REPO = Path(__file__).resolve().parent.parent

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


def test_server_pin_change_rebuilds_base_not_rootfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project_copy(tmp_path)
    before = build.plan(root)
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
    monkeypatch.setitem(servers.SERVERS, "consul-1.8.7", bumped)
    after = build.plan(root)
    assert after.rootfs == before.rootfs
    assert after.base.inputs_hash != before.base.inputs_hash
    assert after.node.inputs_hash != before.node.inputs_hash  # it sits on the new base


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
    node_image: tuple[Any, str], server: str, command: list[str], expected: str
) -> None:
    client, image = node_image
    program = servers.image_program(server, command[0])
    assert expected in _run(client, image, [program, *command[1:]])


@pytest.mark.integration
def test_venv_imports_the_project_and_its_clients(node_image: tuple[Any, str]) -> None:
    client, image = node_image
    code = "import harness, workloads, nemesis, consul, httpx, sys; print(sys.version)"
    out = _run(client, image, [build.IMAGE_PYTHON, "-c", code])
    assert out.startswith("3.11.")


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


def test_without_a_source_checkout_the_error_says_so(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="source checkout"):
        build.plan(tmp_path)


def test_prune_removes_only_tags_the_current_inputs_no_longer_name() -> None:
    from harness.image.build import plan, prune_images

    p = plan()

    class FakeImage:
        def __init__(self, *tags: str) -> None:
            self.tags = list(tags)

    class FakeImages:
        def __init__(self) -> None:
            self.removed: list[str] = []

        def list(self, filters: dict[str, str]) -> list[FakeImage]:
            assert filters == {"label": "org.leader-harness.layer"}
            return [
                FakeImage(p.node.ref),
                FakeImage("leader-harness-node:0000000000000000"),
                FakeImage(p.base.ref, "leader-harness-base:1111111111111111"),
                FakeImage(p.rootfs.ref),
                FakeImage("someone-else:latest"),  # labelled by another project: not ours
            ]

        def remove(self, tag: str) -> None:
            self.removed.append(tag)

    class FakeClient:
        images = FakeImages()

    removed, kept = prune_images(FakeClient())
    assert removed == [
        "leader-harness-node:0000000000000000",
        "leader-harness-base:1111111111111111",
    ]
    assert FakeClient.images.removed == removed and kept == []
