"""The reference elector's YAML configuration: defaults, strict validation, derived timings.

A configuration file is a mapping of the keys documented in harness/elector/README.md;
every key is optional and an empty file means the safe defaults. Mistakes (unknown keys,
wrong types, values out of range, unreadable files, invalid YAML) raise `ConfigError`
with one line naming the file, the key and what was expected, so that the command line
can print it and exit with status 2. PyYAML is the only non-stdlib import allowed here
(Debian's python3-yaml is present in node images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

NS_PER_MS = 1_000_000


class ConfigError(ValueError):
    """A configuration mistake; the message is the whole one-line explanation."""


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


class _Checker:
    """Reads typed values out of the parsed YAML, raising errors that name file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}': expected {expected}, got {got!r}")

    def integer(self, data: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}", value)
        return value

    def boolean(self, data: dict[str, Any], key: str, default: bool) -> bool:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def unknown(self, data: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                name = f"{prefix}{key}"
                raise ConfigError(
                    f"{self.source}: unknown key '{name}'; expected one of "
                    + ", ".join(sorted(f"{prefix}{k}" for k in allowed))
                )


def parse_config(data: Any, source: str = "<config>") -> ElectorConfig:
    """Validate already-parsed YAML (None means an empty file) into an ElectorConfig."""
    check = _Checker(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {data!r}")
    check.unknown(data, _TOP_KEYS, "")

    heartbeat = check.integer(data, "heartbeat_interval_ms", 50, 1, 60_000)
    tick = check.integer(data, "tick_ms", 5, 1, 100)
    timeouts = data.get("election_timeout_ms", [300, 600])
    expected = "a list [min, max] of integers with 10 <= min <= max <= 600000"
    if (
        not isinstance(timeouts, list)
        or len(timeouts) != 2
        or any(isinstance(t, bool) or not isinstance(t, int) for t in timeouts)
        or not 10 <= timeouts[0] <= timeouts[1] <= 600_000
    ):
        raise check.fail("election_timeout_ms", expected, timeouts)
    # A follower must hear several heartbeats per election timeout or it campaigns against
    # a healthy leader; the tick must be finer than the heartbeat or timers lose meaning.
    if timeouts[0] < 2 * heartbeat:
        raise check.fail(
            "election_timeout_ms",
            f"min >= 2 * heartbeat_interval_ms ({2 * heartbeat})",
            timeouts,
        )
    if tick > heartbeat:
        raise check.fail("tick_ms", f"at most heartbeat_interval_ms ({heartbeat})", tick)

    lease_data = data.get("lease", {})
    if lease_data is None:
        lease_data = {}
    if not isinstance(lease_data, dict):
        raise check.fail(
            "lease", "a mapping with keys enforce, max_clock_drift, margin_ms", lease_data
        )
    check.unknown(lease_data, _LEASE_KEYS, "lease.")
    drift = lease_data.get("max_clock_drift", 0.25)
    if (
        isinstance(drift, bool)
        or not isinstance(drift, int | float)
        or not 0.0 <= float(drift) < 1.0
    ):
        raise check.fail("lease.max_clock_drift", "a number from 0 up to (not including) 1", drift)
    lease = LeaseConfig(
        enforce=check.boolean(lease_data, "lease.enforce", True),
        max_clock_drift=float(drift),
        margin_ms=check.integer(lease_data, "lease.margin_ms", 20, 0, 600_000),
    )

    config = ElectorConfig(
        heartbeat_interval_ms=heartbeat,
        election_timeout_ms=(timeouts[0], timeouts[1]),
        pre_vote=check.boolean(data, "pre_vote", True),
        check_quorum=check.boolean(data, "check_quorum", True),
        leader_stickiness=check.boolean(data, "leader_stickiness", True),
        persist_votes=check.boolean(data, "persist_votes", True),
        lease=lease,
        resign_backoff_ms=check.integer(data, "resign_backoff_ms", 1000, 0, 3_600_000),
        tick_ms=tick,
    )
    if lease.enforce and config.lease_duration_ns <= 0:
        raise check.fail(
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
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text: {exc.reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}") from None
    return parse_config(data, source)
