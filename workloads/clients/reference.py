"""Election client for the reference elector's local HTTP API (harness/elector)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.workloads.clients.base import ClientError, Grant, LeaseState


class ReferenceClient:
    def __init__(
        self, endpoint: str, *, request_timeout_s: float = 1.0, client_id: str | None = None
    ) -> None:
        self._http = httpx.Client(base_url=endpoint, timeout=request_timeout_s)
        self._timeout = request_timeout_s
        self._client_id = client_id

    def _call(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        try:
            response = self._http.request(method, path, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} {path}: {exc!r}") from exc
        if response.status_code != 200:
            raise ClientError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        try:
            return response.json()
        except ValueError as exc:
            raise ClientError(f"{method} {path}: not JSON: {response.text!r}") from exc

    def campaign(self, timeout_s: float) -> Grant | None:
        called = time.monotonic_ns()
        body: dict[str, Any] = {"timeout_s": timeout_s}
        if self._client_id is not None:
            body["client"] = self._client_id
        answer = self._call("POST", "/campaign", body, timeout_s + self._timeout)
        if not answer.get("leader"):
            return None
        token = int(answer["token"])
        # The answer's lease_remaining_ns counts from when the member answered, which for
        # a campaign that waited is long after the call, and a Grant counts from the
        # call. So read the lease afresh: what remains then, counted from when that
        # request was sent, is a bound that holds counted from the call too.
        sent = time.monotonic_ns()
        state = self.check()
        if not state.leader or state.token != token:
            return None  # lost again before the grant could be used
        return Grant(token=token, lease_ns=sent - called + (state.remaining_ns or 0))

    def check(self) -> LeaseState:
        answer = self._call("GET", "/lease", None, self._timeout)
        leader = bool(answer.get("leader"))
        return LeaseState(
            leader=leader,
            token=int(answer["token"]) if answer.get("token") is not None else None,
            remaining_ns=int(answer.get("lease_remaining_ns") or 0),
        )

    def resign(self) -> None:
        self._call("POST", "/resign", {}, self._timeout)

    def close(self) -> None:
        self._http.close()
