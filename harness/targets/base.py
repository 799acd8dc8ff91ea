"""The target seam: how a system under test is started on nodes and how it is observed.

A `Target` starts and stops one member per node and says how a candidate on that node
reaches its member; a `StatusProbe` asks one member for its own view (leader, term).
What a target cannot do (for example skew the clock of a Go program) it refuses through
`ClockControl` not being offered: nemeses check for the optional protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.backends.base import Backend, Daemon, Node


class TargetError(RuntimeError):
    """The target could not be configured or started; the message says why."""


@dataclass(frozen=True)
class MemberView:
    """One member's own answer to "who leads, in which term"."""

    node: str
    leader: str | None
    term: int


@dataclass(frozen=True)
class CandidateSpec:
    """How a candidate on a node talks to the system: passed to the workload program."""

    adapter: str  # the workload's adapter name, e.g. "reference"
    endpoint: str  # where the candidate reaches its member, e.g. "http://10.213.4.11:7100"
    settings: dict[str, Any]  # workload defaults for this target (lease margin, ...)
    # Keyword options for the adapter's client (lease TTL, election name, ...): passed to
    # the candidate as --adapter-options JSON and on to `make_client`.
    options: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """Installs, configures, starts and stops a system's members on a run's nodes."""

    name: str

    @property
    def stale_grace_ns(self) -> int:
        """How long a deposed member may go on calling itself leader (the stale-leader
        rule's grace), from the target's own timing."""
        ...

    @property
    def nemesis_defaults(self) -> dict[str, dict[str, Any]]:
        """Nemesis settings this target needs by default (the run's YAML overrides them),
        e.g. which processes a clock fault reaches."""
        ...

    def setup(self, backend: Backend, nodes: Sequence[Node], run_dir: Path) -> None:
        """Write configuration for every node; nothing starts yet."""
        ...

    def start_member(self, node: Node) -> Daemon:
        """Start (or restart after a kill) the member on `node`; returns its daemon."""
        ...

    def candidate(self, node: Node) -> CandidateSpec: ...

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        """The member's own view, or None if it did not answer in time."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ClockControl(Protocol):
    """Optional: the target's members read a clock the harness can skew on a node."""

    def member_clock_file(self, node: Node) -> str:
        """Path, on the node, of the member's clock control file (harness.skewclock)."""
        ...
