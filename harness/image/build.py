"""Build (or find) the node image and a run's own image, layer by layer, each keyed by a
hash of its inputs.

Every image is tagged with the first 16 hex digits of its input hash and labelled with
the whole hash (`org.leader-harness.inputs`), its layer kind and its parent. The node
image (`harness image build`), the same for every run:

- `leader-harness-rootfs:<key>`: debootstrap's bookworm tree, `docker import`ed
  (key: suite, package list, mirror, recipe version).
- `leader-harness-base:<key>`: FROM the rootfs, plus a venv at /opt/harness holding the
  pinned third-party wheels (key: rootfs key, wheel pins, this Dockerfile).
- `leader-harness-node:<key>`: FROM the base, plus the project's own wheel
  (key: base key, hash of the project's source files, this Dockerfile). A code change
  rebuilds only this thin layer, in seconds.

On top of it, only when a run asks for them (`ensure_run_image`), the run's own layers:

- `leader-harness-servers:<key>`: FROM the node image, the server packages the run's
  target declared (harness.image.servers): trees under /opt/servers/<name>/, and
  packages whose dependencies apt resolved on the host `dpkg -i`-installed
  (key: node key, each package's pins and mode, this Dockerfile).
- `leader-harness-reqs:<key>`: FROM the layer below, the run's `workload.requirements`
  installed from wheels downloaded on the host into `IMAGE_REQUIREMENTS`
  (key: parent key, the requirement specifiers, the wheels' target, this Dockerfile).

A target without server packages and a run without requirements use the node image as
it is. A second run with the same inputs finds every layer and builds nothing.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import rootfs, wheels
from harness.image.errors import ImageError, Progress, report
from harness.image.servers import (
    DEFAULT_CACHE,
    IMAGE_SERVERS_ROOT,
    ServerPackage,
    ensure_servers,
    resolve_debs,
)

IMAGE_PYTHON = "/opt/harness/bin/python"
IMAGE_VENV = "/opt/harness"
ROOTFS_REPO = "leader-harness-rootfs"
BASE_REPO = "leader-harness-base"
NODE_REPO = "leader-harness-node"
SERVERS_REPO = "leader-harness-servers"
REQS_REPO = "leader-harness-reqs"
STACK_REPOS = (ROOTFS_REPO, BASE_REPO, NODE_REPO)
RUN_REPOS = (SERVERS_REPO, REQS_REPO)
# Where a run's workload.requirements are importable in its image (PYTHONPATH).
IMAGE_REQUIREMENTS = "/opt/program-requirements"
LABEL_PREFIX = "org.leader-harness"
LABEL_INPUTS = f"{LABEL_PREFIX}.inputs"
LABEL_LAYER = f"{LABEL_PREFIX}.layer"
KEY_LENGTH = 16

_PIP_OFFLINE = "--no-index --no-cache-dir --disable-pip-version-check"

BASE_DOCKERFILE = f"""\
FROM {{parent}}
COPY wheels/ /tmp/wheels/
RUN python3 -m venv {IMAGE_VENV} \\
 && {IMAGE_PYTHON} -m pip install {_PIP_OFFLINE} --find-links /tmp/wheels \\
      -r /tmp/wheels/requirements.txt \\
 && rm -rf /tmp/wheels
"""

NODE_DOCKERFILE = f"""\
FROM {{parent}}
COPY {{wheel}} /tmp/
RUN {IMAGE_PYTHON} -m pip install {_PIP_OFFLINE} /tmp/{{wheel}} \\
 && rm /tmp/{{wheel}} \\
 && {IMAGE_PYTHON} -c "import harness, harness.workloads, harness.nemesis, harness.reports"
"""


# The servers layer: trees copied, installed packages dpkg -i'd (every dependency is in
# the context: no network), then each server's version command must succeed.
SERVERS_TREES_STEP = f"COPY servers/ {IMAGE_SERVERS_ROOT}/\n"
SERVERS_DEBS_STEP = (
    "COPY debs/ /tmp/debs/\n"
    "RUN DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs\n"
)
SERVERS_RECIPE = 1  # bump when the steps above change meaning

REQS_DOCKERFILE = f"""\
FROM {{parent}}
COPY wheels/ /tmp/reqwheels/
RUN {IMAGE_PYTHON} -m pip install {_PIP_OFFLINE} --no-compile --find-links /tmp/reqwheels \\
      --target {IMAGE_REQUIREMENTS} -r /tmp/reqwheels/requirements.txt \\
 && rm -rf /tmp/reqwheels
"""


def server_checks(packages: Sequence[ServerPackage]) -> str:
    """Shell run at the end of the servers layer: every server's version command works
    in the image (a missing library or dependency fails the build, not a run)."""
    checks = []
    for server in packages:
        if server.version_command:
            program, *args = server.version_command
            checks.append(" ".join([server.image_program(program), *args, ">/dev/null"]))
    return " && ".join(checks) or "true"


def servers_dockerfile(parent: str, packages: Sequence[ServerPackage]) -> str:
    steps = [f"FROM {parent}\n"]
    if any(not p.resolve_deps for p in packages):
        steps.append(SERVERS_TREES_STEP)
    if any(p.resolve_deps for p in packages):
        steps.append(SERVERS_DEBS_STEP)
    steps.append(f"RUN {server_checks(packages)}\n")
    return "".join(steps)


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
                "wheels": pins,
                "wheel_target": list(wheels.TARGET_PIP_ARGS),
                "dockerfile": BASE_DOCKERFILE,
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


def _docker_build(
    client: Any, context: Path, layer: Layer, progress: Progress, nocache: bool = False
) -> None:
    """docker build of `context` tagged `layer.ref`: no pull, no network in RUN steps;
    `nocache` ignores docker's own build cache (a forced rebuild really rebuilds)."""
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
            nocache=nocache,
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
    house = wheels.ensure_wheelhouse(cache_dir, p.pins, progress, force=force)
    with _context_dir(cache_dir) as ctx:
        shutil.copytree(house, ctx / "wheels", copy_function=_link)
        dockerfile = BASE_DOCKERFILE.format(parent=p.rootfs.ref)
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


# -- a run's own layers ----------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """The node image and, above it, the run's servers and requirements layers (each
    None when the run needs none); `image` is what the run's containers start from."""

    node: Plan
    servers: Layer | None
    reqs: Layer | None
    packages: tuple[ServerPackage, ...]
    requirements: tuple[str, ...]

    @property
    def image(self) -> str:
        top = self.reqs or self.servers or self.node.node
        return top.ref

    @property
    def layers(self) -> list[Layer]:
        return [layer for layer in (self.servers, self.reqs) if layer is not None]


def run_plan(
    packages: Sequence[ServerPackage] = (),
    requirements: Sequence[str] = (),
    root: Path = wheels.PROJECT_ROOT,
) -> RunPlan:
    """The run image's layers, computed from the inputs alone (no docker, no network)."""
    node = plan(root)
    chosen = tuple(sorted({p.name: p for p in packages}.values(), key=lambda p: p.name))
    for package in chosen:
        package.check()
    parent = node.node
    servers_layer = None
    if chosen:
        servers_layer = Layer(
            SERVERS_REPO,
            _digest(
                {
                    "node": parent.inputs_hash,
                    "packages": [p.inputs() for p in chosen],
                    "dockerfile": servers_dockerfile("{parent}", chosen),
                    "recipe": SERVERS_RECIPE,
                }
            ),
            parent.ref,
        )
        parent = servers_layer
    reqs = tuple(sorted(dict.fromkeys(requirements)))
    reqs_layer = None
    if reqs:
        reqs_layer = Layer(
            REQS_REPO,
            _digest(
                {
                    "parent": parent.inputs_hash,
                    "requirements": list(reqs),
                    "wheel_target": list(wheels.TARGET_PIP_ARGS),
                    "dockerfile": REQS_DOCKERFILE,
                }
            ),
            parent.ref,
        )
    return RunPlan(node, servers_layer, reqs_layer, chosen, reqs)


def ensure_run_image(
    packages: Sequence[ServerPackage] = (),
    requirements: Sequence[str] = (),
    progress: Progress = None,
    cache_dir: Path = DEFAULT_CACHE,
    force: bool = False,
) -> str:
    """The image a run's containers start from: the node image plus the run's servers and
    requirements layers, building only what is missing (a second run builds nothing).
    `force` rebuilds the run's layers, bypassing docker's build cache (the host's
    download caches stay)."""
    started = time.monotonic()
    rp = run_plan(packages, requirements)
    if not rp.layers:
        return ensure_image(progress, cache_dir=cache_dir)
    client = docker_client()
    if not force and all(image_exists(client, layer) for layer in rp.layers):
        report(progress, f"run image {rp.image} is current")
        return rp.image
    ensure_image(progress, cache_dir=cache_dir)
    with _build_lock(cache_dir, progress):
        if rp.servers is not None and (force or not image_exists(client, rp.servers)):
            _build_servers(client, rp, rp.servers, cache_dir, progress, force)
        if rp.reqs is not None and (force or not image_exists(client, rp.reqs)):
            _build_reqs(client, rp.reqs, rp.requirements, cache_dir, progress, force)
    report(progress, f"run image {rp.image} ready in {time.monotonic() - started:.1f} s")
    return rp.image


def image_file(client: Any, image: str, path: str) -> bytes:
    """One file's bytes from an image (a container is created, read and removed; it
    never starts)."""
    import io
    import tarfile

    container = client.containers.create(image, command=["true"])
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise ImageError(f"{image}: {path} is not a file")
            return handle.read()
    finally:
        container.remove(force=True)


def _build_servers(
    client: Any, rp: RunPlan, layer: Layer, cache_dir: Path, progress: Progress, force: bool
) -> None:
    trees = [p for p in rp.packages if not p.resolve_deps]
    installed = [p for p in rp.packages if p.resolve_deps]
    roots = ensure_servers(cache_dir, progress, packages=trees) if trees else {}
    debs: list[Path] = []
    if installed:
        # apt resolves against what the node image already has: its own dpkg status.
        status = image_file(client, rp.node.node.ref, "/var/lib/dpkg/status")
        for package in installed:
            debs += resolve_debs(package, status, cache_dir, progress)
    with _context_dir(cache_dir) as ctx:
        for name, tree in roots.items():
            shutil.copytree(tree, ctx / "servers" / name, symlinks=True, copy_function=_link)
        if debs:
            (ctx / "debs").mkdir()
            for deb in debs:
                if not (ctx / "debs" / deb.name).exists():
                    _link(str(deb), str(ctx / "debs" / deb.name))
        dockerfile = servers_dockerfile(rp.node.node.ref, rp.packages)
        (ctx / "Dockerfile").write_text(_labelled(dockerfile, layer))
        _docker_build(client, ctx, layer, progress, nocache=force)


def _build_reqs(
    client: Any,
    layer: Layer,
    requirements: Sequence[str],
    cache_dir: Path,
    progress: Progress,
    force: bool,
) -> None:
    house = wheels.ensure_requirement_wheels(cache_dir, requirements, progress)
    with _context_dir(cache_dir) as ctx:
        shutil.copytree(house, ctx / "wheels", copy_function=_link)
        dockerfile = REQS_DOCKERFILE.format(parent=layer.parent)
        (ctx / "Dockerfile").write_text(_labelled(dockerfile, layer))
        _docker_build(client, ctx, layer, progress, nocache=force)


# -- show and prune -------------------------------------------------------------------------


def _run_layers(client: Any) -> list[tuple[str, str, str]]:
    """(tag, layer kind, parent ref) of every run layer (servers, reqs) docker has."""
    out = []
    for image in client.images.list(filters={"label": LABEL_LAYER}):
        labels = image.labels or {}
        for tag in image.tags:
            if tag.split(":", 1)[0] in RUN_REPOS:
                out.append(
                    (tag, labels.get(LABEL_LAYER, ""), labels.get(f"{LABEL_PREFIX}.parent", ""))
                )
    return sorted(out)


def current_refs(client: Any, p: Plan) -> set[str]:
    """The node stack's current references, and every run layer built on it (directly or
    on another current run layer): what `prune` keeps."""
    current = {p.rootfs.ref, p.base.ref, p.node.ref}
    layers = _run_layers(client)
    grew = True
    while grew:
        grew = False
        for tag, _, parent in layers:
            if parent in current and tag not in current:
                current.add(tag)
                grew = True
    return current


def image_status() -> dict[str, Any]:
    """Each layer's expected reference and whether docker has it (for `harness image
    show`), then the run layers built on the current node image."""
    p = plan()
    client = docker_client()
    status: dict[str, Any] = {
        layer.repo: {"ref": layer.ref, "exists": image_exists(client, layer)}
        for layer in (p.rootfs, p.base, p.node)
    }
    current = current_refs(client, p)
    status["run_layers"] = [
        {"ref": tag, "layer": kind, "parent": parent}
        for tag, kind, parent in _run_layers(client)
        if tag in current
    ]
    return status


def prune_images(client: Any | None = None) -> tuple[list[str], list[str]]:
    """Remove the tags of this project's image layers that the current inputs no longer
    name (every code change leaves a node layer, and its run layers, behind). Returns
    (removed, kept back with the reason); an image a container still uses is kept by
    docker itself."""
    from docker.errors import APIError

    p = plan()
    client = client or docker_client()
    current = current_refs(client, p)
    removed: list[str] = []
    kept: list[str] = []
    # Run layers first: they are the children of the stack's layers.
    images = client.images.list(filters={"label": LABEL_LAYER})
    tags = [
        t
        for image in images
        for t in image.tags
        if t.split(":", 1)[0] in (*RUN_REPOS, *STACK_REPOS)
    ]
    order = {
        repo: i
        for i, repo in enumerate((REQS_REPO, SERVERS_REPO, NODE_REPO, BASE_REPO, ROOTFS_REPO))
    }
    for tag in sorted(tags, key=lambda t: order[t.split(":", 1)[0]]):
        if tag in current:
            continue
        try:
            client.images.remove(tag)
            removed.append(tag)
        except APIError as exc:
            kept.append(f"{tag}: {exc.explanation or exc}")
    return removed, kept
