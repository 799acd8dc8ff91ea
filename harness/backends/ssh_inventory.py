"""The ssh backend's inventory (hosts.yaml): which hosts, how to reach them, their test
addresses. Every mistake is one `InventoryError` line naming the file and the key
(`nodes[1].address`), read through harness.validation like every configuration.

    user: root                       # or a user with passwordless sudo
    key: ~/.ssh/id_ed25519           # private key file (no passphrase)
    known_hosts: ~/.ssh/known_hosts  # host keys are verified against it
    watchdog_s: 15                   # dead man's switch: heal a host after N s of silence
    remote_dir: /var/lib/leader-harness
    nodes:
      - {name: n1, ssh: 192.0.2.11, address: 10.0.0.11}      # ssh: how the harness reaches it
      - {name: n2, ssh: 192.0.2.12, port: 2222, address: 10.0.0.12}  # address: test network

Paths are relative to the inventory file; `~` is the user's home. A run configuration
may carry the same mapping inline (`backend: {kind: ssh, hosts: {...}}`), its paths
relative to the run configuration.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import BackendError
from harness.errors import ConfigError
from harness.validation import Reader
from harness.yamlio import load_yaml

TOP_KEYS = ("user", "key", "known_hosts", "watchdog_s", "remote_dir", "nodes")
NODE_KEYS = ("name", "ssh", "port", "address")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
REMOTE_DIR = re.compile(r"^/[A-Za-z0-9._/-]+$")
DEFAULT_WATCHDOG_S = 15.0
DEFAULT_REMOTE_DIR = "/var/lib/leader-harness"


class InventoryError(BackendError, ConfigError):
    """A bad inventory: exit status 2, one line naming file, key and what was expected."""


@dataclass(frozen=True)
class HostEntry:
    name: str
    ssh: str  # host name or address the harness connects to
    port: int
    address: str  # the node's address on the test network


@dataclass(frozen=True)
class Inventory:
    source: str
    user: str
    key: Path
    known_hosts: Path
    watchdog_s: float
    remote_dir: str
    nodes: tuple[HostEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        """The inventory as it would be written (paths absolute): parses back to itself."""
        return {
            "user": self.user,
            "key": str(self.key),
            "known_hosts": str(self.known_hosts),
            "watchdog_s": self.watchdog_s,
            "remote_dir": self.remote_dir,
            "nodes": [
                {"name": n.name, "ssh": n.ssh, "port": n.port, "address": n.address}
                for n in self.nodes
            ],
        }


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def parse_inventory(data: Any, source: str, base: Path, prefix: str = "") -> Inventory:
    """Validate an inventory mapping; `base` resolves relative paths. `prefix` is the key
    path of an inventory given inline ("backend.hosts." in a run configuration)."""
    r = Reader(
        data, source, prefix, error=InventoryError,
        expected="a mapping with keys " + ", ".join(TOP_KEYS),
    )  # fmt: skip
    r.only(TOP_KEYS)
    user = r.get("user", "root")
    if not isinstance(user, str) or not USER.match(user):
        raise r.fail("user", "a user name", user)
    paths: dict[str, Path] = {}
    for k in ("key", "known_hosts"):
        if k not in r:
            raise r.problem(k, "missing (a file path is required)")
        v = r.get(k)
        if not isinstance(v, str) or not v:
            raise r.fail(k, "a file path", v)
        p = _path(base, v)
        if not p.is_file():
            raise r.fail(k, "an existing file", str(p))
        paths[k] = p
    watchdog = r.number("watchdog_s", DEFAULT_WATCHDOG_S, 2, 600)
    remote_dir = r.get("remote_dir", DEFAULT_REMOTE_DIR)
    if not isinstance(remote_dir, str) or not REMOTE_DIR.match(remote_dir) or ".." in remote_dir:
        raise r.fail("remote_dir", "an absolute path of letters, digits, . _ - /", remote_dir)
    raw_nodes = r.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise r.fail("nodes", "a non-empty list of {name, ssh, address[, port]}", raw_nodes)
    nodes: list[HostEntry] = []
    seen: dict[str, set[str]] = {"name": set(), "address": set(), "ssh": set()}
    for i, raw in enumerate(raw_nodes):
        n = Reader(
            raw, source, f"{r.prefix}nodes[{i}].", error=InventoryError,
            expected="a mapping with keys " + ", ".join(NODE_KEYS),
        )  # fmt: skip
        n.only(NODE_KEYS)
        for k in ("name", "ssh", "address"):
            if k not in n:
                raise n.problem(k, "missing")
        name = n.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise n.fail("name", "a name like n1 (a-z, 0-9, -; 16 at most)", name)
        ssh = n.get("ssh")
        if not isinstance(ssh, str) or not re.match(r"^[A-Za-z0-9.:_-]+$", ssh):
            raise n.fail("ssh", "a host name or IP address", ssh)
        port = n.integer("port", 22, 1, 65535)
        address = n.get("address")
        try:
            ip = ipaddress.ip_address(address if isinstance(address, str) else "")
        except ValueError:
            raise n.fail("address", "an IP address", address) from None
        if ip.version != 4 or ip.is_loopback or ip.is_unspecified or ip.is_multicast:
            raise n.fail("address", "a unicast IPv4 address of the test network", address)
        for k, v in (("name", name), ("address", address), ("ssh", f"{ssh}:{port}")):
            if v in seen[k]:
                raise n.fail(k, "a value no other node has", v)
            seen[k].add(v)
        nodes.append(HostEntry(name, ssh, port, address))
    return Inventory(
        source=source,
        user=user,
        key=paths["key"],
        known_hosts=paths["known_hosts"],
        watchdog_s=float(watchdog),
        remote_dir=remote_dir.rstrip("/") or "/",
        nodes=tuple(nodes),
    )


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file (bounded, like every YAML the harness reads)."""
    p = Path(path)
    try:
        data = load_yaml(p, "inventory")
    except InventoryError:
        raise
    except ConfigError as exc:
        raise InventoryError(str(exc)) from None
    return parse_inventory(data, str(p), p.resolve().parent)
