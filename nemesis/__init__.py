"""Nemeses: faults with start and heal (partition, pause, kill, clock), and their registry.

`NEMESES` maps each name of `harness.options.NEMESES` (but "none") to its class; a new
nemesis is one module plus one line here. `make_nemeses` builds the run's nemeses from
their names and per-nemesis settings, rejecting what it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nemesis.base import Nemesis
from nemesis.clock import ClockNemesis
from nemesis.kill import KillNemesis
from nemesis.partition import PartitionNemesis
from nemesis.pause import PauseNemesis

NEMESES: dict[str, type] = {
    "partition": PartitionNemesis,
    "pause": PauseNemesis,
    "kill": KillNemesis,
    "clock": ClockNemesis,
}


def make_nemeses(names: Sequence[str], settings: Mapping[str, Any]) -> list[Nemesis]:
    """The nemeses named (in order; "none" means no fault), each built from its settings.

    `settings` maps nemesis names to their settings, e.g. `{"clock": {"max_rate_skew":
    0.2}}`; settings of a known nemesis that is not selected are validated and unused (a
    configuration file may carry them while the command line picks other faults).
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"nemesis settings: expected a mapping by nemesis name, got {settings!r}")
    known = ", ".join(NEMESES)
    for key in settings:
        if key not in NEMESES:
            raise ValueError(f"nemesis settings: unknown nemesis {key!r}; expected one of {known}")
    # Validate every given settings block, selected or not: a typo must not wait for
    # the day that nemesis is chosen.
    built = {key: NEMESES[key](settings[key]) for key in settings}
    out: list[Nemesis] = []
    seen: set[str] = set()
    for name in names:
        if name == "none":
            continue
        if name not in NEMESES:
            raise ValueError(f"unknown nemesis {name!r}; expected one of {known} or none")
        if name in seen:
            raise ValueError(f"nemesis {name!r} is named twice")
        seen.add(name)
        out.append(built[name] if name in built else NEMESES[name]())
    return out


__all__ = ["NEMESES", "make_nemeses"]
