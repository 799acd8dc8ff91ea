"""The protected resource (harness/resource.py) on 127.0.0.1, over real HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.recorder import RefClock
from harness.resource import ProtectedResource


@pytest.fixture
def clock() -> RefClock:
    return RefClock()


def serve(clock: RefClock, fencing: bool) -> Iterator[httpx.Client]:
    resource = ProtectedResource(clock, host="127.0.0.1", fencing=fencing).start()
    try:
        with httpx.Client(base_url=resource.url, timeout=5.0) as client:
            yield client
    finally:
        resource.stop()


@pytest.fixture
def fenced(clock: RefClock) -> Iterator[httpx.Client]:
    yield from serve(clock, fencing=True)


@pytest.fixture
def unfenced(clock: RefClock) -> Iterator[httpx.Client]:
    yield from serve(clock, fencing=False)


def write(client: httpx.Client, token: Any, seq: int = 0, process: int = 1) -> httpx.Response:
    return client.post("/write", json={"token": token, "seq": seq, "process": process})


def test_url_is_on_the_given_host() -> None:
    resource = ProtectedResource(RefClock(), host="127.0.0.1", fencing=True)
    try:
        assert resource.url.startswith("http://127.0.0.1:")
        assert int(resource.url.rsplit(":", 1)[1]) > 0
    finally:
        resource._server.server_close()


def test_applied_writes_are_stamped_increasingly_on_the_ref_clock(
    clock: RefClock, fenced: httpx.Client
) -> None:
    before = clock.now()
    stamps = []
    for seq, token in enumerate([1, 1, 2, 5, 5, 7]):
        response = write(fenced, token, seq)
        assert response.status_code == 200, response.text
        stamps.append(response.json()["applied_at"])
    after = clock.now()
    assert all(isinstance(s, int) for s in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # On the run's reference clock (ns since its origin), not wall time or raw monotonic.
    assert before <= stamps[0] and stamps[-1] <= after
    state = fenced.get("/state").json()
    assert state == {"fencing": True, "highest": 7, "applied": 6, "refused": 0}


def test_stamp_uses_the_clock_origin() -> None:
    origin = time.monotonic_ns() - 10**12  # the run "began" 1000 s ago
    for client in serve(RefClock(origin), fencing=True):
        applied_at = write(client, 1).json()["applied_at"]
        assert 10**12 <= applied_at < 10**12 + 60 * 10**9


def test_fencing_refuses_a_token_below_the_highest(fenced: httpx.Client) -> None:
    assert write(fenced, 5, 0).status_code == 200
    refused = write(fenced, 4, 1, process=2)
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "fenced"
    assert (body["token"], body["highest"]) == (4, 5)
    # Equal to the highest is still allowed (the same leader writing again).
    assert write(fenced, 5, 2).status_code == 200
    assert write(fenced, 3, 3).status_code == 409
    assert fenced.get("/state").json() == {
        "fencing": True,
        "highest": 5,
        "applied": 2,
        "refused": 2,
    }


def test_without_fencing_a_lower_token_is_applied(unfenced: httpx.Client) -> None:
    assert write(unfenced, 5).status_code == 200
    lower = write(unfenced, 4, 1)
    assert lower.status_code == 200
    assert isinstance(lower.json()["applied_at"], int)
    state = unfenced.get("/state").json()
    assert state == {"fencing": False, "highest": 5, "applied": 2, "refused": 0}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"seq": 1}',
        b'{"token": "5"}',
        b'{"token": 5.5}',
        b'{"token": true}',
        b'{"token": null}',
        b"[1, 2]",
        b"\xff\xfe",
    ],
)
def test_bad_bodies_get_400_and_change_nothing(fenced: httpx.Client, body: bytes) -> None:
    response = fenced.post("/write", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("bad write")
    assert fenced.get("/state").json() == {
        "fencing": True,
        "highest": None,
        "applied": 0,
        "refused": 0,
    }
    # The server still works afterwards.
    assert write(fenced, 1).status_code == 200


def test_missing_content_length_is_a_bad_write(fenced: httpx.Client) -> None:
    host, port = fenced.base_url.host, fenced.base_url.port
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.putrequest("POST", "/write")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400
        assert "bad write" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_unknown_paths_get_404(fenced: httpx.Client) -> None:
    assert fenced.post("/state", json={"token": 1}).status_code == 404
    assert fenced.get("/write").status_code == 404
    assert fenced.get("/state").json()["applied"] == 0


def test_state_initially(fenced: httpx.Client) -> None:
    response = fenced.get("/state")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"fencing": True, "highest": None, "applied": 0, "refused": 0}


def test_keep_alive_connection_serves_many_requests(fenced: httpx.Client) -> None:
    # One httpx.Client reuses its connection (HTTP/1.1): replies must be framed right.
    for seq in range(50):
        assert write(fenced, 1, seq).status_code == 200
    assert fenced.get("/state").json()["applied"] == 50


def test_stop_closes_the_port(clock: RefClock) -> None:
    resource = ProtectedResource(clock, host="127.0.0.1", fencing=True).start()
    url = resource.url
    resource.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/write", json={"token": 1}, timeout=2.0)


def test_keep_alive_replies_do_not_wait_for_nagle(clock: RefClock) -> None:
    # Candidates write every few tens of ms over one connection: a reply (headers and
    # body in two writes) must not wait for the client's delayed ACK, which costs ~40 ms
    # per request with Nagle on. Checked on the server's own socket, not by timing.
    resource = ProtectedResource(clock, host="127.0.0.1", fencing=True)
    accepted: list[socket.socket] = []
    get_request = resource._server.get_request

    def remember() -> tuple[socket.socket, Any]:
        conn, addr = get_request()
        accepted.append(conn)
        return conn, addr

    resource._server.get_request = remember  # type: ignore[method-assign]
    resource.start()
    try:
        with httpx.Client(base_url=resource.url, timeout=5.0) as client:
            assert write(client, 1).status_code == 200
            assert len(accepted) == 1
            assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        resource.stop()
