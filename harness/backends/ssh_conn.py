"""SSH connections for the ssh backend and `harness hosts check` (paramiko).

Host keys are verified against the inventory's known_hosts only (never the user's system
files, never AutoAddPolicy): an unknown key is refused unless trust on first use was
asked for explicitly (`TrustOnFirstUse`, which appends the key and reports its
fingerprint); a changed key is always refused. Every command runs through an exec channel
as root: directly when the user is root, else through `sudo -n`. Files travel on the
channel's stdin/stdout (no SFTP), so sudo works for them too.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.backends.base import BackendError, RunResult
from harness.backends.ssh_inventory import HostEntry, Inventory

CONNECT_TIMEOUT_S = 30.0  # generous: a loaded host (or harness) can be slow to authenticate


class HostError(BackendError):
    """One host could not be reached or used; the message names it and says why."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a host key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: HostEntry) -> str:
    return host.ssh if host.port == 22 else f"[{host.ssh}]:{host.port}"


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Explicitly requested: accept an unknown host key, append it to known_hosts, and
    remember what was added (the caller prints it). Changed keys never reach a policy:
    paramiko refuses them with BadHostKeyException."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts
        self.added: list[str] = []
        self._lock = threading.Lock()

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        with self._lock:
            with open(self.known_hosts, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            self.added.append(f"{hostname} {key.get_name()} {fingerprint(key)}")


@dataclass
class Host:
    """An open connection to one inventory host."""

    entry: HostEntry
    client: paramiko.SSHClient
    sudo: bool  # commands go through `sudo -n`
    source_address: str  # the harness's address on this connection

    @property
    def name(self) -> str:
        return self.entry.name

    def command(self, script: str, args: tuple[str, ...] = ()) -> str:
        line = "sh -c " + shlex.quote(script) + " sh " + " ".join(shlex.quote(a) for a in args)
        return ("sudo -n " + line) if self.sudo else line

    def exec(
        self,
        script: str,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = 30.0,
    ) -> RunResult:
        """Run `script` (sh, with positional `args`) as root; stdin optional."""
        return self.exec_raw(self.command(script, args), stdin=stdin, timeout=timeout)

    def exec_raw(
        self, command: str, stdin: bytes | None = None, timeout: float = 30.0
    ) -> RunResult:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostError(f"host {self.name}: the SSH connection is closed")
        try:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT_S)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out = bytearray()
            err = bytearray()
            deadline = time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out += chan.recv(1 << 16)
                    continue
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                    continue
                if (
                    chan.exit_status_ready()
                    and not chan.recv_ready()
                    and not chan.recv_stderr_ready()
                ):
                    break
                if time.monotonic() > deadline:
                    chan.close()
                    raise HostError(f"host {self.name}: command timed out after {timeout:g} s")
                chan.status_event.wait(0.005)
            status = chan.recv_exit_status()
            # Whatever arrived between the last read and the exit status.
            while chan.recv_ready():
                out += chan.recv(1 << 16)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(1 << 16)
            chan.close()
        except (paramiko.SSHException, OSError) as exc:
            raise HostError(f"host {self.name}: {type(exc).__name__}: {exc}") from exc
        return RunResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    def close(self) -> None:
        self.client.close()


def connect(
    inventory: Inventory, entry: HostEntry, policy: paramiko.MissingHostKeyPolicy | None = None
) -> Host:
    """Connect with host-key verification; HostError saying why not (unreachable,
    unknown or changed host key, key refused, no root and no passwordless sudo)."""
    client = paramiko.SSHClient()
    # Only the inventory's known_hosts: the user's own files are not what they pointed at.
    try:
        client.load_host_keys(str(inventory.known_hosts))
    except (OSError, paramiko.SSHException) as exc:
        raise HostError(f"{inventory.source}: known_hosts {inventory.known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(policy or paramiko.RejectPolicy())
    where = f"host {entry.name} ({entry.ssh}:{entry.port})"
    try:
        client.connect(
            entry.ssh,
            port=entry.port,
            username=inventory.user,
            key_filename=str(inventory.key),
            look_for_keys=False,
            allow_agent=False,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostError(
            f"{where}: host key CHANGED: got {fingerprint(exc.key)}, known_hosts "
            f"{inventory.known_hosts} has {fingerprint(exc.expected_key)}; refused"
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise HostError(f"{where}: authentication as {inventory.user} failed: {exc}") from None
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        if "not found in known_hosts" in text:
            text = (
                f"host key unknown (not in {inventory.known_hosts}); refused. Add it, or "
                f"run `harness hosts check --trust-on-first-use` once to add it"
            )
        raise HostError(f"{where}: {text}") from None
    except (TimeoutError, OSError) as exc:
        client.close()
        raise HostError(f"{where}: unreachable: {exc}") from None
    transport = client.get_transport()
    assert transport is not None
    transport.set_keepalive(5)
    source = transport.sock.getsockname()[0] if hasattr(transport.sock, "getsockname") else ""
    host = Host(entry, client, inventory.user != "root", str(source))
    if host.sudo:
        probe = host.exec_raw("sudo -n true", timeout=10)
        if probe.returncode != 0:
            host.close()
            raise HostError(
                f"{where}: user {inventory.user} is not root and has no passwordless sudo "
                f"({probe.stderr.strip() or probe.returncode})"
            )
    return host
