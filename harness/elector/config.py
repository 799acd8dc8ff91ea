"""The reference elector's YAML configuration: defaults, strict validation, derived timings.

A configuration file is a mapping of the keys documented in harness/elector/README.md;
every key is optional and an empty file means the safe defaults. Mistakes (unknown keys,
wrong types, values out of range, unreadable files, invalid YAML) raise `ConfigError`
with one line naming the file, the key and what was expected, so that the command line
can print it and exit with status 2 (`ConfigError` is harness/errors.py's, re-exported
here). Reading goes through harness/yamlio.py (bounded) and harness/validation.py; PyYAML
is the only non-stdlib import they allow (Debian's python3-yaml is in node images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.validation import Reader, is_integer, is_number
from harness.yamlio import load_yaml

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class LeaseConfig:
    enforce: bool = True
    max_clock_drift: float = 0.25
    margin_ms: int = 20


@dataclass(frozen=True)
class ElectorConfig:
    heartbeat_interval_ms: int = 50
    election_timeout_ms: tuple[int, int] = (300, 600)
    pre_vote: bool = True
    check_quorum: bool = True
    leader_stickiness: bool = True
    persist_votes: bool = True
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    resign_backoff_ms: int = 1000
    tick_ms: int = 5

    @property
    def election_min_ns(self) -> int:
        return self.election_timeout_ms[0] * NS_PER_MS

    @property
    def election_max_ns(self) -> int:
        return self.election_timeout_ms[1] * NS_PER_MS

    @property
    def heartbeat_ns(self) -> int:
        return self.heartbeat_interval_ms * NS_PER_MS

    @property
    def lease_duration_ns(self) -> int:
        """How long after the send time of a majority-acknowledged heartbeat round the
        leader may act: the followers' stickiness window, shrunk by the worst clock drift
        we assume between two nodes, minus a margin for everything else."""
        window = self.election_min_ns * (1.0 - self.lease.max_clock_drift)
        return int(window) - self.lease.margin_ms * NS_PER_MS


_TOP_KEYS = {
    "heartbeat_interval_ms",
    "election_timeout_ms",
    "pre_vote",
    "check_quorum",
    "leader_stickiness",
    "persist_votes",
    "lease",
    "resign_backoff_ms",
    "tick_ms",
}
_LEASE_KEYS = {"enforce", "max_clock_drift", "margin_ms"}


def _election_timeouts(r: Reader, heartbeat: int) -> tuple[int, int]:
    timeouts = r.get("election_timeout_ms", [300, 600])
    expected = "a list [min, max] of integers with 10 <= min <= max <= 600000"
    if (
        not isinstance(timeouts, list)
        or len(timeouts) != 2
        or not all(is_integer(t) for t in timeouts)
        or not 10 <= timeouts[0] <= timeouts[1] <= 600_000
    ):
        raise r.fail("election_timeout_ms", expected, timeouts)
    # A follower must hear several heartbeats per election timeout or it campaigns against
    # a healthy leader.
    if timeouts[0] < 2 * heartbeat:
        raise r.fail(
            "election_timeout_ms", f"min >= 2 * heartbeat_interval_ms ({2 * heartbeat})", timeouts
        )
    return (timeouts[0], timeouts[1])


def _lease(r: Reader) -> LeaseConfig:
    lease = r.section("lease", "a mapping with keys enforce, max_clock_drift, margin_ms")
    lease.only(_LEASE_KEYS)
    drift = lease.get("max_clock_drift", 0.25)
    if not is_number(drift) or not 0.0 <= float(drift) < 1.0:
        raise lease.fail("max_clock_drift", "a number from 0 up to (not including) 1", drift)
    return LeaseConfig(
        enforce=lease.boolean("enforce", True),
        max_clock_drift=float(drift),
        margin_ms=lease.integer("margin_ms", 20, 0, 600_000),
    )


def parse_config(data: Any, source: str = "<config>") -> ElectorConfig:
    """Validate already-parsed YAML (None means an empty file) into an ElectorConfig."""
    r = Reader(data, source, expected="a mapping of keys")
    r.only(_TOP_KEYS)
    heartbeat = r.integer("heartbeat_interval_ms", 50, 1, 60_000)
    tick = r.integer("tick_ms", 5, 1, 100)
    timeouts = _election_timeouts(r, heartbeat)
    # The tick must be finer than the heartbeat or timers lose meaning.
    if tick > heartbeat:
        raise r.fail("tick_ms", f"at most heartbeat_interval_ms ({heartbeat})", tick)
    lease = _lease(r)
    config = ElectorConfig(
        heartbeat_interval_ms=heartbeat,
        election_timeout_ms=timeouts,
        pre_vote=r.boolean("pre_vote", True),
        check_quorum=r.boolean("check_quorum", True),
        leader_stickiness=r.boolean("leader_stickiness", True),
        persist_votes=r.boolean("persist_votes", True),
        lease=lease,
        resign_backoff_ms=r.integer("resign_backoff_ms", 1000, 0, 3_600_000),
        tick_ms=tick,
    )
    if lease.enforce and config.lease_duration_ns <= 0:
        raise r.fail(
            "lease.margin_ms",
            "a margin smaller than election_timeout_ms min * (1 - max_clock_drift) "
            f"({config.election_min_ns * (1 - lease.max_clock_drift) / NS_PER_MS:g} ms)",
            lease.margin_ms,
        )
    return config


def load_config(path: str | os.PathLike[str] | None) -> ElectorConfig:
    """Read and validate a YAML file; None gives the built-in (safe) defaults."""
    if path is None:
        return ElectorConfig()
    return parse_config(load_yaml(path), os.fspath(path))


__all__ = ["ConfigError", "ElectorConfig", "LeaseConfig", "load_config", "parse_config"]
