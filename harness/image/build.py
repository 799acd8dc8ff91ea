"""Build (or find) the node image, layer by layer, each layer keyed by a hash of its inputs.

Three images, each tagged with the first 16 hex digits of its input hash and labelled with
the whole hash (`org.leader-harness.inputs`):

- `leader-harness-rootfs:<key>`: debootstrap's bookworm tree, `docker import`ed
  (key: suite, package list, mirror, recipe version).
- `leader-harness-base:<key>`: FROM the rootfs, plus the server trees under /opt/servers
  and a venv at /opt/harness holding the pinned third-party wheels
  (key: rootfs key, server pins, wheel pins, this Dockerfile).
- `leader-harness-node:<key>`: FROM the base, plus the project's own wheel
  (key: base key, hash of the project's source files, this Dockerfile). A code change
  rebuilds only this thin layer, in seconds.

Builds run through docker-py with pull disabled and no network inside RUN steps: every byte
comes from the host (Debian's signed archive and PyPI, fetched and checked here).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import rootfs, wheels
from harness.image.errors import ImageError, Progress, report
from harness.image.servers import (
    DEFAULT_CACHE,
    IMAGE_SERVERS_ROOT,
    SERVERS,
    ensure_servers,
    image_program,
    servers_inputs,
)

IMAGE_PYTHON = "/opt/harness/bin/python"
IMAGE_VENV = "/opt/harness"
ROOTFS_REPO = "leader-harness-rootfs"
BASE_REPO = "leader-harness-base"
NODE_REPO = "leader-harness-node"
LABEL_PREFIX = "org.leader-harness"
LABEL_INPUTS = f"{LABEL_PREFIX}.inputs"
LABEL_LAYER = f"{LABEL_PREFIX}.layer"
KEY_LENGTH = 16

_PIP_OFFLINE = "--no-index --no-cache-dir --disable-pip-version-check"

BASE_DOCKERFILE = f"""\
FROM {{parent}}
COPY servers/ {IMAGE_SERVERS_ROOT}/
COPY wheels/ /tmp/wheels/
RUN python3 -m venv {IMAGE_VENV} \\
 && {IMAGE_PYTHON} -m pip install {_PIP_OFFLINE} --find-links /tmp/wheels \\
      -r /tmp/wheels/requirements.txt \\
 && rm -rf /tmp/wheels \\
 && {{checks}}
"""

NODE_DOCKERFILE = f"""\
FROM {{parent}}
COPY {{wheel}} /tmp/
RUN {IMAGE_PYTHON} -m pip install {_PIP_OFFLINE} /tmp/{{wheel}} \\
 && rm /tmp/{{wheel}} \\
 && {IMAGE_PYTHON} -c "import harness, workloads, nemesis, reports"
"""


def _server_checks() -> str:
    """Shell run at the end of the base build: every server binary starts on bookworm."""
    checks = []
    for server in SERVERS.values():
        program, *args = server.version_command
        checks.append(" ".join([image_program(server.name, program), *args, ">/dev/null"]))
    return " \\\n && ".join(checks)


def _digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Layer:
    """One image of the stack: its repository, full input hash, and parent reference."""

    repo: str
    inputs_hash: str
    parent: str | None

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.inputs_hash[:KEY_LENGTH]}"

    @property
    def labels(self) -> dict[str, str]:
        labels = {LABEL_INPUTS: self.inputs_hash, LABEL_LAYER: self.repo.rsplit("-", 1)[-1]}
        if self.parent:
            labels[f"{LABEL_PREFIX}.parent"] = self.parent
        return labels


@dataclass(frozen=True)
class Plan:
    """The three layers' references, computed from the inputs alone (no docker needed)."""

    rootfs: Layer
    base: Layer
    node: Layer
    pins: dict[str, str]


def plan(root: Path = wheels.PROJECT_ROOT) -> Plan:
    pins = wheels.third_party_pins(root)
    rootfs_layer = Layer(ROOTFS_REPO, _digest(rootfs.rootfs_inputs()), None)
    base_layer = Layer(
        BASE_REPO,
        _digest(
            {
                "rootfs": rootfs_layer.inputs_hash,
                "servers": servers_inputs(),
                "wheels": pins,
                "wheel_target": list(wheels.TARGET_PIP_ARGS),
                "dockerfile": BASE_DOCKERFILE,
                "checks": _server_checks(),
            }
        ),
        rootfs_layer.ref,
    )
    node_layer = Layer(
        NODE_REPO,
        _digest(
            {
                "base": base_layer.inputs_hash,
                "sources": wheels.source_hash(root),
                "build_tools": list(wheels.BUILD_TOOLS),
                "dockerfile": NODE_DOCKERFILE,
            }
        ),
        base_layer.ref,
    )
    return Plan(rootfs_layer, base_layer, node_layer, pins)


def expected_image() -> str:
    """The node image reference for the current inputs, without building anything."""
    return plan().node.ref


# -- docker ---------------------------------------------------------------------------------


def docker_client() -> Any:
    """A docker-py client that answered a ping, or ImageError saying why not."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as exc:
        raise ImageError(f"no docker daemon answers ({exc}); is dockerd running?") from None
    return client


def image_exists(client: Any, layer: Layer) -> bool:
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(layer.ref)
    except ImageNotFound:
        return False
    return (image.labels or {}).get(LABEL_INPUTS) == layer.inputs_hash


def _import_rootfs(client: Any, layer: Layer, cache_dir: Path, progress: Progress) -> None:
    workdir = rootfs.new_workdir(cache_dir)
    try:
        tarball = rootfs.build_rootfs_tar(workdir, cache_dir, progress)
        size = tarball.stat().st_size / 1e6
        report(progress, f"docker import {layer.ref} ({size:.0f} MB)")
        changes = [*rootfs.IMPORT_CHANGES, *(f"LABEL {k}={v}" for k, v in layer.labels.items())]
        answer = client.api.import_image_from_file(
            str(tarball), repository=layer.repo, tag=layer.ref.split(":", 1)[1], changes=changes
        )
        if "error" in str(answer).lower():
            raise ImageError(f"docker import of the root filesystem failed: {answer}")
    finally:
        rootfs.remove_workdir(workdir)


def _labelled(dockerfile: str, layer: Layer) -> str:
    """The Dockerfile plus one LABEL step (one step, not one per label: each costs ~1 s)."""
    pairs = " ".join(f'{key}="{value}"' for key, value in layer.labels.items())
    return f"{dockerfile}LABEL {pairs}\n"


def _docker_build(client: Any, context: Path, layer: Layer, progress: Progress) -> None:
    """docker build of `context` tagged `layer.ref`: no pull, no network in RUN steps."""
    from docker.errors import APIError

    report(progress, f"docker build {layer.ref}")
    try:
        stream = client.api.build(
            path=str(context),
            tag=layer.ref,
            pull=False,
            rm=True,
            forcerm=True,  # intermediate containers go, even when a step fails
            network_mode="none",
            decode=True,
        )
        last: list[str] = []
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ImageError(
                    f"docker build {layer.ref} failed: {detail.strip()}\n  "
                    + "\n  ".join(last[-10:])
                )
            text = str(chunk.get("stream", "")).rstrip()
            if not text:
                continue
            last.extend(text.splitlines())
            if text.startswith("Step "):
                report(progress, f"  {text}")
    except APIError as exc:
        raise ImageError(f"docker build {layer.ref} failed: {exc.explanation or exc}") from None
    if not image_exists(client, layer):
        raise ImageError(f"docker build {layer.ref} finished but the image is missing")


def _build_base(client: Any, p: Plan, cache_dir: Path, progress: Progress, force: bool) -> None:
    servers = ensure_servers(cache_dir, progress, force=force)
    house = wheels.ensure_wheelhouse(cache_dir, p.pins, progress, force=force)
    with _context_dir(cache_dir) as ctx:
        for name, tree in servers.items():
            shutil.copytree(tree, ctx / "servers" / name, symlinks=True, copy_function=_link)
        shutil.copytree(house, ctx / "wheels", copy_function=_link)
        dockerfile = BASE_DOCKERFILE.format(parent=p.rootfs.ref, checks=_server_checks())
        (ctx / "Dockerfile").write_text(_labelled(dockerfile, p.base))
        _docker_build(client, ctx, p.base, progress)


def _build_node(client: Any, p: Plan, cache_dir: Path, progress: Progress) -> None:
    tools = wheels.ensure_build_tools(cache_dir, progress)
    with _context_dir(cache_dir) as ctx:
        wheel = wheels.build_project_wheel(ctx, tools, progress=progress)
        dockerfile = NODE_DOCKERFILE.format(parent=p.base.ref, wheel=wheel.name)
        (ctx / "Dockerfile").write_text(_labelled(dockerfile, p.node))
        _docker_build(client, ctx, p.node, progress)


def _link(src: str, dst: str) -> None:
    """Hard-link into the build context when possible (same filesystem), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def _context_dir(cache_dir: Path) -> Iterator[Path]:
    tmp = Path(cache_dir) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="context.", dir=tmp))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(cache_dir: Path, progress: Progress) -> Iterator[None]:
    """One build at a time per cache directory (two test sessions may both ask)."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / "build.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(progress, "waiting for another image build to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_image(
    progress: Progress = None, force: bool = False, cache_dir: Path = DEFAULT_CACHE
) -> str:
    """Return the node image reference, building only the layers that are missing.

    `force` rebuilds all three layers and re-fetches every input.
    """
    started = time.monotonic()
    p = plan()
    client = docker_client()
    if not force and image_exists(client, p.node):
        report(progress, f"node image {p.node.ref} is current")
        return p.node.ref
    with _build_lock(cache_dir, progress):
        if force or not image_exists(client, p.base):
            if force or not image_exists(client, p.rootfs):
                _import_rootfs(client, p.rootfs, cache_dir, progress)
            else:
                report(progress, f"root filesystem {p.rootfs.ref} is current")
            _build_base(client, p, cache_dir, progress, force)
        else:
            report(progress, f"base image {p.base.ref} is current")
        if force or not image_exists(client, p.node):
            _build_node(client, p, cache_dir, progress)
    report(progress, f"node image {p.node.ref} ready in {time.monotonic() - started:.1f} s")
    return p.node.ref


def image_status() -> dict[str, Any]:
    """Each layer's expected reference and whether docker has it (for `harness image show`)."""
    p = plan()
    client = docker_client()
    return {
        layer.repo: {"ref": layer.ref, "exists": image_exists(client, layer)}
        for layer in (p.rootfs, p.base, p.node)
    }


def prune_images(client: Any | None = None) -> tuple[list[str], list[str]]:
    """Remove the tags of this project's image layers that the current inputs no longer
    name (every code change leaves a node layer behind). Returns (removed, kept back
    with the reason); an image a container still uses is kept by docker itself."""
    from docker.errors import APIError

    p = plan()
    current = {p.rootfs.ref, p.base.ref, p.node.ref}
    client = client or docker_client()
    removed: list[str] = []
    kept: list[str] = []
    for image in client.images.list(filters={"label": LABEL_LAYER}):
        for tag in image.tags:
            if tag.split(":", 1)[0] not in (ROOTFS_REPO, BASE_REPO, NODE_REPO) or tag in current:
                continue
            try:
                client.images.remove(tag)
                removed.append(tag)
            except APIError as exc:
                kept.append(f"{tag}: {exc.explanation or exc}")
    return removed, kept
