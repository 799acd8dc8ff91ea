"""Real etcd and Consul servers on loopback for the election clients' tests.

Binaries come from `harness.image.servers.ensure_servers()` (pinned Debian packages,
unpacked under /var/cache/leader-harness); a test skips only when they cannot be had.
Each server runs as one process this module started, on free ports of 127.0.0.1, with
its data under the test's tmp_path, and `stop()` kills exactly that process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_root(name: str) -> Path:
    """The unpacked tree of server `name` ("etcd-3.5.16", ...), or skip saying why."""
    try:
        from harness.image.errors import ImageError
        from harness.image.servers import ensure_servers
    except ImportError as exc:
        pytest.skip(f"harness.image.servers is not available: {exc}")
    try:
        roots = ensure_servers()
    except ImageError as exc:
        pytest.skip(f"server binaries could not be fetched: {exc}")
    return roots[name]


@dataclass
class Server:
    """One server process and where to reach it."""

    name: str
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Kill the process (no graceful shutdown needed: its data is throwaway)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def wait_ready(self, probe: str, timeout_s: float = 20.0) -> None:
        """Poll `probe` (a GET path) until it answers 200 with a non-empty leader."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                response = httpx.get(self.endpoint + probe, timeout=1.0)
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code == 200 and response.text.strip() not in ("", '""'):
                    return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not come up ({last}); log tail:\n{tail}")


def start_etcd(version: str, data_dir: Path) -> Server:
    """A one-member etcd cluster on loopback, ready to serve."""
    etcd = server_root(f"etcd-{version}") / "usr/bin/etcd"
    client, peer = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "etcd.log"
    args = [
        str(etcd),
        "--name=m1",
        f"--data-dir={data_dir / 'data'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=m1=http://127.0.0.1:{peer}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"etcd {version}", f"http://127.0.0.1:{client}", process, log)
    server.wait_ready("/health")
    return server


def start_consul(data_dir: Path, session_ttl_min: str = "1s") -> Server:
    """A one-server Consul 1.8.7 in -dev mode on loopback, ready to serve. A low
    `session_ttl_min` lets one test use a short session TTL instead of 10 s."""
    consul = server_root("consul-1.8.7") / "usr/bin/consul"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "ports": {
            "http": free_port(),
            "dns": -1,
            "grpc": -1,
            "serf_lan": free_port(),
            "serf_wan": free_port(),
            "server": free_port(),
        },
        "bind_addr": "127.0.0.1",
        "client_addr": "127.0.0.1",
        "disable_update_check": True,
        "session_ttl_min": session_ttl_min,
    }
    config_file = data_dir / "consul.json"
    config_file.write_text(json.dumps(config))
    log = data_dir / "consul.log"
    args = [str(consul), "agent", "-dev", f"-config-file={config_file}"]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = Server("consul 1.8.7", f"http://127.0.0.1:{config['ports']['http']}", process, log)
    server.wait_ready("/v1/status/leader")
    return server
