"""Election client for Consul: a TTL session holds a KV lock on one key.

A candidate creates a session (behavior "release") and renews it from a daemon thread
(so a paused candidate stops renewing, as a paused real leader would), then acquires the
key with that session. Acquire through py-consul answers only a bool, so the lock and a
read of the key go in one `/v1/txn`: the fencing token is the key's ModifyIndex as the
same transaction saw it. Sessions, renewals and reads go through py-consul.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from typing import Any

import consul
import httpx
import requests

from harness.workloads.clients.base import ClientError, Grant, LeaseState, Renewer

S = 1_000_000_000
MS = 1_000_000
# When the key is free but the lock still fails (lock-delay after an invalidation),
# blocking queries do not wake us: poll this often instead.
LOCK_DELAY_POLL_S = 0.1
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": MS, "s": S, "m": 60 * S, "h": 3600 * S}


def parse_duration_ns(text: str) -> int:
    """A Go duration ("10s", "1m30s", "1.5s") as nanoseconds."""
    total = 0.0
    rest = text.strip()
    if not rest:
        raise ClientError("empty duration")
    while rest:
        number = ""
        while rest and (rest[0].isdigit() or rest[0] == "."):
            number, rest = number + rest[0], rest[1:]
        unit = ""
        while rest and not (rest[0].isdigit() or rest[0] == "."):
            unit, rest = unit + rest[0], rest[1:]
        if not number or unit not in _DURATION_UNITS:
            raise ClientError(f"not a duration: {text!r}")
        total += float(number) * _DURATION_UNITS[unit]
    return int(total)


def _seconds(value: float) -> int | float:
    """Whole seconds as an int, so durations read "10s" rather than "10.0s"."""
    return int(value) if float(value).is_integer() else value


def _consul_call(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """A py-consul call; every failure but NotFound (which callers decide about) is an
    unknown outcome."""
    try:
        return call(*args, **kwargs)
    except consul.NotFound:
        raise
    except (consul.ConsulException, requests.RequestException) as exc:
        raise ClientError(f"{what}: {exc!r}") from exc


class ConsulClient:
    """An `ElectionClient` for Consul 1.8: `key` is the lock key, `ttl_s` the session TTL
    (Consul's default minimum is 10 s; lower needs the server's `session_ttl_min`),
    `lock_delay_s` the session's lock-delay (Consul's own default is 15 s; 0 here),
    `serf_check` whether the session is tied to its node's `serfHealth` check (Consul's
    default: the session is invalidated as soon as the node is seen failed, before its TTL
    runs out) or lives by its TTL alone (no health checks)."""

    def __init__(
        self,
        endpoint: str,
        *,
        request_timeout_s: float = 1.0,
        client_id: str | None = None,
        key: str = "harness/leader",
        ttl_s: float = 10,
        lock_delay_s: float = 0,
        serf_check: bool = True,
    ) -> None:
        if ttl_s <= 0 or lock_delay_s < 0:
            raise ValueError(f"need ttl_s > 0 and lock_delay_s >= 0, got {ttl_s}, {lock_delay_s}")
        url = httpx.URL(endpoint)
        self._timeout = request_timeout_s
        self._client_id = client_id or ""
        self._key = key.lstrip("/")
        self._ttl_s = ttl_s
        self._lock_delay_s = lock_delay_s
        self._serf_check = serf_check

        def api() -> consul.Consul:
            return consul.Consul(
                host=url.host,
                port=url.port or 8500,
                scheme=url.scheme,
                connections_timeout=request_timeout_s,
            )

        self._api = api()
        # requests sessions are not thread-safe: the renew thread gets its own.
        self._renew_api = api()
        self._http = httpx.Client(base_url=endpoint, timeout=request_timeout_s)  # /v1/txn
        self._lock = threading.Lock()  # guards the session fields the renew thread updates
        self._session: str | None = None
        self._session_ttl_ns = 0
        self._lease_end_ns: int | None = None  # send time of last good create/renew + TTL
        self._session_gone = False
        self._renewer: Renewer | None = None
        self._token: int | None = None

    # --- session plumbing --------------------------------------------------------------

    def _create_session(self) -> str:
        sent = time.monotonic_ns()
        if self._ttl_s >= 10 and float(self._ttl_s).is_integer() and self._serf_check:
            session_id = _consul_call(
                "session create",
                self._api.session.create,
                name=self._client_id or None,
                lock_delay=_seconds(self._lock_delay_s),
                behavior="release",
                ttl=int(self._ttl_s),
            )
        else:
            # py-consul asserts TTL >= 10 s (Consul's default session_ttl_min); a server
            # configured lower accepts shorter TTLs, so ask it directly. Also the way to
            # say "no health checks": both lists present and empty.
            session_id = self._create_session_raw()
        if not isinstance(session_id, str) or not session_id:
            raise ClientError(f"session create answered without an ID: {session_id!r}")
        with self._lock:
            self._session = session_id
            self._session_ttl_ns = int(self._ttl_s * S)
            self._lease_end_ns = sent + self._session_ttl_ns
            self._session_gone = False
        self._renewer = Renewer(
            lambda: self._renew(self._renew_api, session_id), self._ttl_s / 3, "consul-renew"
        )
        return session_id

    def _create_session_raw(self) -> str:
        body: dict[str, Any] = {
            "Name": self._client_id,
            "LockDelay": f"{_seconds(self._lock_delay_s)}s",
            "Behavior": "release",
            "TTL": f"{_seconds(self._ttl_s)}s",
        }
        if not self._serf_check:
            body["Checks"] = []
            body["NodeChecks"] = []
        try:
            response = self._http.put("/v1/session/create", json=body)
            response.raise_for_status()
            return str(response.json()["ID"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ClientError(f"session create: {exc!r}") from exc

    def _renew(self, api: consul.Consul, session_id: str) -> bool:
        """Renew once; False if Consul says the session is gone (404)."""
        sent = time.monotonic_ns()
        try:
            answer = _consul_call("session renew", api.session.renew, session_id)
        except consul.NotFound:
            with self._lock:
                if session_id == self._session:
                    self._session_gone = True
            return False
        ttl = answer.get("TTL") if isinstance(answer, dict) else None
        ttl_ns = parse_duration_ns(ttl) if ttl else int(self._ttl_s * S)
        with self._lock:
            if session_id == self._session and not self._session_gone:
                self._session_ttl_ns = ttl_ns
                end = sent + ttl_ns
                if self._lease_end_ns is None or end > self._lease_end_ns:
                    self._lease_end_ns = end
        return True

    def _stop_renewing(self) -> None:
        """Stop renewing (also the test hook for "this candidate stopped renewing")."""
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None

    def _destroy(self) -> None:
        """Stop renewing and destroy the session, which releases its lock. Returns once
        Consul confirmed; ClientError if it did not."""
        self._stop_renewing()
        with self._lock:
            session_id = self._session
        if session_id is None:
            return
        _consul_call("session destroy", self._api.session.destroy, session_id)
        with self._lock:
            self._session = None
            self._lease_end_ns = None
        self._token = None

    def _txn(self, ops: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """(status, answer) of one `/v1/txn`: 200 committed, 409 rolled back."""
        try:
            response = self._http.put("/v1/txn", json=ops)
        except httpx.HTTPError as exc:
            raise ClientError(f"PUT /v1/txn: {exc!r}") from exc
        if response.status_code not in (200, 409):
            raise ClientError(f"PUT /v1/txn: HTTP {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ClientError(f"PUT /v1/txn: not JSON: {response.text[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise ClientError(f"PUT /v1/txn: not an object: {response.text[:200]!r}")
        return response.status_code, answer

    def _try_lock(self, session_id: str) -> int | str:
        """The token if the lock is ours now, else why not: "held", "invalid session",
        or "delay" (free but refused: lock-delay)."""
        status, answer = self._txn(
            [
                {
                    "KV": {
                        "Verb": "lock",
                        "Key": self._key,
                        "Value": base64.b64encode(self._client_id.encode()).decode(),
                        "Session": session_id,
                    }
                },
                {"KV": {"Verb": "get", "Key": self._key}},
            ]
        )
        if status == 200:
            try:
                kv = answer["Results"][1]["KV"]
                token = int(kv["ModifyIndex"])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ClientError(f"txn answered without the key: {answer!r}") from exc
            if kv.get("Session") != session_id:
                raise ClientError(f"txn locked but read another holder: {kv!r}")
            return token
        what = " ".join(str(e.get("What", "")) for e in answer.get("Errors") or [])
        if "already held" in what:
            return "held"
        if "invalid session" in what:
            return "invalid session"
        if "lock delay" in what:
            return "delay"
        raise ClientError(f"txn rolled back: {what or answer!r}")

    def _wait_for_release(self, until_ns: int) -> None:
        """Block until the key changes (or `until_ns`), with a blocking query."""
        index, entry = _consul_call("kv get", self._api.kv.get, self._key)
        if entry is None or not entry.get("Session"):
            time.sleep(max(0.0, min(LOCK_DELAY_POLL_S, (until_ns - time.monotonic_ns()) / S)))
            return
        wait_ms = (until_ns - time.monotonic_ns()) // MS
        if wait_ms <= 0:
            return
        _consul_call(
            "kv get (blocking)", self._api.kv.get, self._key, index=index, wait=f"{wait_ms}ms"
        )

    # --- the ElectionClient protocol ---------------------------------------------------

    def campaign(self, timeout_s: float) -> Grant | None:
        called = time.monotonic_ns()
        until = called + int(timeout_s * S)
        if self._session is not None:
            # Left over from an earlier leadership or an unknown outcome: drop it so it
            # cannot hold the lock behind our back. It expires on its own if this fails.
            with contextlib.suppress(ClientError):
                self._destroy()
            self._session = None
        session_id = self._create_session()
        last_error: ClientError | None = None
        while True:
            try:
                outcome = self._try_lock(session_id)
            except ClientError as exc:
                last_error, outcome = exc, "unknown"
            if isinstance(outcome, int):
                with self._lock:
                    gone = self._session_gone
                    end = self._lease_end_ns
                if not gone and end is not None:
                    self._token = outcome
                    return Grant(token=outcome, lease_ns=end - called)
                outcome = "invalid session"
            if outcome == "invalid session" or time.monotonic_ns() >= until:
                break
            try:
                if outcome == "held":
                    self._wait_for_release(until)
                else:  # "delay", or no usable answer: pause briefly and retry
                    remaining = (until - time.monotonic_ns()) / S
                    time.sleep(max(0.0, min(LOCK_DELAY_POLL_S, remaining)))
            except ClientError as exc:
                last_error = exc
                time.sleep(max(0.0, min(LOCK_DELAY_POLL_S, (until - time.monotonic_ns()) / S)))
        # Timed out or lost the session: destroying it releases any lock it might hold,
        # so a confirmed destroy means definitely not leader.
        try:
            self._destroy()
        except consul.NotFound:
            self._session = None  # gone already: it holds nothing
        except ClientError as exc:
            detail = f"; earlier: {last_error}" if last_error else ""
            raise ClientError(f"campaign ended; session destroy: {exc}{detail}") from exc
        return None

    def check(self) -> LeaseState:
        with self._lock:
            session_id = self._session
        if session_id is None or self._token is None:
            return LeaseState(leader=False, token=None, remaining_ns=0)
        if not self._renew(self._api, session_id):
            self._stop_renewing()
            return LeaseState(leader=False, token=None, remaining_ns=0)
        with self._lock:
            remaining_ns = self._session_ttl_ns  # counted from the renew's send time
        _, entry = _consul_call("kv get", self._api.kv.get, self._key, consistency="consistent")
        if (
            not isinstance(entry, dict)
            or entry.get("Session") != session_id
            or entry.get("ModifyIndex") != self._token
        ):
            return LeaseState(leader=False, token=None, remaining_ns=0)
        return LeaseState(leader=True, token=self._token, remaining_ns=remaining_ns)

    def resign(self) -> None:
        with self._lock:
            session_id = self._session
        self._token = None
        error: ClientError | None = None
        if session_id is not None:
            unlock = {"KV": {"Verb": "unlock", "Key": self._key, "Session": session_id}}
            try:
                status, answer = self._txn([unlock])
                if status != 200:
                    what = " ".join(str(e.get("What", "")) for e in answer.get("Errors") or [])
                    if "isn't held" not in what:  # not holding it is what resign wants
                        error = ClientError(f"unlock rolled back: {what or answer!r}")
            except ClientError as exc:
                error = exc
        # Whatever the unlock said, this candidate has stopped acting: stop renewing and
        # destroy the session, so no lock outlives the leadership.
        try:
            self._destroy()
        except consul.NotFound:
            self._session = None
        except ClientError as exc:
            error = error or exc
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self._destroy()
        except (ClientError, consul.NotFound):
            pass  # the session expires on its own after its TTL
        finally:
            self._http.close()
            for api in (self._api, self._renew_api):
                api.http.session.close()  # py-consul's own close() leaves it open
