"""The reference elector's client without a server (httpx.MockTransport)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.workloads.clients.reference import ReferenceClient

MS = 1_000_000


def client_with(handler: Any) -> ReferenceClient:
    client = ReferenceClient("http://elector.test", request_timeout_s=1.0, client_id="p1")
    client._http = httpx.Client(
        base_url="http://elector.test", transport=httpx.MockTransport(handler)
    )
    return client


def test_a_grant_after_a_wait_counts_its_lease_from_a_fresh_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/campaign":
            time.sleep(0.3)  # the member became leader only after a while
            return httpx.Response(
                200, json={"leader": True, "token": 5_000_001, "lease_remaining_ns": 205 * MS}
            )
        return httpx.Response(
            200, json={"leader": True, "token": 5_000_001, "lease_remaining_ns": 190 * MS}
        )

    grant = client_with(handler).campaign(2.0)
    assert grant is not None and grant.token == 5_000_001
    # Counted from the call: the 0.3 s wait plus what the fresh read said remains (the
    # campaign answer's 205 ms alone would have ended 0.3 s too early).
    assert 490 * MS <= grant.lease_ns < 900 * MS


def test_a_grant_lost_before_it_could_be_used_is_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/campaign":
            return httpx.Response(200, json={"leader": True, "token": 7, "lease_remaining_ns": 1})
        return httpx.Response(200, json={"leader": False, "token": None})

    assert client_with(handler).campaign(1.0) is None
