"""The one exception the image builder raises: something a person must fix, said plainly.

No docker daemon, Debian's archive unreachable, a signature that does not verify, a pinned
version the archive no longer has: each becomes an `ImageError` whose message names the
step and the cause. `harness image build` prints it and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import HarnessError

Progress = Callable[[str], None] | None
"""Receives one line per build step ("fetching etcd-server 3.5.16-4 (trixie)", ...)."""


class ImageError(HarnessError):
    """The node image (or one of its inputs) could not be built or found."""


def report(progress: Progress, message: str) -> None:
    """Send one step message to `progress`, if anyone listens."""
    if progress is not None:
        progress(message)
