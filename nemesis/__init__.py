"""Nemeses: faults with start and heal (partition, pause, kill, clock, lossy), and their registry.

`NEMESES` maps each built-in nemesis name to its class; a new nemesis is one module plus
one line here, or a package of its own registered under the entry-point group
`leader_harness.nemeses` (harness.plugins). The command line's choices, the run
configuration and the report's fault bands read `all_nemeses()`. `make_nemeses` builds
the run's nemeses from their names and per-nemesis settings, rejecting what it does not know
(`ConfigError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import ConfigError
from harness.nemesis.base import Nemesis
from harness.nemesis.clock import ClockNemesis
from harness.nemesis.kill import KillNemesis
from harness.nemesis.lossy import LossyNemesis
from harness.nemesis.partition import PartitionNemesis
from harness.nemesis.pause import PauseNemesis
from harness.plugins import NEMESIS_GROUP, load
from harness.validation import echo

NEMESES: dict[str, type] = {
    "partition": PartitionNemesis,
    "pause": PauseNemesis,
    "kill": KillNemesis,
    "clock": ClockNemesis,
    "lossy": LossyNemesis,
}


def all_nemeses() -> dict[str, type]:
    """Built-in nemeses, then those of installed packages (entry points)."""
    return load(NEMESIS_GROUP, NEMESES)


def make_nemeses(names: Sequence[str], settings: Mapping[str, Any]) -> list[Nemesis]:
    """The nemeses named (in order; "none" means no fault, "all" every registered one),
    each built from its settings.

    `settings` maps nemesis names to their settings, e.g. `{"clock": {"max_rate_skew":
    0.2}}`; settings of a known nemesis that is not selected are validated and unused (a
    configuration file may carry them while the command line picks other faults).
    """
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"nemesis settings: expected a mapping by nemesis name, got {echo(settings)}"
        )
    registry = all_nemeses()
    known = ", ".join(registry)
    for key in settings:
        if key not in registry:
            raise ConfigError(
                f"nemesis settings: unknown nemesis {echo(key)}; expected one of {known}"
            )
    # Validate every given settings block, selected or not: a typo must not wait for
    # the day that nemesis is chosen.
    built = {key: registry[key](settings[key]) for key in settings}
    if "all" in names:
        # Every registered nemesis; the runner leaves out those that refuse the cluster.
        names = list(registry)
    out: list[Nemesis] = []
    seen: set[str] = set()
    for name in names:
        if name == "none":
            continue
        if name not in registry:
            raise ConfigError(f"unknown nemesis {echo(name)}; expected one of {known} or none")
        if name in seen:
            raise ConfigError(f"nemesis {echo(name)} is named twice")
        seen.add(name)
        out.append(built[name] if name in built else registry[name]())
    return out


__all__ = ["NEMESES", "all_nemeses", "make_nemeses"]
