"""Test helpers for network checks between nodes: an echo server on a node or on the
host, and a TCP probe run inside a node."""

from __future__ import annotations

import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

from harness.backends.base import Backend, Daemon, Node

PY = sys.executable

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        c.sendall(c.recv(100)); c.close()
    """
)
ECHO_CLIENT = textwrap.dedent(
    """
    import socket, sys
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    c.sendall(b"hello"); print(c.recv(100).decode())
    """
)


def tcp(backend: Backend, node: Node, address: str, port: int, timeout: float = 2.0) -> bool:
    r = backend.run(
        node, [backend.python, "-c", ECHO_CLIENT, address, str(port), str(timeout)], timeout + 5
    )
    return r.returncode == 0 and r.stdout.strip() == "hello"


def start_echo(backend: Backend, node: Node, port: int, log: Path) -> Daemon:
    d = backend.spawn(
        node, "echo", [backend.python, "-u", "-c", ECHO_SERVER, str(port)], log_path=log
    )
    deadline = time.monotonic() + 5
    while "listening" not in (log.read_text() if log.exists() else ""):
        assert d.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "echo server did not start"
        time.sleep(0.02)
    return d


class HostEcho:
    """An echo server in the host namespace, on the run's host address."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.sendall(c.recv(100))

    def close(self) -> None:
        self.sock.close()
