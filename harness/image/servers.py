"""The election servers the node image carries, pinned to exact Debian package versions.

`SERVERS` names each server tree ("etcd-3.5.16", "etcd-3.4.23", "consul-1.8.7"): the suite
it comes from, its packages at exact versions, and the programs it provides (paths relative
to the tree). `ensure_servers` fetches the .debs through a private, signature-checked apt
configuration and `dpkg -x`-unpacks each server into `<cache>/servers/<name>/` on the host,
skipping trees already complete. In the image each tree sits at `/opt/servers/<name>/`.

All three are Go programs linked only against glibc; each runs on bookworm (checked with
`ldd` and `--version` / `version` when the pins were chosen).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.image.apt import PrivateApt
from harness.image.errors import ImageError, Progress, report

DEFAULT_CACHE = Path("/var/cache/leader-harness")
IMAGE_SERVERS_ROOT = "/opt/servers"


@dataclass(frozen=True)
class ServerPackage:
    """One server tree: Debian packages at exact versions from one suite."""

    name: str
    system: str
    version: str
    suite: str
    packages: tuple[tuple[str, str], ...]
    programs: dict[str, str] = field(hash=False)
    version_command: tuple[str, ...] = ()

    def pins(self) -> list[str]:
        return [f"{pkg}={ver}" for pkg, ver in self.packages]


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


def servers_inputs() -> list[dict[str, object]]:
    """What the servers contribute to the image's cache key (names, suites, exact pins)."""
    return [
        {"name": s.name, "suite": s.suite, "packages": [list(p) for p in s.packages]}
        for s in SERVERS.values()
    ]


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
    cache_dir: Path = DEFAULT_CACHE, progress: Progress = None, force: bool = False
) -> dict[str, Path]:
    """Download (verified) and unpack every server into `<cache_dir>/servers/<name>/`.

    Trees already unpacked from the same pins are kept. Returns each server's root.
    """
    base = Path(cache_dir) / "servers"
    base.mkdir(parents=True, exist_ok=True)
    roots = {name: base / name for name in SERVERS}
    missing = [s for s in SERVERS.values() if force or not _is_complete(s, roots[s.name])]
    if not missing:
        report(progress, "servers: cached (" + ", ".join(SERVERS) + ")")
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


def _dpkg_x(deb: Path, dest: Path) -> None:
    try:
        done = subprocess.run(
            ["dpkg", "-x", str(deb), str(dest)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ImageError("dpkg not found: this needs a Debian machine") from None
    if done.returncode != 0:
        raise ImageError(f"dpkg -x {deb.name} failed: {done.stderr.strip()}")
