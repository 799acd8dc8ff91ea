"""Helpers shared by the nemeses: node choice from a plan's pick, settings validation
(a harness.validation Reader per nemesis),
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
from harness.errors import HarnessError
from harness.nemesis.base import Cluster, FaultPlan
from harness.validation import Reader

log = logging.getLogger(__name__)

T = TypeVar("T")

# Which nodes a fault hits. "follower" is any node but the current leader.
# `leader` is the node of the server-level leader (status probe); `holder` the node whose
# candidate holds the election now (they differ for etcd and Consul).
TARGETS: tuple[str, ...] = (
    "one", "leader", "holder", "follower", "minority", "majority", "all"
)  # fmt: skip
PROCESSES: tuple[str, ...] = ("member", "candidate", "both")


class FaultError(HarnessError, RuntimeError):
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
    elif any(n.name == target for n in nodes):
        # An explicit schedule may name the node itself (nemesis/explicit.py).
        chosen = [n for n in nodes if n.name == target]
    else:
        raise ValueError(
            f"unknown node target {target!r}; expected one of {', '.join(TARGETS)} "
            f"or a node name ({', '.join(n.name for n in nodes)})"
        )
    order = {n.name: i for i, n in enumerate(nodes)}
    return sorted(chosen, key=lambda n: order[n.name]), note


def settings_reader(
    nemesis: str, settings: Mapping[str, Any] | None, allowed: Mapping[str, str]
) -> Reader:
    """A Reader over one nemesis's settings (key path `nemesis.NAME.`, as in a run file),
    refusing a setting it does not know and listing the known ones with what they take."""
    r = Reader(settings, "nemesis settings", f"nemesis.{nemesis}.")
    r.only(allowed)
    return r


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


def run_scripts(cluster: Cluster, scripts: Mapping[str, str], what: str, tool: str) -> None:
    """Run each node's shell script (by node name) on all of them at once; FaultError
    naming every node that failed, with its exit status and output ("partition start
    failed: n1: partition: iptables on n1 failed (2): ...")."""
    nodes = [n for n in cluster.nodes if n.name in scripts]

    def run(node: Node) -> None:
        r = cluster.backend.run(node, ["sh", "-c", scripts[node.name]])
        if r.returncode != 0:
            raise FaultError(
                f"{tool} on {node.name} failed ({r.returncode}): "
                f"{(r.stderr or r.stdout).strip()}"
            )

    errors = [f"{n.name}: {e}" for n, e in on_nodes(nodes, run) if isinstance(e, Exception)]
    if errors:
        raise FaultError(f"{what} failed: " + "; ".join(errors))


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


# How often each target is drawn, relative to the others (nemesis setting `weights`).
# The holder's and the leader's node and a power cut (`all`) are the faults that find
# bugs; each is drawn three times as often as the others (a 30 s run of the reference
# elector holds about eight kills, tests/nemesis/test_weights.py measures the odds).
DEFAULT_WEIGHTS: Mapping[str, int] = {"holder": 3, "leader": 3, "all": 3}
MAX_WEIGHT = 100


def read_weights(
    r: Reader,
    chosen: Sequence[str],
    allowed: Sequence[str] = TARGETS,
    defaults: Mapping[str, int] = DEFAULT_WEIGHTS,
) -> dict[str, int]:
    """`weights: {name: integer}` over the chosen targets or modes (one not named weighs
    its value in `defaults`, else 1); at least one chosen name must weigh more than 0."""
    given = r.section("weights")
    given.only(allowed)
    weights = {t: given.integer(t, defaults.get(t, 1), 0, MAX_WEIGHT) for t in chosen}
    if not any(weights.values()):
        raise r.problem("weights", f"every chosen one ({', '.join(chosen)}) weighs 0")
    return weights


class ProcessNemesis:
    """What pause and kill share: their modes are which processes of a node they hit
    (member, candidate, both), their targets which nodes, drawn by their weights from a
    seeded bag (the schedule reads `target_weights`). A subclass names itself, its start
    event and its fault class, and says whether it can run (`refusal`)."""

    name: str
    # Pause and kill share one timeline with partition and lossy (nemesis/schedule.py):
    # they take turns and never overlap, because a kill that lands on a frozen process
    # ends the pause that was the point (a candidate frozen past its lease, woken to act
    # on a stale belief), and a pause beside a partition of another node takes a small
    # cluster's quorum away.
    timeline = "node"
    event: str
    fault_class: Any  # (cluster, nodes, processes, event value) -> fault with apply/heal
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(PROCESSES)}",
        "targets": f"a list of {', '.join(TARGETS)}",
        "weights": "a mapping of target to an integer weight, 0 to 100 (default: holder, "
        "leader and all 3, the others 1)",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        r = settings_reader(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = r.subset("modes", PROCESSES, PROCESSES)
        self.targets = r.subset("targets", TARGETS, TARGETS)
        self.target_weights = read_weights(r, self.targets)

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        return {}  # the target comes from the schedule's weighted bag (target_weights)

    def fault_value(self, nodes: list[Node], plan: FaultPlan) -> dict[str, Any]:
        """What a subclass adds to the start event's value (and its fault reads)."""
        return {}

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
        value.update(self.fault_value(nodes, plan))
        fault = self.fault_class(cluster, nodes, plan.mode, value)
        start_or_undo(cluster, self.event, value, fault.apply, fault.heal)
        return fault
