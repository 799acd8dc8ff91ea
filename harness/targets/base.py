"""The target seam: how a system under test is started on nodes and how it is observed.

A `Target` starts and stops one member per node and says how a candidate on that node
reaches its member; a `StatusProbe` asks one member for its own view (leader, term).
What a target cannot do (for example skew the clock of a Go program) it refuses through
`ClockControl` not being offered: nemeses check for the optional protocols. A target that
states its `Timing` (`StatesTiming`) gets fault durations that straddle it by default.

Besides the methods, a target class declares, for the registry (harness.targets reads
them without making a target, and refuses a plugin whose declarations are missing or
contradict each other):

- `member_clock`: which clock its members read (`MEMBER_CLOCKS`); "clock-file" means
  it implements `ClockControl`, "kernel" that it must not.
- `needs`: what it needs of a backend (keys of harness.backends.base.OFFERS); a backend
  that does not offer all of it is refused for this target before a run starts.
- `server_packages`: every server package it may put on the nodes
  (harness.image.servers.ServerPackage); `run_packages` (instance) the ones this run's
  settings chose, which the docker backend builds into the run's own image layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.backends.base import Backend, Daemon, Node
from harness.errors import ConfigError, HarnessError
from harness.image.servers import ServerPackage

# Which clock a target's members read; the value of a target class's `member_clock`.
MEMBER_CLOCKS: dict[str, str] = {
    "clock-file": "the harness's clock control file on the node (ClockControl): the clock "
    "nemesis can skew members",
    "kernel": "the kernel's clock directly (e.g. a Go program through the vDSO): only "
    "candidates can be skewed",
}


class TargetError(HarnessError, RuntimeError):
    """The target could not be configured or started; the message says why."""


class TargetSettingsError(TargetError, ConfigError):
    """A bad `server:` setting: a TargetError, and a configuration mistake like any other."""


@dataclass(frozen=True)
class MemberView:
    """One member's own answer to "who leads, in which term"."""

    node: str
    leader: str | None
    term: int


@dataclass(frozen=True)
class Timing:
    """The target's own timing bounds, in seconds: what fault durations must straddle to
    matter. `lease_invalidated_s` is when the system really drops a lease nobody renews
    (Consul: up to 2 x the session TTL; etcd: the TTL); `lock_delay_s` is how long it then
    blocks re-acquisition. `system` names the target in the printed explanation."""

    system: str
    election_timeout_s: float  # a silent leader is replaced after at most this long
    lease_s: float  # the lease or session TTL a candidate holds
    lease_invalidated_s: float
    lock_delay_s: float = 0.0
    lease_name: str = "lease"  # "session" for Consul

    @property
    def takeover_s(self) -> float:
        """How long a fault must last before another node or candidate takes over: the
        longer of an election and the lease's invalidation plus its lock-delay."""
        return max(self.election_timeout_s, self.lease_invalidated_s + self.lock_delay_s)

    def describe(self) -> str:
        """E.g. "consul session TTL 10 s, invalidated by 20 s, election timeout 1 s"."""
        parts = [f"{self.system} {self.lease_name} TTL {self.lease_s:g} s"]
        if self.lease_invalidated_s != self.lease_s:
            parts.append(f"invalidated by {self.lease_invalidated_s:g} s")
        if self.lock_delay_s:
            parts.append(f"lock-delay {self.lock_delay_s:g} s")
        parts.append(f"election timeout {self.election_timeout_s:g} s")
        return ", ".join(parts)


@runtime_checkable
class StatesTiming(Protocol):
    """Optional: the target states its timing bounds. A target without it (an older
    out-of-tree plugin) still runs, with the schedule's fixed default durations."""

    @property
    def timing(self) -> Timing: ...


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
    member_clock: str  # a key of MEMBER_CLOCKS
    needs: frozenset[str]  # keys of harness.backends.base.OFFERS
    server_packages: tuple[ServerPackage, ...]  # every package it may use (class-level)

    @property
    def run_packages(self) -> tuple[ServerPackage, ...]:
        """The server packages this run's settings chose (a subset of server_packages)."""
        ...

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
        """The member's own view, or None if it did not answer in time (or gave no
        usable observation). An answer that is malformed raises; the status probe
        records it and goes on probing."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ClockControl(Protocol):
    """Optional: the target's members read a clock the harness can skew on a node."""

    def member_clock_file(self, node: Node) -> str:
        """Path, on the node, of the member's clock control file (harness.skewclock)."""
        ...
