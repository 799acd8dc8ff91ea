"""Opening a report in headless Chromium: for the browser tests and bench/report.py.

Each call starts one Chromium with a throw-away profile in its own session, waits for it,
and on a timeout kills that session's process group (its own id, nothing broader), so
no browser is ever left running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """The path of a Chromium binary on PATH, or None."""
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> str:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",  # we run as root on CI, where the sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ]
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            # Helpers Chromium forked may outlive it briefly: end its own group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with status {proc.returncode}")
    return out


def dump_dom(
    page: str | os.PathLike[str], *, timeout: float = 60.0, extra: Sequence[str] = ()
) -> str:
    """The page's DOM, serialised after it loaded (and its first drawing ran). `extra`:
    more Chromium flags, e.g. --virtual-time-budget=MS to let timers run first."""
    return _run([*extra, "--dump-dom", Path(page).resolve().as_uri()], timeout)


def screenshot(
    page: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (1400, 900),
    timeout: float = 60.0,
) -> Path:
    """A PNG of the page's first `size` pixels."""
    out_path = Path(out).resolve()
    _run(
        [
            f"--screenshot={out_path}",
            f"--window-size={size[0]},{size[1]}",
            Path(page).resolve().as_uri(),
        ],
        timeout,
    )
    return out_path
