"""Backend registry: a backend's name (as in `--backend`) to the class that provides it.

A new backend is one module plus one line in `BACKENDS`. Backend modules are imported
here only for their classes; nothing is created until `provision`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.backends.base import Backend, BackendError, BackendUnavailable
from harness.backends.local import LocalBackend

BACKENDS: dict[str, Callable[..., Backend]] = {
    "local": LocalBackend,
}

# Names the command line accepts that this version cannot provide yet, and why.
NOT_YET: dict[str, str] = {
    "docker": "the docker backend is not in this version yet; use --backend local",
}


def create_backend(name: str, run_id: str, state_dir: Path | str | None = None) -> Backend:
    """An unprovisioned backend for one run; BackendUnavailable if it cannot run here."""
    if name in NOT_YET:
        raise BackendUnavailable(f"--backend {name}: {NOT_YET[name]}")
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(run_id, state_dir=state_dir)
