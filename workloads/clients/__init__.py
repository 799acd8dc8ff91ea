"""Election clients by adapter name: one module plus one line here per target.

An adapter written `module.path:ClassName` is the team's own `ElectionClient`
(`workload.client` in a run's YAML), imported from the candidate's PYTHONPATH and built
as `ClassName(endpoint, request_timeout_s=..., client_id=..., **workload.options)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from harness.workloads.clients.base import ClientError, ElectionClient, Grant, LeaseState
from harness.workloads.clients.consul import ConsulClient
from harness.workloads.clients.etcd import EtcdClient
from harness.workloads.clients.reference import ReferenceClient

CLIENTS: dict[str, Callable[..., ElectionClient]] = {
    "reference": ReferenceClient,
    "etcd": EtcdClient,
    "consul": ConsulClient,
}


def load_client_class(path: str) -> Callable[..., ElectionClient]:
    """`module.path:ClassName` -> the class, with a clear error when it cannot be had."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"client {path!r}: cannot import {module_name!r} ({exc}); put it in "
            "workload.files or workload.requirements"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"client {path!r}: {module_name} has no class {attr!r}")
    missing = [m for m in ("campaign", "check", "resign", "close") if not hasattr(factory, m)]
    if missing:
        raise ValueError(
            f"client {path!r}: not an ElectionClient, missing {', '.join(missing)} "
            "(docs/CANDIDATE.md, 'Your own election client')"
        )
    return factory


def make_client(adapter: str, endpoint: str, **options: Any) -> ElectionClient:
    if ":" in adapter:
        return load_client_class(adapter)(endpoint, **options)
    try:
        factory = CLIENTS[adapter]
    except KeyError:
        raise ValueError(f"unknown adapter {adapter!r}; known: {', '.join(CLIENTS)}") from None
    return factory(endpoint, **options)


__all__ = [
    "CLIENTS",
    "ClientError",
    "ElectionClient",
    "Grant",
    "LeaseState",
    "load_client_class",
    "make_client",
]
