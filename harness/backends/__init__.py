"""Backend registry: a backend's name (as in `--backend`) to the class that provides it.

A new backend is one module plus one line in `BACKENDS`. Backend modules are imported
here only for their classes; nothing is created until `provision`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, BackendError, BackendUnavailable
from harness.backends.docker import DockerBackend
from harness.backends.local import LocalBackend

__all__ = ["BACKENDS", "Backend", "BackendError", "BackendUnavailable", "create_backend"]

BACKENDS: dict[str, Callable[..., Backend]] = {
    "docker": DockerBackend,
    "local": LocalBackend,
}


def create_backend(
    name: str, run_id: str, state_dir: Path | str | None = None, **options: Any
) -> Backend:
    """An unprovisioned backend for one run; BackendUnavailable if it cannot run here.
    `options` go to the backend's constructor (e.g. the docker backend's `progress`)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(run_id, state_dir=state_dir, **options)
