"""ConsulClient: duration parsing and txn error mapping (mock transport), and election
semantics against a real one-server Consul 1.8.7 (-dev) on loopback."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import consul
import httpx
import pytest

from harness.workloads.clients import ClientError, make_client
from harness.workloads.clients.consul import ConsulClient, parse_duration_ns
from tests.servers import Server, free_port, start_consul

S = 1_000_000_000

# --- no server: parsing and error mapping --------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration_ns("10s") == 10 * S
    assert parse_duration_ns("1m30s") == 90 * S
    assert parse_duration_ns("1.5s") == 3 * S // 2
    assert parse_duration_ns("250ms") == S // 4
    for bad in ("", "10", "s", "10x"):
        with pytest.raises(ClientError):
            parse_duration_ns(bad)


def client_with_txn(answer: httpx.Response | Exception) -> ConsulClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/txn"
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = ConsulClient("http://consul.test:8500", client_id="p4")
    client._http = httpx.Client(
        base_url="http://consul.test:8500", transport=httpx.MockTransport(handler)
    )
    return client


def rolled_back(what: str) -> httpx.Response:
    return httpx.Response(409, json={"Results": None, "Errors": [{"OpIndex": 0, "What": what}]})


def test_txn_outcomes_are_mapped() -> None:
    kv = {"Key": "harness/leader", "Session": "s1", "ModifyIndex": 77}
    won = httpx.Response(200, json={"Results": [{"KV": kv}, {"KV": kv}], "Errors": None})
    assert client_with_txn(won)._try_lock("s1") == 77
    with pytest.raises(ClientError, match="another holder"):
        client_with_txn(won)._try_lock("s2")
    held = rolled_back('failed to lock key "harness/leader", lock is already held')
    assert client_with_txn(held)._try_lock("s1") == "held"
    invalid = rolled_back('invalid session "s1"')
    assert client_with_txn(invalid)._try_lock("s1") == "invalid session"
    delayed = rolled_back('failed to lock key "harness/leader" due to lock delay')
    assert client_with_txn(delayed)._try_lock("s1") == "delay"
    for unknown in (
        rolled_back("something new"),
        httpx.Response(500, text="rpc error: No cluster leader"),
        httpx.Response(200, text="not json"),
        httpx.ConnectError("refused"),
    ):
        with pytest.raises(ClientError):
            client_with_txn(unknown)._try_lock("s1")


def test_registry_passes_adapter_options() -> None:
    client = make_client(
        "consul",
        "http://consul.test:8500",
        request_timeout_s=0.5,
        client_id="p4",
        key="k/l",
        ttl_s=15,
        lock_delay_s=1,
    )
    assert isinstance(client, ConsulClient)
    assert (client._key, client._ttl_s, client._lock_delay_s) == ("k/l", 15, 1)
    client.close()
    with pytest.raises(ValueError):
        ConsulClient("http://consul.test:8500", ttl_s=0)


# --- a real Consul ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_consul(tmp_path_factory.mktemp("consul"))
    yield started
    started.stop()


@pytest.fixture
def clients(server: Server) -> Iterator[Callable[..., ConsulClient]]:
    """Makes clients on a fresh key; closes them all afterwards."""
    key = f"test/{uuid.uuid4().hex[:8]}"
    made: list[ConsulClient] = []

    def make(client_id: str, **options: Any) -> ConsulClient:
        options.setdefault("key", key)
        client = ConsulClient(
            server.endpoint, request_timeout_s=1.0, client_id=client_id, **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def api(server: Server) -> consul.Consul:
    url = httpx.URL(server.endpoint)
    return consul.Consul(host=url.host, port=url.port)


@pytest.mark.integration
def test_campaign_wins_with_token_and_check_agrees(
    server: Server, clients: Callable[..., ConsulClient]
) -> None:
    a = clients("a")
    grant = a.campaign(2.0)
    assert grant is not None and grant.token > 0
    assert 10 * S <= grant.lease_ns < 11 * S
    state = a.check()
    assert state.leader and state.token == grant.token and state.remaining_ns == 10 * S
    # The session has the options asked for, not Consul's 15 s default lock-delay.
    _, info = api(server).session.info(a._session)
    assert info["LockDelay"] == 0 and info["TTL"] == "10s" and info["Behavior"] == "release"
    _, entry = api(server).kv.get(a._key)
    assert entry["Session"] == a._session and entry["ModifyIndex"] == grant.token


@pytest.mark.integration
def test_serf_check_ties_the_session_to_its_node_or_not(
    server: Server, clients: Callable[..., ConsulClient]
) -> None:
    # Consul's default: the session dies with the node's serfHealth check, which can come
    # before its TTL runs out; serf_check=False leaves the TTL as the only way it ends.
    tied, alone = clients("tied"), clients("alone", serf_check=False)
    assert tied.campaign(2.0) is not None
    _, info = api(server).session.info(tied._session)
    assert "serfHealth" in (info.get("NodeChecks") or info.get("Checks") or [])
    tied.resign()
    assert alone.campaign(2.0) is not None
    _, info = api(server).session.info(alone._session)
    assert not info.get("NodeChecks") and not info.get("Checks")
    assert info["TTL"] == "10s" and info["LockDelay"] == 0


@pytest.mark.integration
def test_second_candidate_times_out_with_none_and_its_session_is_gone(
    server: Server, clients: Callable[..., ConsulClient]
) -> None:
    a, b = clients("a"), clients("b")
    assert a.campaign(2.0) is not None
    sessions_before = {s["ID"] for s in api(server).session.list()[1]}
    started = time.monotonic()
    assert b.campaign(1.0) is None
    assert 1.0 <= time.monotonic() - started < 2.0
    sessions_after = {s["ID"] for s in api(server).session.list()[1]}
    assert sessions_after == sessions_before  # b's session was destroyed
    assert not b.check().leader
    assert a.check().leader


@pytest.mark.integration
def test_after_resign_the_waiting_candidate_wins_with_higher_token(
    clients: Callable[..., ConsulClient],
) -> None:
    a, b = clients("a"), clients("b")
    first = a.campaign(2.0)
    assert first is not None
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(grant=b.campaign(5.0)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive(), "b must wait while a leads"
    resigned = time.monotonic()
    a.resign()
    waiter.join(timeout=6)
    second = result["grant"]
    assert second is not None and second.token > first.token
    assert time.monotonic() - resigned < 1.0  # woken by the blocking query, not polling
    assert not a.check().leader
    state = b.check()
    assert state.leader and state.token == second.token


@pytest.mark.integration
def test_unrenewed_session_expires_and_another_wins(clients: Callable[..., ConsulClient]) -> None:
    # A 2 s TTL (the test server's session_ttl_min is 1 s) keeps this near 4 s: Consul
    # invalidates an unrenewed session after up to 2 x TTL.
    a, b = clients("a", ttl_s=2), clients("b", ttl_s=2)
    assert a.campaign(2.0) is not None
    a._stop_renewing()  # a stops renewing, as a paused candidate would
    started = time.monotonic()
    grant = b.campaign(8.0)
    waited = time.monotonic() - started
    assert grant is not None
    assert waited < 2 * 2.0 + 1.0
    state = a.check()  # the renew answers 404: session gone
    assert not state.leader and state.remaining_ns == 0
    assert b.check().leader


@pytest.mark.integration
def test_endpoint_down_is_client_error(tmp_path: Path) -> None:
    nobody = ConsulClient(f"http://127.0.0.1:{free_port()}", request_timeout_s=0.5)
    with pytest.raises(ClientError):
        nobody.campaign(0.5)
    nobody.close()

    server = start_consul(tmp_path / "consul")
    try:
        a = ConsulClient(server.endpoint, request_timeout_s=0.5, key="down")
        assert a.campaign(2.0) is not None
    finally:
        server.stop()
    with pytest.raises(ClientError):
        a.check()
    with pytest.raises(ClientError):
        a.resign()
    a.close()


@pytest.mark.integration
def test_lock_delay_holds_back_the_next_leader(
    server: Server, clients: Callable[..., ConsulClient]
) -> None:
    a, b = clients("a", lock_delay_s=1), clients("b")
    assert a.campaign(2.0) is not None
    a._stop_renewing()
    # Invalidating a's session (as expiry would) releases the lock under lock-delay; a
    # resign would unlock first and skip the delay.
    assert api(server).session.destroy(a._session)
    started = time.monotonic()
    grant = b.campaign(4.0)
    waited = time.monotonic() - started
    assert grant is not None
    assert 0.8 <= waited < 1.6
