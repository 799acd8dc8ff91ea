"""Election clients by adapter name: one module plus one line here per target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workloads.clients.base import ClientError, ElectionClient, Grant, LeaseState
from workloads.clients.consul import ConsulClient
from workloads.clients.etcd import EtcdClient
from workloads.clients.reference import ReferenceClient

CLIENTS: dict[str, Callable[..., ElectionClient]] = {
    "reference": ReferenceClient,
    "etcd": EtcdClient,
    "consul": ConsulClient,
}


def make_client(adapter: str, endpoint: str, **options: Any) -> ElectionClient:
    try:
        factory = CLIENTS[adapter]
    except KeyError:
        raise ValueError(f"unknown adapter {adapter!r}; known: {', '.join(CLIENTS)}") from None
    return factory(endpoint, **options)


__all__ = ["CLIENTS", "ClientError", "ElectionClient", "Grant", "LeaseState", "make_client"]
