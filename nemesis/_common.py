"""Helpers shared by the nemeses: node choice from a plan's pick, settings validation,
running a command on several nodes at once, and recording a failed start.

Node choice is a pure function of the cluster's node list, the plan's `pick` and (for
leader-aware targets) `cluster.leader()`, so a seed replays the same faults on the same
nodes whenever the cluster looks the same.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from harness.backends.base import Node
from nemesis.base import Cluster, FaultPlan

log = logging.getLogger(__name__)

T = TypeVar("T")

# Which nodes a fault hits. "follower" is any node but the current leader.
# `leader` is the node of the server-level leader (status probe); `holder` the node whose
# candidate holds the election now (they differ for etcd and Consul).
TARGETS: tuple[str, ...] = (
    "one", "leader", "holder", "follower", "minority", "majority", "all"
)  # fmt: skip
PROCESSES: tuple[str, ...] = ("member", "candidate", "both")


class FaultError(RuntimeError):
    """A fault could not be started or healed; the message says which, where and why."""


def majority(n: int) -> int:
    return n // 2 + 1


def choose_nodes(cluster: Cluster, target: str, pick: int) -> tuple[list[Node], str | None]:
    """The nodes `target` names, chosen with `pick`, in cluster order, and a note when a
    leader-aware choice had to fall back (no leader known, or no follower left)."""
    nodes = list(cluster.nodes)
    if not nodes:
        raise FaultError("no nodes to choose from")
    rng = random.Random(pick)
    note: str | None = None
    if target == "holder":
        holder = cluster.holder()
        if holder is None:
            chosen = [rng.choice(nodes)]
            note = f"no candidate holds the election: chose {chosen[0].name} by pick"
        else:
            chosen = [holder]
    elif target in ("leader", "follower"):
        leader = cluster.leader()
        leader_node = next((n for n in nodes if leader is not None and n.name == leader.name), None)
        if leader_node is None:
            chosen = [rng.choice(nodes)]
            note = f"no leader known: chose {chosen[0].name} by pick instead of the {target}"
        elif target == "leader":
            chosen = [leader_node]
        else:
            others = [n for n in nodes if n.name != leader_node.name]
            if others:
                chosen = [rng.choice(others)]
            else:
                chosen = [leader_node]
                note = f"only node {leader_node.name} exists: it is the leader"
    elif target == "one":
        chosen = [rng.choice(nodes)]
    elif target == "minority":
        chosen = rng.sample(nodes, max(1, (len(nodes) - 1) // 2))
    elif target == "majority":
        chosen = rng.sample(nodes, majority(len(nodes)))
    elif target == "all":
        chosen = nodes
    else:
        raise ValueError(f"unknown node target {target!r}; expected one of {', '.join(TARGETS)}")
    order = {n.name: i for i, n in enumerate(nodes)}
    return sorted(chosen, key=lambda n: order[n.name]), note


def check_keys(nemesis: str, settings: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
    """Reject a setting this nemesis does not know, naming it and what was expected."""
    if not isinstance(settings, Mapping):
        raise ValueError(
            f"nemesis {nemesis}: settings must be a mapping of names to values, "
            f"got {type(settings).__name__}"
        )
    for key in settings:
        if key not in allowed:
            expected = "; ".join(f"{k} ({v})" for k, v in allowed.items()) or "no settings"
            raise ValueError(f"nemesis {nemesis}: unknown setting {key!r}; expected {expected}")


def subset(nemesis: str, key: str, value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    """A non-empty list of names drawn from `allowed` (a bare string means one name)."""
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not items
        or any(not isinstance(v, str) or v not in allowed for v in items)
    ):
        raise ValueError(
            f"nemesis {nemesis}: setting {key!r} must be a non-empty list of "
            f"{', '.join(allowed)}; got {value!r}"
        )
    # Keep the canonical order, so the schedule does not depend on how a user wrote it.
    return tuple(a for a in allowed if a in items)


def number(nemesis: str, key: str, value: Any, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo < value <= hi:
        raise ValueError(f"nemesis {nemesis}: setting {key!r} must be a number in ({lo}, {hi}]")
    return float(value)


def on_nodes(nodes: Sequence[Node], fn: Callable[[Node], T]) -> list[tuple[Node, T | Exception]]:
    """Apply `fn` to every node at once: a partition should begin (and end) on all nodes
    within milliseconds, not one namespace after another. Errors are returned, not raised,
    so a caller can finish the other nodes first."""

    def call(node: Node) -> T | Exception:
        try:
            return fn(node)
        except Exception as exc:
            return exc

    if len(nodes) <= 1:
        return [(n, call(n)) for n in nodes]
    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="nemesis") as pool:
        return list(zip(nodes, pool.map(call, nodes), strict=True))


class StartFailed(FaultError):
    """A fault's start failed and undoing it failed too: `heal` retries the undo (the
    runner, which got no `Fault` back, should call it before tearing down)."""

    def __init__(self, message: str, heal: Callable[[], None]) -> None:
        super().__init__(message)
        self.heal = heal


def start_or_undo(
    cluster: Cluster,
    f: str,
    value: dict[str, Any],
    apply: Callable[[], None],
    heal: Callable[[], None],
) -> None:
    """Apply a fault and record its start; if applying fails halfway, record the start
    with the error (so the history pairs it with the heal's event), heal what was done,
    and re-raise the original error (or StartFailed if the heal failed as well)."""
    try:
        apply()
    except BaseException as exc:
        cluster.record(f, {**value, "error": f"{type(exc).__name__}: {exc}"})
        try:
            heal()
        except Exception as heal_exc:
            log.error("undoing a half-started %s failed: %s", f, heal_exc)
            raise StartFailed(
                f"{f} failed: {exc}; undoing it failed too: {heal_exc}", heal
            ) from exc
        raise
    cluster.record(f, value)


class ProcessNemesis:
    """What pause and kill share: their modes are which processes of a node they hit
    (member, candidate, both), their targets which nodes. A subclass names itself, its
    start event and its fault class, and says whether it can run (`refusal`)."""

    name: str
    event: str
    fault_class: Any  # (cluster, nodes, processes, event value) -> fault with apply/heal
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(PROCESSES)}",
        "targets": f"a list of {', '.join(TARGETS)}",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = {} if settings is None else settings
        check_keys(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = subset(
            self.name, "modes", settings.get("modes", PROCESSES), PROCESSES
        )
        self.targets = subset(self.name, "targets", settings.get("targets", TARGETS), TARGETS)

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        return {"target": rng.choice(self.targets)}

    def start(self, cluster: Cluster, plan: FaultPlan) -> Any:
        target = plan.params.get("target", "one")
        nodes, note = choose_nodes(cluster, target, plan.pick)
        value: dict[str, Any] = {
            "nodes": [n.name for n in nodes],
            "processes": plan.mode,
            "target": target,
        }
        if note:
            value["note"] = note
        fault = self.fault_class(cluster, nodes, plan.mode, value)
        start_or_undo(cluster, self.event, value, fault.apply, fault.heal)
        return fault
