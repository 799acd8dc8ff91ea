"""Election client for etcd's v3election API, spoken through etcd's JSON gateway.

A candidate grants itself a lease, keeps it alive from a daemon thread (so a paused
candidate stops renewing, as a paused real leader would), and campaigns with it. The
fencing token is the leader key's revision. python-etcd3 is broken on current protobuf,
so this speaks the gateway's JSON with httpx: every bytes field is base64, 64-bit
integers come back as strings, and fields at their default value are omitted.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import httpx

from harness.workloads.clients.base import ClientError, Grant, LeaseState, Renewer

S = 1_000_000_000


def b64(text: str | bytes) -> str:
    """A bytes field as the gateway wants it."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def unb64(field: str | None) -> bytes:
    """A bytes field as the gateway sends it (absent = empty)."""
    return base64.b64decode(field) if field else b""


def int_field(obj: dict[str, Any], name: str) -> int:
    """A 64-bit integer field: a JSON string, or absent when it is 0."""
    value = obj.get(name)
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ClientError(f"field {name!r} is not an integer: {value!r}") from exc


class EtcdAnswerError(ClientError):
    """etcd answered with an error status; `status` and `message` say which."""

    def __init__(self, path: str, status: int, message: str) -> None:
        super().__init__(f"POST {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message


def post(http: httpx.Client, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One gateway call. Streaming endpoints (keepalive) answer one `{"result": ...}`
    line per request; that wrapper is removed here."""
    try:
        response = http.post(path, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ClientError(f"POST {path}: {exc!r}") from exc
    text = response.text.strip()
    first = text.splitlines()[0] if text else ""
    try:
        answer = json.loads(first) if first else None
    except ValueError:
        answer = None
    if response.status_code != 200:
        message = answer.get("message", text) if isinstance(answer, dict) else text
        raise EtcdAnswerError(path, response.status_code, str(message))
    if not isinstance(answer, dict):
        raise ClientError(f"POST {path}: not a JSON object: {text[:200]!r}")
    if "error" in answer:  # a streaming endpoint's error comes with status 200
        error = answer["error"] or {}
        status = int(error.get("http_code") or 500)
        raise EtcdAnswerError(path, status, str(error.get("message", error)))
    if "result" in answer:
        result = answer["result"]
        if not isinstance(result, dict):
            raise ClientError(f"POST {path}: result is not an object: {text[:200]!r}")
        return result
    return answer


class EtcdClient:
    """An `ElectionClient` for etcd 3.4/3.5: one lease per campaign, kept alive in the
    background; `election` names the election, `ttl_s` asks for the lease TTL (etcd may
    raise it to its minimum; the granted TTL is what counts)."""

    def __init__(
        self,
        endpoint: str,
        *,
        request_timeout_s: float = 1.0,
        client_id: str | None = None,
        election: str = "harness-leader",
        ttl_s: int = 2,
    ) -> None:
        if int(ttl_s) != ttl_s or ttl_s < 1:
            raise ValueError(f"ttl_s must be a positive whole number of seconds, got {ttl_s!r}")
        self._timeout = request_timeout_s
        self._http = httpx.Client(base_url=endpoint, timeout=request_timeout_s)
        # The keep-alive thread has its own connection so a long campaign request on the
        # main thread never delays a renewal.
        self._ka_http = httpx.Client(base_url=endpoint, timeout=request_timeout_s)
        self._election = election
        self._value = b64(client_id or "")
        self._ttl_s = int(ttl_s)
        self._lock = threading.Lock()  # guards the lease fields the keep-alive thread updates
        self._lease_id: int | None = None
        self._lease_ttl_s = 0  # as granted
        self._lease_end_ns: int | None = None  # send time of last good renewal + TTL
        self._lease_gone = False
        self._keeper: Renewer | None = None
        self._leader: dict[str, Any] | None = None  # the LeaderKey from a won campaign

    # --- lease plumbing --------------------------------------------------------------

    def _keepalive(self, http: httpx.Client, lease_id: int) -> bool:
        """Renew once; False if etcd says the lease is gone (TTL absent or <= 0)."""
        sent = time.monotonic_ns()
        answer = post(http, "/v3/lease/keepalive", {"ID": str(lease_id)}, self._timeout)
        ttl = int_field(answer, "TTL")
        with self._lock:
            if lease_id != self._lease_id:
                return ttl > 0  # a late answer for a lease we already dropped
            if ttl <= 0:
                self._lease_gone = True
                return False
            end = sent + ttl * S
            self._lease_ttl_s = ttl
            if self._lease_end_ns is None or end > self._lease_end_ns:
                self._lease_end_ns = end
            return True

    def _grant(self) -> int:
        sent = time.monotonic_ns()
        answer = post(self._http, "/v3/lease/grant", {"TTL": str(self._ttl_s)}, self._timeout)
        lease_id = int_field(answer, "ID")
        ttl = int_field(answer, "TTL")
        if lease_id == 0 or ttl <= 0:
            raise ClientError(f"lease grant answered without a lease: {answer!r}")
        with self._lock:
            self._lease_id = lease_id
            self._lease_ttl_s = ttl
            self._lease_end_ns = sent + ttl * S
            self._lease_gone = False
        self._keeper = Renewer(
            lambda: self._keepalive(self._ka_http, lease_id),
            ttl / 3,
            f"etcd-keepalive-{lease_id:x}",
        )
        return lease_id

    def _stop_keepalive(self) -> None:
        """Stop renewing (also the test hook for "this candidate stopped renewing")."""
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None

    def _revoke(self) -> None:
        """Stop renewing and revoke the lease, which deletes any key attached to it.
        Returns once etcd confirmed the lease is gone; ClientError if it did not."""
        self._stop_keepalive()
        with self._lock:
            lease_id = self._lease_id
        if lease_id is None:
            return
        try:
            post(self._http, "/v3/lease/revoke", {"ID": str(lease_id)}, self._timeout)
        except EtcdAnswerError as exc:
            if exc.status != 404:  # 404 "requested lease not found": gone already
                raise
        self._forget_lease()

    def _forget_lease(self) -> None:
        with self._lock:
            self._lease_id = None
            self._lease_end_ns = None
            self._lease_gone = False
        self._leader = None

    # --- the ElectionClient protocol ---------------------------------------------------

    def campaign(self, timeout_s: float) -> Grant | None:
        called = time.monotonic_ns()
        if self._lease_id is not None:
            # Left over from an earlier leadership or an unknown outcome: drop it so it
            # cannot win behind our back. It expires within its TTL if this fails.
            try:
                self._revoke()
            except ClientError:
                self._forget_lease()
        lease_id = self._grant()
        body = {"name": b64(self._election), "lease": str(lease_id), "value": self._value}
        try:
            answer = post(self._http, "/v3/election/campaign", body, timeout_s)
            leader = answer.get("leader")
            if not isinstance(leader, dict) or not leader.get("key"):
                raise ClientError(f"campaign answered without a leader key: {answer!r}")
            token = int_field(leader, "rev")
        except ClientError as exc:
            # Lost or timed out: revoking deletes our candidate key, so a confirmed revoke
            # means definitely not leader; an unconfirmed one leaves the outcome unknown.
            try:
                self._revoke()
            except ClientError as revoke_exc:
                raise ClientError(f"{exc}; then revoke: {revoke_exc}") from exc
            return None
        with self._lock:
            gone = self._lease_gone
            end = self._lease_end_ns
        if gone or end is None:
            # The lease expired while the campaign was blocked: the key went with it.
            try:
                self._revoke()
            except ClientError as exc:
                raise ClientError(f"lease expired during the campaign; revoke: {exc}") from exc
            return None
        self._leader = leader
        return Grant(token=token, lease_ns=end - called)

    def check(self) -> LeaseState:
        with self._lock:
            lease_id = self._lease_id
        if lease_id is None or self._leader is None:
            return LeaseState(leader=False, token=None, remaining_ns=0)
        if not self._keepalive(self._http, lease_id):
            self._stop_keepalive()
            return LeaseState(leader=False, token=None, remaining_ns=0)
        with self._lock:
            remaining_ns = self._lease_ttl_s * S  # counted from the keepalive's send time
        try:
            answer = post(
                self._http, "/v3/election/leader", {"name": b64(self._election)}, self._timeout
            )
        except EtcdAnswerError as exc:
            if exc.status == 500 and "no leader" in exc.message:
                return LeaseState(leader=False, token=None, remaining_ns=0)
            raise
        kv = answer.get("kv")
        if not isinstance(kv, dict) or kv.get("key") != self._leader["key"]:
            return LeaseState(leader=False, token=None, remaining_ns=0)
        return LeaseState(
            leader=True, token=int_field(kv, "create_revision"), remaining_ns=remaining_ns
        )

    def resign(self) -> None:
        leader, self._leader = self._leader, None
        error: ClientError | None = None
        if leader is not None:
            try:
                post(self._http, "/v3/election/resign", {"leader": leader}, self._timeout)
            except ClientError as exc:
                error = exc
        # Whatever resign said, this candidate has stopped acting: stop renewing and
        # revoke, so the lease cannot keep a leadership nobody uses alive.
        try:
            self._revoke()
        except ClientError as exc:
            error = error or exc
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self._revoke()
        except ClientError:
            pass  # the lease expires on its own within its TTL
        finally:
            self._http.close()
            self._ka_http.close()
