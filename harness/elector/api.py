"""The local HTTP/1.1 JSON API that the candidate process on the same node calls.

Endpoints: `POST /campaign`, `GET /lease`, `POST /resign`, `GET /status` (see README.md).
One request per connection (`Connection: close`), bodies sized by Content-Length. Every
answer is computed from the clock at the moment of the request, after letting the node
catch up with its timers, so a node resumed from SIGSTOP never answers from stale state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Protocol

from harness.errors import HarnessError

MAX_BODY_BYTES = 64 * 1024
HEADER_TIMEOUT_S = 5.0
MAX_CAMPAIGN_S = 3600.0
DEFAULT_CAMPAIGN_S = 30.0


class ApiError(HarnessError):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ElectorControl(Protocol):
    """What the API needs from the running node (implemented by ElectorServer)."""

    def lease_view(self) -> dict[str, Any]: ...

    def status_view(self) -> dict[str, Any]: ...

    def resign(self, backoff_s: float | None) -> dict[str, Any]: ...

    async def campaign(self, timeout_s: float, client: str | None) -> dict[str, Any]: ...


def _number_field(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    if key not in body:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"'{key}': expected a number from {low:g} to {high:g}"
        )
    return float(value)


class ApiServer:
    def __init__(self, control: ElectorControl, log: logging.Logger) -> None:
        self._control = control
        self._log = log
        self._server: asyncio.Server | None = None
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any]], Awaitable[Any]]] = {
            ("POST", "/campaign"): self._campaign,
            ("GET", "/lease"): self._lease,
            ("POST", "/resign"): self._resign,
            ("GET", "/status"): self._status,
        }

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _campaign(self, body: dict[str, Any]) -> dict[str, Any]:
        timeout = _number_field(body, "timeout_s", 0.0, MAX_CAMPAIGN_S)
        client = body.get("client")
        if client is not None and (isinstance(client, bool) or not isinstance(client, str | int)):
            raise ApiError(HTTPStatus.BAD_REQUEST, "'client': expected a string or an integer")
        return await self._control.campaign(
            DEFAULT_CAMPAIGN_S if timeout is None else timeout,
            None if client is None else str(client),
        )

    async def _lease(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._control.lease_view()

    async def _resign(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._control.resign(_number_field(body, "backoff_s", 0.0, MAX_CAMPAIGN_S))

    async def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._control.status_view()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any]]:
        async with asyncio.timeout(HEADER_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ApiError(HTTPStatus.BAD_REQUEST, "malformed request line")
        method, target, _ = parts
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
            elif name.strip().lower() == "transfer-encoding":
                raise ApiError(HTTPStatus.NOT_IMPLEMENTED, "chunked bodies are not supported")
        if length < 0 or length > MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        async with asyncio.timeout(HEADER_TIMEOUT_S):
            raw = await reader.readexactly(length)
        body: Any = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ApiError(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return method, target.split("?", 1)[0], body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, payload = HTTPStatus.OK, {}
        try:
            method, path, body = await self._read_request(reader)
            handler = self._routes.get((method, path))
            if handler is None:
                if any(p == path for _, p in self._routes):
                    raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed on {path}")
                raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
            payload = await handler(body)
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.message}
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        data = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(head + data)
            async with asyncio.timeout(HEADER_TIMEOUT_S):
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
