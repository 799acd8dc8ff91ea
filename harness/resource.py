"""The protected resource: the thing only a leader may write to, run by the harness.

It listens on the harness's host address, outside the node network, so every node can
reach it even while nodes are partitioned from each other (the dangerous case: a deposed
leader that can still reach the database). Each applied write is stamped `applied_at`
on the reference clock; with fencing on, a token below the highest applied is refused.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.recorder import RefClock


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A candidate killed by the nemesis resets its connection mid-request: expected,
        # and no reason to print a traceback into the run's output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ProtectedResource:
    """`POST /write {"token": T, "seq": S, "process": P}` -> 200 {"applied_at": ns} or
    409 {"error": "fenced", ...}; `GET /state` -> counters and the highest token."""

    def __init__(self, clock: RefClock, *, host: str, port: int = 0, fencing: bool) -> None:
        self.clock = clock
        self.fencing = fencing
        self.highest: int | None = None
        self.applied = 0
        self.refused = 0
        self._lock = threading.Lock()
        resource = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms per keep-alive request).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                # Read the body first, whatever the path: left unread, it would be taken
                # as the start of the next request on this keep-alive connection.
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    if length < 0:
                        raise ValueError(f"negative Content-Length {length}")
                except ValueError as exc:
                    self.close_connection = True  # the body's end is unknown
                    self._reply(400, {"error": f"bad write: {exc}"})
                    return
                raw = self.rfile.read(length)
                if self.path != "/write":
                    self._reply(404, {"error": f"no such path {self.path}"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                    token = body["token"]
                    if type(token) is not int:
                        raise ValueError("token must be an integer")
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": f"bad write: {exc}"})
                    return
                self._reply(*resource.apply(token))

            def do_GET(self) -> None:
                if self.path != "/state":
                    self._reply(404, {"error": f"no such path {self.path}"})
                    return
                self._reply(200, resource.state())

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per write would drown the run's own output

        self._server = _Server((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="resource", daemon=True
        )

    @property
    def url(self) -> str:
        # An AF_INET server's address is (host: str, port: int).
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def apply(self, token: int) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.fencing and self.highest is not None and token < self.highest:
                self.refused += 1
                return 409, {"error": "fenced", "token": token, "highest": self.highest}
            applied_at = self.clock.now()
            if self.highest is None or token > self.highest:
                self.highest = token
            self.applied += 1
            return 200, {"applied_at": applied_at}

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fencing": self.fencing,
                "highest": self.highest,
                "applied": self.applied,
                "refused": self.refused,
            }

    def start(self) -> ProtectedResource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
