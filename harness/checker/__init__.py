"""The checker: a pure function from a history's events to a verdict (shared/HISTORY.md).

    verdict = check(events, tolerance_ns=0, stale_grace_ns=0)

`valid` is True, False, or "unknown" when the history holds neither an acquire nor a
status event. Malformed input raises `MalformedHistory` with every problem and its line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from harness.checker import rules
from harness.checker.stats import compute_stats
from harness.checker.walk import walk
from harness.history.events import Event, MalformedHistory
from harness.history.reader import read_history
from harness.nogc import gc_paused

VIOLATION_KINDS = (
    "split-brain",
    "duplicate-token",
    "token-regression",
    "stale-write",
    "term-split-brain",
    "stale-leader",
)

Verdict = dict[str, Any]


def check(
    events: Sequence[Event],
    *,
    tolerance_ns: int = 0,
    stale_grace_ns: int = 0,
    source: str | None = None,
) -> Verdict:
    if tolerance_ns < 0 or stale_grace_ns < 0:
        raise ValueError("tolerance and stale-leader grace must be >= 0 ns")
    with gc_paused():
        return _check(events, tolerance_ns, stale_grace_ns, source)


def _check(
    events: Sequence[Event], tolerance_ns: int, stale_grace_ns: int, source: str | None
) -> Verdict:
    w = walk(events, source)
    if w.problems:
        w.problems.sort(key=lambda p: p.line or 0)
        raise MalformedHistory(w.problems)
    violations = (
        rules.split_brain(w, tolerance_ns)
        + rules.duplicate_token(w)
        + rules.token_regression(w)
        + rules.stale_write(w)
        + rules.term_split_brain(w)
        + rules.stale_leader(w, stale_grace_ns)
    )
    violations.sort(key=lambda v: (v["start"], VIOLATION_KINDS.index(v["kind"])))
    # "unknown" only when there is nothing to judge: no acquire and no status at all.
    valid: bool | str = "unknown" if not w.has_acquire and not w.statuses else not violations
    return {
        "valid": valid,
        "violations": violations,
        "stats": compute_stats(w),
        "settings": {"tolerance_ns": tolerance_ns, "stale_grace_ns": stale_grace_ns},
    }


def check_file(
    path: str | os.PathLike[str], *, tolerance_ns: int = 0, stale_grace_ns: int = 0
) -> Verdict:
    source = os.fspath(path)
    return check(
        read_history(path),
        tolerance_ns=tolerance_ns,
        stale_grace_ns=stale_grace_ns,
        source=source,
    )


__all__ = ["VIOLATION_KINDS", "Verdict", "check", "check_file"]
