"""Test hosts for the ssh backend: containers from the node image's root filesystem
(Debian bookworm with openssh-server, python3, iptables) running sshd.

`sshd_hosts(tmp, n)` starts `n` containers on a Docker network of its own (a free /24 of
the guarded 10.213.0.0/16, picked like the docker backend's), each with a host key made
for it, an authorized key made for the test, and writes `keys/known_hosts` and an
inventory (`hosts.yaml`) pointing at them. The containers keep Docker's default
capabilities plus NET_ADMIN (sshd needs setuid and chroot; partitions need iptables).
Everything is labelled like the docker backend's objects, so a crashed test's leftovers
are removed by the next run's leftover cleaning; normally the context manager removes them.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.backends import docker as dk
from harness.backends import netns as nx

SSHD = (
    "mkdir -p /run/sshd /root/.ssh && cp /keys/authorized_keys /root/.ssh/authorized_keys "
    "&& chmod 700 /root/.ssh && chmod 600 /root/.ssh/authorized_keys "
    "&& cp /keys/host_key /etc/ssh/lh_host_key && chmod 600 /etc/ssh/lh_host_key "
    "&& exec /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/lh_host_key "
    "-o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o UsePAM=no"
)


def new_key() -> tuple[bytes, str]:
    """(OpenSSH private key, public key line) of a fresh ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


@dataclass
class SshdHosts:
    inventory: Path
    known_hosts: Path
    addresses: dict[str, str]  # node name -> container address
    containers: dict[str, str]  # node name -> container id
    gateway: str
    client: Any = field(repr=False)

    def exec(self, name: str, script: str) -> tuple[int, str]:
        """Run `script` in the host container directly (not over SSH): for inspection."""
        out = self.client.containers.get(self.containers[name]).exec_run(
            ["sh", "-c", script], environment=dk.NODE_ENV
        )
        return out.exit_code, out.output.decode(errors="replace")

    def wait_healed(self, name: str, run_id: str, timeout: float) -> float | None:
        """Block until the host has no chain and no process of the run; the wall-clock
        time (the container's clock is this machine's) when it saw that, or None."""
        script = (
            f"end=$(( $(date +%s) + {int(timeout) + 1} ))\n"
            "while [ $(date +%s) -le $end ]; do\n"
            "  busy=0\n"
            f"  iptables -w -S 2>/dev/null | grep -q 'LH-{run_id}' && busy=1\n"
            # (the watchdog itself carries LH_RUN too: it ends after removing the files)
            "  for e in /proc/[0-9]*/environ; do\n"
            '    grep -q watchdog.py "${e%environ}cmdline" 2>/dev/null && continue\n'
            "    tr '\\0' '\\n' <$e 2>/dev/null "
            f"| grep -qx 'LH_RUN={run_id}' && busy=1\n"
            "  done\n"
            "  [ $busy = 0 ] && { date +%s.%N; exit 0; }\n"
            "  sleep 0.05\n"
            "done\n"
            "exit 1\n"
        )
        code, out = self.exec(name, script)
        return float(out.strip().splitlines()[-1]) if code == 0 else None

    def leftovers(self, name: str, run_id: str) -> list[str]:
        """What a run left on a host: its directory, chains, processes (empty: clean)."""
        found = []
        code, out = self.exec(name, f"ls -d /var/lib/leader-harness/runs/{run_id} 2>/dev/null")
        if code == 0 and out.strip():
            found.append(f"directory {out.strip()}")
        _, out = self.exec(name, "iptables -w -S 2>/dev/null | grep -i 'LH-' || true")
        found += [f"rule {line}" for line in out.splitlines() if line.strip()]
        _, out = self.exec(
            name,
            "for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' <$e 2>/dev/null "
            f"| grep -qx 'LH_RUN={run_id}' && echo $e; done; true",
        )
        found += [f"process {line}" for line in out.splitlines() if line.strip()]
        return found


@contextlib.contextmanager
def sshd_hosts(tmp: Path, count: int = 3, **inventory_extra: Any) -> Iterator[SshdHosts]:
    from harness.image.build import ensure_image, image_exists, plan

    client = dk.docker_client()
    # The node image's root filesystem layer has everything a host needs (sshd, python3,
    # iptables, iproute2): unlike the node layer, it does not change with every code edit.
    rootfs = plan().rootfs
    if not image_exists(client, rootfs):
        ensure_image()
    image = rootfs.ref
    run_id = f"sshd-{secrets.token_hex(4)}"
    labels = {dk.LABEL_RUN: run_id, dk.LABEL_OWNER: dk._owner_label()}
    keys = tmp / "keys"
    keys.mkdir(parents=True)  # never two sets of hosts sharing (and clobbering) one key
    private, public = new_key()
    (keys / "id_ed25519").write_bytes(private)
    (keys / "id_ed25519").chmod(0o600)
    try:
        with nx.host_lock():
            nx.ensure_guard_route()
            used = nx.used_subnet_indexes(nx.DEFAULT_STATE_DIR) | dk._docker_subnet_indexes(client)
            free = [x for x in range(1, 255) if x not in used]
            index = free[-1]
            gateway = f"10.213.{index}.1"
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=f"10.213.{index}.0/24", gateway=gateway)]
            )
            short = secrets.token_hex(3)
            network = client.networks.create(
                f"lh-{short}",
                driver="bridge",
                internal=True,
                ipam=ipam,
                labels=labels,
                options={"com.docker.network.bridge.name": f"lhd{short}"},
            )
        containers: dict[str, str] = {}
        addresses: dict[str, str] = {}
        known: list[str] = []
        for i in range(count):
            name = f"n{i + 1}"
            address = f"10.213.{index}.{nx.FIRST_NODE_HOST + i}"
            hdir = keys / name
            hdir.mkdir()
            host_private, host_public = new_key()
            (hdir / "host_key").write_bytes(host_private)
            (hdir / "authorized_keys").write_text(public + "\n")
            known.append(f"{address} {host_public}")
            c = client.api.create_container(
                image,
                command=["sh", "-c", SSHD],
                name=f"lh-{short}-{name}",
                hostname=name,
                labels={**labels, dk.LABEL_NODE: name},
                environment=dk.NODE_ENV,
                host_config=client.api.create_host_config(
                    binds={str(hdir): {"bind": "/keys", "mode": "ro"}},
                    cap_add=["NET_ADMIN"],
                    init=True,
                    network_mode=network.name,
                ),
                networking_config=client.api.create_networking_config(
                    {network.name: client.api.create_endpoint_config(ipv4_address=address)}
                ),
            )
            containers[name] = c["Id"]
            addresses[name] = address
            client.api.start(c["Id"])
        (keys / "known_hosts").write_text("\n".join(known) + "\n")
        inventory = {
            "user": "root",
            "key": "keys/id_ed25519",
            "known_hosts": "keys/known_hosts",
            "nodes": [{"name": n, "ssh": a, "address": a} for n, a in addresses.items()],
            **inventory_extra,
        }
        (tmp / "hosts.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
        _wait_for_sshd(list(addresses.values()))
        yield SshdHosts(
            tmp / "hosts.yaml", keys / "known_hosts", addresses, containers, gateway, client
        )
    finally:
        dk._remove_labelled(client, {dk.LABEL_RUN: run_id}, [])
        with nx.host_lock():
            nx.maybe_remove_guard_route(nx.DEFAULT_STATE_DIR)
        client.close()


def _wait_for_sshd(addresses: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for address in addresses:
        while True:
            try:
                with socket.create_connection((address, 22), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd on {address} did not answer within {timeout} s")
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.sshd_hosts DIR [--count 3]`: start the test hosts, write
    DIR/hosts.yaml, and keep them until Ctrl-C or SIGTERM (then remove them)."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--watchdog-s", type=float, default=15.0)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with sshd_hosts(args.dir.resolve(), args.count, watchdog_s=args.watchdog_s) as hosts:
        print(f"{len(hosts.addresses)} sshd hosts up; inventory: {hosts.inventory}", flush=True)
        done.wait()
    print("sshd hosts removed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
