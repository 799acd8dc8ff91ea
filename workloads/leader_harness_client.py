"""leader_harness_client: the harness protocol for an external candidate, in Python.

Standard library only, one file: the harness copies it into every run's program folder
(the program's working directory, on its PYTHONPATH), so `import leader_harness_client`
works on every node without installing anything. The protocol itself is in
docs/CANDIDATE.md; this is one way to speak it.

    from leader_harness_client import Harness

    h = Harness()                        # everything comes from HARNESS_* variables
    h.campaigning()                      # about to ask for leadership
    h.acquired(token)                    # I lead now, with this fencing token
    if h.write(token) is False: ...      # a leader-only write to the protected resource
    h.lost("session expired")            # I no longer believe I lead
    h.releasing(token); h.released()     # resigning
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any


class Harness:
    """Records this process's events and sends its leader-only writes."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.process = int(env["HARNESS_PROCESS"])
        self.node = env["HARNESS_NODE"]
        self.endpoint = env["HARNESS_ENDPOINT"]
        self.endpoints = [e for e in env.get("HARNESS_ENDPOINTS", "").split(",") if e]
        self.resource = env["HARNESS_RESOURCE"].rstrip("/")
        self.election = env.get("HARNESS_ELECTION", "harness-leader")
        self.target = env.get("HARNESS_TARGET", "")
        self.target_options: dict[str, Any] = json.loads(env.get("HARNESS_TARGET_OPTIONS", "{}"))
        self.settings: dict[str, Any] = json.loads(env.get("HARNESS_SETTINGS", "{}"))
        self.seed = int(env.get("HARNESS_SEED", "0"))
        self._t0 = int(env["HARNESS_T0_NS"])
        self._path = env["HARNESS_HISTORY"]
        self._lock = threading.Lock()
        self._last = -1
        self._seq = 0
        # Set when write() found the lease deadline passed and recorded `lost`; cleared
        # by the next acquisition.
        self.deadline_passed = False
        # Appends of whole lines, flushed at once: a SIGKILL loses at most the line
        # being written, which the harness ignores.
        self._file = open(self._path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def now(self) -> int:
        """Nanoseconds on the run's reference clock (the kernel's monotonic clock)."""
        return time.monotonic_ns() - self._t0

    def record(
        self, etype: str, f: str, value: dict[str, Any] | None = None, at: int | None = None
    ) -> int:
        """Append one event; `at` (reference-clock ns) backdates it, never before the last."""
        with self._lock:
            stamp = self.now() if at is None else at
            stamp = max(stamp, self._last + 1)
            self._last = stamp
            event: dict[str, Any] = {"time": stamp, "type": etype, "f": f}
            if value is not None:
                event["value"] = value
            self._file.write(json.dumps(event) + "\n")
            return stamp

    # --- the election ------------------------------------------------------------------

    def campaigning(self) -> None:
        self.record("invoke", "acquire")

    def acquired(self, token: int) -> None:
        self.deadline_passed = False
        self.record("ok", "acquire", {"token": int(token)})

    def not_acquired(self) -> None:
        self.record("fail", "acquire")

    def acquire_unknown(self, error: str = "") -> None:
        self.record("info", "acquire", {"error": error[:200]})

    def lost(self, reason: str = "", at: int | None = None) -> None:
        self.record("info", "lost", {"reason": reason[:200]}, at=at)

    def releasing(self, token: int | None = None) -> None:
        self.record("invoke", "release", None if token is None else {"token": int(token)})

    def released(self) -> None:
        self.record("ok", "release")

    # --- leader-only work ----------------------------------------------------------------

    def write(
        self, token: int, timeout_s: float = 1.0, deadline: int | None = None
    ) -> bool | None:
        """One write with `token`: True applied, False refused (fenced), None unknown.

        `deadline` (time.monotonic_ns() units): a guarded program's lease deadline. The
        reference clock is read before the deadline is checked, so the write's invoke is
        never stamped after it; if it has passed, nothing is sent and `lost` is recorded
        at the deadline; if it passes while the write is in flight (a pause), `lost` is
        recorded at the deadline before the write's outcome. Either way
        `deadline_passed` becomes True: stop acting."""
        at = self.now()
        if deadline is not None and time.monotonic_ns() >= deadline:
            self._lost_at_deadline(deadline)
            return None
        seq = self._seq
        self._seq += 1
        self.record("invoke", "write", {"token": int(token), "seq": seq}, at=at)
        try:
            return self._send(token, seq, timeout_s, deadline)
        finally:
            # Passed after the outcome was recorded: stop now, at the deadline.
            if (
                deadline is not None
                and not self.deadline_passed
                and time.monotonic_ns() >= deadline
            ):
                self._lost_at_deadline(deadline)

    def _lost_at_deadline(self, deadline: int) -> None:
        self.deadline_passed = True
        self.lost("lease deadline passed", at=deadline - self._t0)

    def _send(self, token: int, seq: int, timeout_s: float, deadline: int | None) -> bool | None:
        def late() -> None:
            if deadline is not None and time.monotonic_ns() >= deadline:
                self._lost_at_deadline(deadline)

        body = json.dumps({"token": int(token), "seq": seq, "process": self.process}).encode()
        request = urllib.request.Request(
            self.resource + "/write",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        result: bool | None
        value: dict[str, Any]
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
            etype, value, result = "ok", {"applied_at": int(answer["applied_at"])}, True
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                etype, value, result = "fail", json.loads(exc.read() or b"{}"), False
            else:
                etype, value, result = "info", {"error": f"HTTP {exc.code}"}, None
        except (OSError, ValueError) as exc:
            etype, value, result = "info", {"error": type(exc).__name__}, None
        # Stamped when the answer came, before the deadline check: stamped when recorded,
        # a pause between the two would date it, and the `lost` that may not precede it,
        # after the deadline.
        done = self.now()
        late()
        self.record(etype, "write", value, at=done)
        return result

    def close(self) -> None:
        self._file.close()
