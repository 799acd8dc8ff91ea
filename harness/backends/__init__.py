"""Backend registry: a backend's name (as in `--backend`) to the class that provides it.

A new backend is one module plus one line in `BACKENDS` (in-tree), or a package of its
own registered under the entry-point group `leader_harness.backends` (harness.plugins).
The class declares what it `offers` (keys of `OFFERS`: shared clock, shared files,
server trees, server packages with dependencies); `backend_offers` reads and checks it
without creating anything. Backend modules are imported here only for their classes;
nothing is created until `provision`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.base import OFFERS, Backend, BackendError, BackendUnavailable
from harness.backends.docker import DockerBackend
from harness.backends.local import LocalBackend
from harness.backends.ssh import SshBackend

__all__ = [
    "BACKENDS",
    "OFFERS",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "all_backends",
    "backend_offers",
    "create_backend",
]

BACKENDS: dict[str, Callable[..., Backend]] = {
    "docker": DockerBackend,
    "local": LocalBackend,
    "ssh": SshBackend,
}


def all_backends() -> dict[str, Callable[..., Backend]]:
    """Built-in backends, then those of installed packages (entry points)."""
    from harness.plugins import BACKEND_GROUP, load

    return load(BACKEND_GROUP, BACKENDS)


def backend_offers(name: str) -> frozenset[str]:
    """What the backend `name` declares it offers; PluginError if the declaration is
    missing or names something unknown (said before any run uses it)."""
    from harness.plugins import PluginError

    factory = all_backends()[name]
    offers = getattr(factory, "offers", None)
    if not isinstance(offers, frozenset) or not offers <= set(OFFERS):
        raise PluginError(
            f"backend {name!r}: `offers` must be a frozenset of {', '.join(OFFERS)}; got {offers!r}"
        )
    return offers


def create_backend(
    name: str, run_id: str, state_dir: Path | str | None = None, **options: Any
) -> Backend:
    """An unprovisioned backend for one run; BackendUnavailable if it cannot run here.
    `options` go to the backend's constructor (e.g. the docker backend's `progress`)."""
    known = all_backends()
    try:
        factory = known[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; known: {', '.join(sorted(known))}") from None
    return factory(run_id, state_dir=state_dir, **options)
