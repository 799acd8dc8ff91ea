"""Target registry: a target's name (as in `--target`) to the class that runs it.

A new target is one module plus one line in `TARGETS`. Names the command line accepts
but that have no entry yet are refused with the reason in `NOT_YET`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.targets.base import (
    CandidateSpec,
    ClockControl,
    MemberView,
    Target,
    TargetError,
)
from harness.targets.reference import ReferenceTarget

TARGETS: dict[str, Callable[..., Target]] = {
    "reference": ReferenceTarget,
}

NOT_YET: dict[str, str] = {
    "etcd": "the etcd target runs in containers, which this version cannot start yet",
    "consul": "the consul target runs in containers, which this version cannot start yet",
}


def make_target(name: str, server: Mapping[str, Any] | None, source: str = "server") -> Target:
    if name in NOT_YET:
        raise TargetError(f"--target {name}: {NOT_YET[name]}")
    try:
        factory = TARGETS[name]
    except KeyError:
        raise TargetError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None
    return factory(server, source)


__all__ = [
    "NOT_YET",
    "TARGETS",
    "CandidateSpec",
    "ClockControl",
    "MemberView",
    "Target",
    "TargetError",
    "make_target",
]
