"""Target registry: a target's name (as in `--target`) to the class that runs it.

A new target is one module plus one line in `TARGETS`.
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
from harness.targets.consul import ConsulTarget
from harness.targets.etcd import EtcdTarget
from harness.targets.reference import ReferenceTarget

TARGETS: dict[str, Callable[..., Target]] = {
    "consul": ConsulTarget,
    "etcd": EtcdTarget,
    "reference": ReferenceTarget,
}


def make_target(name: str, server: Mapping[str, Any] | None, source: str = "server") -> Target:
    try:
        factory = TARGETS[name]
    except KeyError:
        raise TargetError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None
    return factory(server, source)


__all__ = [
    "TARGETS",
    "CandidateSpec",
    "ClockControl",
    "MemberView",
    "Target",
    "TargetError",
    "make_target",
]
