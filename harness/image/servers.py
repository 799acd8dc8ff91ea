"""Server packages: a server as Debian packages pinned to exact versions, declared by a target.

A `ServerPackage` names a server ("etcd-3.5.16"): the suite it comes from, its packages
at exact versions, the programs it provides (paths relative to its root), its version
command, and whether its Debian dependencies must be resolved (`resolve_deps`). A target
declares the packages it may use (`Target.server_packages`); `SERVERS` holds the
built-in targets' ones ("etcd-3.5.16", "etcd-3.4.23", "consul-1.8.7").

Two ways onto a node:

- A package without dependencies (the three above: Go programs linked only against
  glibc, checked with `ldd` when the pins were chosen) is a *tree*: `ensure_servers`
  fetches its .debs through a private, signature-checked apt configuration and `dpkg -x`
  unpacks them into `<cache>/servers/<name>/` on the host (`dpkg -x` resolves no
  dependencies). Every backend that offers "server-trees" can use it: the local backend
  runs it from the host's tree, ssh uploads it, docker copies it to `/opt/servers/<name>/`
  in the run's server layer.
- A package with `resolve_deps` (a JVM server needing a JRE) is *installed*:
  `resolve_debs` lets apt resolve the pinned packages plus every dependency the node
  image lacks (the image's own dpkg status is apt's status), downloads that set through
  the same signed configuration, and the docker backend `dpkg -i`s it in the layer
  (programs then sit at their absolute paths, root "/"). Only backends offering
  "server-deps" (docker) can run it; the others refuse the target before a run starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.image import rootfs
from harness.image.apt import PrivateApt
from harness.image.errors import ImageError, Progress, report

DEFAULT_CACHE = Path("/var/cache/leader-harness")
IMAGE_SERVERS_ROOT = "/opt/servers"


@dataclass(frozen=True)
class ServerPackage:
    """One server: Debian packages at exact versions from one suite, the programs it
    provides (relative to its root), and whether apt must resolve its dependencies."""

    name: str
    system: str
    version: str
    suite: str
    packages: tuple[tuple[str, str], ...]
    programs: dict[str, str] = field(hash=False)
    version_command: tuple[str, ...] = ()
    resolve_deps: bool = False

    def pins(self) -> list[str]:
        return [f"{pkg}={ver}" for pkg, ver in self.packages]

    def inputs(self) -> dict[str, object]:
        """What this package contributes to a cache key (names, suite, exact pins, mode)."""
        return {
            "name": self.name,
            "suite": self.suite,
            "packages": [list(p) for p in self.packages],
            "programs": dict(sorted(self.programs.items())),
            "version_command": list(self.version_command),
            "resolve_deps": self.resolve_deps,
        }

    @property
    def image_root(self) -> str:
        """Where the package's programs are rooted in a docker image: its unpacked tree
        under /opt/servers, or "/" for an installed package."""
        return "/" if self.resolve_deps else f"{IMAGE_SERVERS_ROOT}/{self.name}"

    def image_program(self, program: str) -> str:
        rel = self.programs[program]
        return f"{self.image_root.rstrip('/')}/{rel}"

    def check(self) -> None:
        """Refuse a declaration that cannot work (ServerPackageError says what)."""
        if not _NAME_RE.fullmatch(self.name):
            raise ServerPackageError(
                f"server package {self.name!r}: the name must be letters, digits, '.', '-', '_'"
            )
        if not self.packages:
            raise ServerPackageError(f"server package {self.name!r}: no Debian packages")
        for pkg, ver in self.packages:
            if not _DEB_RE.fullmatch(pkg) or not _VERSION_RE.fullmatch(ver):
                raise ServerPackageError(
                    f"server package {self.name!r}: {pkg}={ver} is not a Debian package at "
                    "an exact version"
                )
        for program, rel in self.programs.items():
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise ServerPackageError(
                    f"server package {self.name!r}: program {program} at {rel!r} must be a "
                    "path relative to the package's root"
                )
        if self.version_command and self.version_command[0] not in self.programs:
            raise ServerPackageError(
                f"server package {self.name!r}: version command {self.version_command[0]!r} "
                f"is none of its programs ({', '.join(self.programs)})"
            )
        if self.resolve_deps and self.suite != rootfs.SUITE:
            raise ServerPackageError(
                f"server package {self.name!r}: packages whose dependencies are resolved "
                f"must come from the node image's suite ({rootfs.SUITE}), not {self.suite}: "
                "apt would mix another release's libraries into the image"
            )


class ServerPackageError(ImageError, ValueError):
    """A server package declaration that cannot work; the message names it."""


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DEB_RE = re.compile(r"[a-z0-9][a-z0-9.+-]+")
_VERSION_RE = re.compile(r"[0-9A-Za-z.+~:-]+")


SERVERS: dict[str, ServerPackage] = {
    server.name: server
    for server in (
        ServerPackage(
            name="etcd-3.5.16",
            system="etcd",
            version="3.5.16",
            suite="trixie",
            packages=(("etcd-server", "3.5.16-4"), ("etcd-client", "3.5.16-4")),
            programs={
                "etcd": "usr/bin/etcd",
                "etcdctl": "usr/bin/etcdctl",
                "etcdutl": "usr/bin/etcdutl",
            },
            version_command=("etcd", "--version"),
        ),
        ServerPackage(
            name="etcd-3.4.23",
            system="etcd",
            version="3.4.23",
            suite="bookworm",
            packages=(("etcd-server", "3.4.23-4+b4"), ("etcd-client", "3.4.23-4+b4")),
            programs={"etcd": "usr/bin/etcd", "etcdctl": "usr/bin/etcdctl"},
            version_command=("etcd", "--version"),
        ),
        ServerPackage(
            name="consul-1.8.7",
            system="consul",
            version="1.8.7",
            suite="bullseye",
            packages=(("consul", "1.8.7+dfsg1-2+b3"),),
            programs={"consul": "usr/bin/consul"},
            version_command=("consul", "version"),
        ),
    )
}

DEFAULT_ETCD = "etcd-3.5.16"
DEFAULT_CONSUL = "consul-1.8.7"


def server_program(name: str, program: str) -> str:
    """A program's path inside the server tree, e.g. ("etcd-3.5.16", "etcd") -> usr/bin/etcd."""
    try:
        server = SERVERS[name]
    except KeyError:
        raise KeyError(f"unknown server {name!r}; known: {', '.join(SERVERS)}") from None
    try:
        return server.programs[program]
    except KeyError:
        raise KeyError(
            f"server {name!r} has no program {program!r}; it has {', '.join(server.programs)}"
        ) from None


def image_program(name: str, program: str) -> str:
    """A program's absolute path inside the node image: /opt/servers/<name>/usr/bin/..."""
    return f"{IMAGE_SERVERS_ROOT}/{name}/{server_program(name, program)}"


def _marker(tree: Path) -> Path:
    return tree.with_name(tree.name + ".complete.json")


def _is_complete(server: ServerPackage, tree: Path) -> bool:
    try:
        recorded = json.loads(_marker(tree).read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("packages") != server.pins():
        return False
    return all((tree / rel).is_file() for rel in server.programs.values())


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def ensure_servers(
    cache_dir: Path = DEFAULT_CACHE,
    progress: Progress = None,
    force: bool = False,
    packages: Sequence[ServerPackage] | None = None,
) -> dict[str, Path]:
    """Download (verified) and unpack `packages` (default: the built-in `SERVERS`) into
    `<cache_dir>/servers/<name>/`.

    Trees already unpacked from the same pins are kept. Returns each package's root.
    A package that needs its dependencies resolved is no tree: refused here."""
    wanted = list(SERVERS.values() if packages is None else packages)
    for server in wanted:
        server.check()
        if server.resolve_deps:
            raise ServerPackageError(
                f"server package {server.name!r} needs its Debian dependencies installed; "
                "an unpacked tree (dpkg -x) would lack them"
            )
    base = Path(cache_dir) / "servers"
    base.mkdir(parents=True, exist_ok=True)
    roots = {s.name: base / s.name for s in wanted}
    missing = [s for s in wanted if force or not _is_complete(s, roots[s.name])]
    if not missing:
        report(progress, "servers: cached (" + ", ".join(roots) + ")")
        return roots

    apt = PrivateApt(Path(cache_dir) / "apt", [s.suite for s in missing])
    report(progress, f"apt-get update ({', '.join(apt.suites)}) with a private, signed config")
    apt.update()
    debs_dir = Path(cache_dir) / "debs"
    for server in missing:
        tree = roots[server.name]
        staging = Path(tempfile.mkdtemp(prefix=f".{server.name}.", dir=base))
        try:
            for package, version in server.packages:
                report(progress, f"fetching {package} {version} ({server.suite})")
                deb = apt.download(package, version, debs_dir)
                report(progress, f"unpacking {deb.name}")
                _dpkg_x(deb, staging)
            for program, rel in server.programs.items():
                if not (staging / rel).is_file():
                    raise ImageError(f"{server.name}: {program} not found at {rel} in the .debs")
            _marker(tree).unlink(missing_ok=True)
            _remove_tree(tree)
            os.chmod(staging, 0o755)
            staging.rename(tree)
            _marker(tree).write_text(json.dumps({"packages": server.pins()}) + "\n")
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    return roots


def resolve_debs(
    server: ServerPackage,
    dpkg_status: bytes,
    cache_dir: Path = DEFAULT_CACHE,
    progress: Progress = None,
) -> list[Path]:
    """The .debs that install `server` on an image whose dpkg status is `dpkg_status`:
    its pinned packages plus every dependency the image lacks, resolved by apt and
    downloaded (each checked against the signed index) into a cache of its own.

    apt's state is private (harness.image.apt): the image's status file stands in for
    an installed system, so apt plans exactly what `dpkg -i` will need there."""
    server.check()
    key = hashlib.sha256(
        json.dumps({"server": server.inputs(), "status": _digest(dpkg_status)}).encode()
    ).hexdigest()[:16]
    root = Path(cache_dir) / "resolved" / f"{server.name}-{key}"
    listing = root / "debs.json"
    try:
        names = json.loads(listing.read_text())
        debs = [root / name for name in names]
        if all(d.is_file() for d in debs):
            report(progress, f"{server.name}: resolved set cached ({len(debs)} .debs)")
            return debs
    except (OSError, ValueError):
        pass
    apt = PrivateApt(Path(cache_dir) / "apt-resolve" / server.suite, [server.suite])
    report(progress, f"apt-get update ({server.suite}) with a private, signed config")
    apt.update()
    apt.status_file.write_bytes(dpkg_status)
    staging = Path(tempfile.mkdtemp(prefix=f".{server.name}.", dir=_mkdir(root.parent)))
    try:
        report(progress, f"resolving {' '.join(server.pins())} against the node image")
        debs = apt.download_with_dependencies(server.pins(), staging)
        got = {d.name.split("_", 1)[0] for d in debs}
        if missing := [p for p, _ in server.packages if p not in got]:
            raise ImageError(f"{server.name}: apt resolved no .deb for {', '.join(missing)}")
        (staging / "debs.json").write_text(json.dumps(sorted(d.name for d in debs)) + "\n")
        _remove_tree(root)
        staging.rename(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    report(progress, f"{server.name}: {len(debs)} .debs with dependencies")
    return [root / d.name for d in debs]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dpkg_x(deb: Path, dest: Path) -> None:
    try:
        done = subprocess.run(
            ["dpkg", "-x", str(deb), str(dest)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ImageError("dpkg not found: this needs a Debian machine") from None
    if done.returncode != 0:
        raise ImageError(f"dpkg -x {deb.name} failed: {done.stderr.strip()}")
