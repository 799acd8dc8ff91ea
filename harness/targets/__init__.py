"""Target registry: a target's name (as in `--target`) to the class that runs it.

A new target is one module plus one line in `TARGETS` (in-tree), or one module in a
package of its own registered under the entry-point group `leader_harness.targets`
(harness.plugins). Everything else (the CLI's and pytest's choices, validation of
`--target` and `target:`, the suite runner) reads `all_targets()`.

`declaration(name)` reads what the target's class declares for the rest (which clock its
members read, what it needs of a backend, its server packages) and refuses a missing or
self-contradicting declaration; `pair_refusal(target, backend)` says, before a run
starts, why a target cannot run on a backend (None if it can).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.backends import OFFERS, all_backends, backend_offers
from harness.errors import ConfigError
from harness.image.servers import ServerPackage
from harness.plugins import TARGET_GROUP, PluginError, load
from harness.targets.base import (
    MEMBER_CLOCKS,
    CandidateSpec,
    ClockControl,
    MemberView,
    Target,
    TargetError,
)
from harness.targets.consul import ConsulTarget
from harness.targets.etcd import EtcdTarget
from harness.targets.reference import ReferenceTarget
from harness.validation import echo

TARGETS: dict[str, Callable[..., Target]] = {
    "consul": ConsulTarget,
    "etcd": EtcdTarget,
    "reference": ReferenceTarget,
}


def all_targets() -> dict[str, Callable[..., Target]]:
    """Built-in targets, then those of installed packages (entry points)."""
    return load(TARGET_GROUP, TARGETS)


def make_target(name: str, server: Mapping[str, Any] | None, source: str = "server") -> Target:
    known = all_targets()
    try:
        factory = known[name]
    except KeyError:
        raise TargetError(f"unknown target {echo(name)}; known: {', '.join(known)}") from None
    declaration(name)
    return factory(server, source)


class UnsupportedPair(ConfigError):
    """A target that cannot run on the chosen backend; the message says why and where it can."""


@dataclass(frozen=True)
class Declaration:
    """What a target's class declares for the registry."""

    name: str
    member_clock: str
    needs: frozenset[str]
    server_packages: tuple[ServerPackage, ...]


def declaration(name: str) -> Declaration:
    """The declarations of target `name`, checked: PluginError naming the target and the
    problem if one is missing or contradicts another (or the class's methods)."""
    factory = all_targets()[name]
    where = f"target {name!r} ({getattr(factory, '__module__', '?')})"
    clock = getattr(factory, "member_clock", None)
    if clock not in MEMBER_CLOCKS:
        raise PluginError(
            f"{where}: `member_clock` must be one of {', '.join(MEMBER_CLOCKS)}, got {clock!r}"
        )
    has_clock_file = callable(getattr(factory, "member_clock_file", None))
    if (clock == "clock-file") != has_clock_file:
        raise PluginError(
            f"{where}: declares member_clock {clock!r} but "
            + ("has no member_clock_file (ClockControl)" if not has_clock_file else
               "implements member_clock_file (ClockControl); declare 'clock-file'")
        )  # fmt: skip
    needs = getattr(factory, "needs", None)
    if not isinstance(needs, frozenset) or not needs <= set(OFFERS):
        raise PluginError(
            f"{where}: `needs` must be a frozenset of {', '.join(OFFERS)}, got {needs!r}"
        )
    packages = getattr(factory, "server_packages", None)
    if not isinstance(packages, tuple) or not all(isinstance(p, ServerPackage) for p in packages):
        raise PluginError(f"{where}: `server_packages` must be a tuple of ServerPackage")
    for package in packages:
        try:
            package.check()
        except ValueError as exc:
            raise PluginError(f"{where}: {exc}") from None
    if any(p.resolve_deps for p in packages) and "server-deps" not in needs:
        raise PluginError(
            f"{where}: a server package resolves its dependencies, so `needs` must name "
            "'server-deps'"
        )
    if packages and not needs & {"server-trees", "server-deps"}:
        raise PluginError(
            f"{where}: it declares server packages, so `needs` must name 'server-trees' "
            "(or 'server-deps')"
        )
    return Declaration(name, clock, needs, packages)


def supported_backends(target: str) -> list[str]:
    """The registered backends that offer everything `target` needs."""
    needs = declaration(target).needs
    return [b for b in all_backends() if needs <= backend_offers(b)]


def pair_refusal(target: str, backend: str) -> str | None:
    """Why `target` cannot run on `backend` (one line), or None if it can."""
    lacking = sorted(declaration(target).needs - backend_offers(backend))
    if not lacking:
        return None
    what = "; ".join(f"{word} ({OFFERS[word]})" for word in lacking)
    can = ", ".join(supported_backends(target)) or "none registered"
    return (
        f"target {target} cannot run on the {backend} backend: it needs {what}, which "
        f"{backend} does not offer; backends that can: {can}"
    )


__all__ = [
    "TARGETS",
    "CandidateSpec",
    "ClockControl",
    "Declaration",
    "MemberView",
    "Target",
    "TargetError",
    "UnsupportedPair",
    "all_targets",
    "declaration",
    "make_target",
    "pair_refusal",
    "supported_backends",
]
