"""The nemesis seam: a fault with start and heal, planned by a seeded schedule.

A `Nemesis` turns one `FaultPlan` (pure data, chosen from the seed) into an active
`Fault` by acting on the cluster only through the backend's "run on node", signals to
daemons and the cluster's restart hooks; `Fault.heal` undoes it. Both record nemesis
events in the history. A nemesis that cannot work against a target or backend says so
through `refusal` before the run starts, and is never run as a no-op.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.backends.base import Backend, Daemon, Node
from harness.errors import HarnessError


class NemesisRefused(HarnessError, RuntimeError):
    """This fault cannot work here; the message says which fault, where, and why."""


@dataclass(frozen=True)
class FaultPlan:
    """One scheduled fault. Everything here is a function of the run's seed; `pick` is a
    seeded number the nemesis uses to choose nodes among those it can see at run time."""

    nemesis: str
    mode: str
    at_s: float  # seconds after the workload started
    duration_s: float
    pick: int
    params: dict[str, Any] = field(default_factory=dict)


class Cluster(Protocol):
    """What a nemesis may touch: provided by the runner."""

    # Read-only to a nemesis: properties, so that a cluster holding a list satisfies it.
    @property
    def backend(self) -> Backend: ...

    @property
    def nodes(self) -> Sequence[Node]: ...

    def member(self, node: Node) -> Daemon | None:
        """The member daemon running on `node` now (None while it is down)."""
        ...

    def candidate(self, node: Node) -> Daemon | None:
        """The candidate daemon running on `node` now (None while it is down)."""
        ...

    def kill_member(self, node: Node) -> None:
        """SIGKILL the member and wait for it to be gone (restart with `start_member`)."""
        ...

    def start_member(self, node: Node) -> None: ...

    def kill_candidate(self, node: Node) -> None:
        """SIGKILL the candidate; the runner records `crash` for its process id."""
        ...

    def start_candidate(self, node: Node) -> None:
        """Start a new candidate on `node`, with a new process id."""
        ...

    def leader(self) -> Node | None:
        """The node that the latest status observations agree leads, if any."""
        ...

    def holder(self) -> Node | None:
        """The node whose candidate believes it holds the election now, if any."""
        ...

    def member_clock_file(self, node: Node) -> str | None:
        """Path on the node of the member's clock control file; None if not skewable."""
        ...

    def candidate_clock_file(self, node: Node) -> str:
        """Path on the node of the candidate's clock control file."""
        ...

    def record(self, f: str, value: dict[str, Any]) -> None:
        """Record a nemesis event (process "nemesis", type "info") now."""
        ...


class Fault(Protocol):
    """An active fault. `heal` is idempotent and safe to call from any exit path."""

    description: str

    def heal(self) -> None: ...


@dataclass(frozen=True)
class ReportBand:
    """How the report draws this nemesis's faults: the history event that starts one, the
    event that heals it, the band's kind (its lane class) and its colour (CSS)."""

    kind: str
    start: str
    heal: str
    color: str


class Nemesis(Protocol):
    name: str
    modes: tuple[str, ...]
    report_band: ReportBand

    def refusal(self, cluster: Cluster) -> str | None:
        """Why this nemesis cannot run against this cluster, or None if it can."""
        ...

    def start(self, cluster: Cluster, plan: FaultPlan) -> Fault: ...


@runtime_checkable
class BracketsFaults(Protocol):
    """Optional: a nemesis whose faults matter across the elections that other faults
    cause (a clock skew) brackets the faults of the timeline it names in `brackets` when
    that timeline is in the run: each of its faults begins shortly before one of them and
    ends shortly after it (nemesis/schedule.py), instead of keeping a timeline of its own.
    """

    brackets: str

    def bracket_params(self, aim: str, rng: random.Random) -> tuple[str, dict[str, Any]] | None:
        """The mode and params of the fault that brackets one aimed at `aim` (`leader` or
        `holder`: what that fault takes away), or None to draw one as usual."""
        ...


def timeline_of(nem: Nemesis) -> str:
    """The timeline a nemesis's faults take turns on: its `timeline`, else its own name."""
    return getattr(nem, "timeline", None) or nem.name


def brackets_in(nemeses: Sequence[Nemesis]) -> dict[str, str]:
    """The nemeses of a run that bracket another timeline's faults instead of keeping
    their own (name -> that timeline): those whose `brackets` timeline is in the run."""
    timelines = {timeline_of(n) for n in nemeses if not isinstance(n, BracketsFaults)}
    return {
        n.name: n.brackets
        for n in nemeses
        if isinstance(n, BracketsFaults) and n.brackets in timelines
    }
