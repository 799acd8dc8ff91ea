"""EtcdClient: gateway parsing and error mapping (mock transport), and election semantics
against a real one-member etcd (3.5.16 and 3.4.23) on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.workloads.clients import ClientError, make_client
from harness.workloads.clients.etcd import EtcdAnswerError, EtcdClient, b64, int_field, post, unb64
from tests.servers import Server, free_port, start_etcd

S = 1_000_000_000

# --- no server: parsing and error mapping --------------------------------------------


def test_bytes_and_int_fields() -> None:
    assert b64("harness-leader") == "aGFybmVzcy1sZWFkZXI="
    assert unb64("aGFybmVzcy1sZWFkZXI=") == b"harness-leader"
    assert unb64(None) == b""
    assert int_field({"rev": "9223372036854775807"}, "rev") == 2**63 - 1
    assert int_field({"rev": 5}, "rev") == 5
    assert int_field({}, "TTL") == 0  # at its default, a field is omitted
    with pytest.raises(ClientError):
        int_field({"rev": "x"}, "rev")


def mock_http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://etcd.test", transport=httpx.MockTransport(handler))


def test_post_unwraps_stream_results_and_maps_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/stream":
            return httpx.Response(200, text='{"result":{"ID":"7","TTL":"5"}}\n')
        if path == "/stream-error":
            return httpx.Response(200, text='{"error":{"http_code":404,"message":"gone"}}\n')
        if path == "/no-leader":
            return httpx.Response(500, json={"code": 2, "message": "election: no leader"})
        if path == "/garbage":
            return httpx.Response(200, text="<html>")
        raise httpx.ConnectError("refused", request=request)

    http = mock_http(handler)
    assert post(http, "/stream", {}, 1.0) == {"ID": "7", "TTL": "5"}
    with pytest.raises(EtcdAnswerError) as err:
        post(http, "/stream-error", {}, 1.0)
    assert err.value.status == 404 and err.value.message == "gone"
    with pytest.raises(EtcdAnswerError) as err:
        post(http, "/no-leader", {}, 1.0)
    assert err.value.status == 500 and "no leader" in err.value.message
    with pytest.raises(ClientError):
        post(http, "/garbage", {}, 1.0)
    with pytest.raises(ClientError):
        post(http, "/down", {}, 1.0)


class FakeEtcd:
    """Answers the gateway calls the client makes; `campaign`, `revoke`, `keepalive_ttl`
    and `leader` choose the answers."""

    def __init__(self) -> None:
        self.campaign: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            200, json={"leader": {"name": "bg==", "key": "bi83", "rev": "42", "lease": "7"}}
        )
        self.revoke: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            200, json={}
        )
        self.keepalive_ttl: str | None = "5"
        self.leader: httpx.Response = httpx.Response(
            200, json={"kv": {"key": "bi83", "create_revision": "42", "lease": "7"}}
        )
        self.bodies: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.bodies.setdefault(path, []).append(json.loads(request.content or b"{}"))
        if path == "/v3/lease/grant":
            return httpx.Response(200, json={"ID": "7", "TTL": "5"})
        if path == "/v3/lease/keepalive":
            result: dict[str, Any] = {"ID": "7"}
            if self.keepalive_ttl is not None:
                result["TTL"] = self.keepalive_ttl
            return httpx.Response(200, text=json.dumps({"result": result}) + "\n")
        if path == "/v3/election/campaign":
            return self.campaign(request)
        if path == "/v3/election/leader":
            return self.leader
        if path == "/v3/lease/revoke":
            return self.revoke(request)
        return httpx.Response(200, json={})


@pytest.fixture
def fake() -> Iterator[tuple[FakeEtcd, EtcdClient]]:
    etcd = FakeEtcd()
    client = EtcdClient("http://etcd.test", client_id="p4", election="n")
    client._http = mock_http(etcd)
    client._ka_http = mock_http(etcd)
    yield etcd, client
    client.close()


def test_campaign_sends_base64_and_string_ints(fake: tuple[FakeEtcd, EtcdClient]) -> None:
    etcd, client = fake
    grant = client.campaign(1.0)
    assert grant is not None and grant.token == 42
    # Counted from the call, so at least the granted TTL (5 s), not the asked-for 2 s.
    assert 5 * S <= grant.lease_ns < 6 * S
    assert etcd.bodies["/v3/lease/grant"] == [{"TTL": "2"}]
    assert etcd.bodies["/v3/election/campaign"] == [{"name": "bg==", "lease": "7", "value": "cDQ="}]


def test_check_reads_leader_key_and_lease(fake: tuple[FakeEtcd, EtcdClient]) -> None:
    etcd, client = fake
    assert client.campaign(1.0) is not None
    assert client.check().leader
    assert client.check().token == 42 and client.check().remaining_ns == 5 * S
    etcd.leader = httpx.Response(200, json={"kv": {"key": "b3RoZXI=", "create_revision": "50"}})
    assert not client.check().leader
    etcd.leader = httpx.Response(500, json={"code": 2, "message": "election: no leader"})
    assert not client.check().leader
    etcd.leader = httpx.Response(503, json={"code": 14, "message": "unavailable"})
    with pytest.raises(ClientError):
        client.check()
    etcd.keepalive_ttl = None  # a keepalive answer without TTL: the lease is gone
    assert client.check().leader is False


def test_failed_campaign_is_none_when_revoke_confirms(fake: tuple[FakeEtcd, EtcdClient]) -> None:
    etcd, client = fake

    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("campaign", request=request)

    etcd.campaign = time_out
    assert client.campaign(0.1) is None
    etcd.revoke = lambda r: httpx.Response(404, json={"code": 5, "message": "lease not found"})
    assert client.campaign(0.1) is None  # already gone counts as confirmed


def test_failed_campaign_with_unconfirmed_revoke_is_unknown(
    fake: tuple[FakeEtcd, EtcdClient],
) -> None:
    etcd, client = fake

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    etcd.campaign = refuse
    etcd.revoke = refuse
    with pytest.raises(ClientError, match="revoke"):
        client.campaign(0.1)


def test_registry_passes_adapter_options() -> None:
    client = make_client(
        "etcd", "http://etcd.test", request_timeout_s=0.5, client_id="p4", election="e", ttl_s=3
    )
    assert isinstance(client, EtcdClient)
    assert client._election == "e" and client._ttl_s == 3 and client._timeout == 0.5
    client.close()
    with pytest.raises(ValueError):
        EtcdClient("http://etcd.test", ttl_s=1.5)


# --- a real etcd ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["3.5.16", "3.4.23"])
def etcd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_etcd(request.param, tmp_path_factory.mktemp(f"etcd-{request.param}"))
    yield server
    server.stop()


@pytest.fixture
def clients(etcd: Server) -> Iterator[Callable[..., EtcdClient]]:
    """Makes clients on a fresh election name; closes them all afterwards."""
    election = f"test-{uuid.uuid4().hex[:8]}"
    made: list[EtcdClient] = []

    def make(client_id: str, **options: Any) -> EtcdClient:
        options.setdefault("election", election)
        client = EtcdClient(etcd.endpoint, request_timeout_s=1.0, client_id=client_id, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def election_keys(endpoint: str, election: str) -> list[bytes]:
    prefix = election + "/"
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    answer = httpx.post(
        endpoint + "/v3/kv/range", json={"key": b64(prefix), "range_end": b64(end)}
    ).json()
    return [unb64(kv["key"]) for kv in answer.get("kvs", [])]


@pytest.mark.integration
def test_campaign_wins_with_token_and_check_agrees(clients: Callable[..., EtcdClient]) -> None:
    a = clients("a")
    grant = a.campaign(2.0)
    assert grant is not None and grant.token > 0
    assert 2 * S <= grant.lease_ns < 3 * S
    state = a.check()
    # The leader kv's create_revision is the campaign's leader.rev.
    assert state.leader and state.token == grant.token
    assert state.remaining_ns == 2 * S


@pytest.mark.integration
def test_too_small_ttl_is_raised_by_etcd(clients: Callable[..., EtcdClient]) -> None:
    a = clients("a", ttl_s=1)
    grant = a.campaign(2.0)
    # etcd's minimum TTL here (1.5 x its 1 s election timeout, rounded up) is 2 s.
    assert grant is not None and grant.lease_ns >= 2 * S
    assert a.check().remaining_ns == 2 * S


@pytest.mark.integration
def test_second_candidate_times_out_with_none_and_its_key_is_gone(
    etcd: Server, clients: Callable[..., EtcdClient]
) -> None:
    a, b = clients("a"), clients("b")
    assert a.campaign(2.0) is not None
    started = time.monotonic()
    assert b.campaign(1.0) is None
    assert 1.0 <= time.monotonic() - started < 2.5
    assert election_keys(etcd.endpoint, a._election) == [unb64(a._leader["key"])]
    assert not b.check().leader


@pytest.mark.integration
def test_after_resign_the_waiting_candidate_wins_with_higher_token(
    clients: Callable[..., EtcdClient],
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
    assert time.monotonic() - resigned < 1.0
    assert not a.check().leader
    state = b.check()
    assert state.leader and state.token == second.token


@pytest.mark.integration
def test_unrenewed_lease_expires_and_another_wins(clients: Callable[..., EtcdClient]) -> None:
    a, b = clients("a"), clients("b")
    assert a.campaign(2.0) is not None
    a._stop_keepalive()  # a stops renewing, as a paused candidate would
    started = time.monotonic()
    grant = b.campaign(6.0)
    waited = time.monotonic() - started
    assert grant is not None
    # The lease (TTL 2 s) was last renewed at most TTL/3 before renewals stopped.
    assert waited < 2.0 + 1.0
    state = a.check()
    assert not state.leader and state.remaining_ns == 0
    assert b.check().leader


@pytest.mark.integration
def test_endpoint_down_is_client_error(tmp_path: Path) -> None:
    nobody = EtcdClient(f"http://127.0.0.1:{free_port()}", request_timeout_s=0.5)
    with pytest.raises(ClientError):
        nobody.campaign(0.5)
    nobody.close()

    server = start_etcd("3.5.16", tmp_path / "etcd")
    try:
        a = EtcdClient(server.endpoint, request_timeout_s=0.5, election="down")
        assert a.campaign(2.0) is not None
    finally:
        server.stop()
    with pytest.raises(ClientError):
        a.check()
    with pytest.raises(ClientError):
        a.resign()
    a.close()
