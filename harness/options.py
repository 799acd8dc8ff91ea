"""Run options shared by the command line and the pytest plugin: names and validation.

The names of targets, nemeses and backends are not repeated here: `TARGETS`, `NEMESES`
and `BACKENDS` are read from the registries (harness.targets, harness.nemesis,
harness.backends, with installed plugins) when first used, so adding one touches only
its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.validation import echo

NODE_COUNTS: tuple[int, ...] = (1, 3, 5, 7)
# Seeds: 0 <= seed < 2**63, so a seed fits every integer field it is written to (results,
# JSON readers in other languages, orjson's 64-bit limit).
MAX_SEED = 2**63 - 1
# Split-brain tolerances and stale-leader graces, in ns: an hour is far beyond any
# election's timing; beyond it a value (say 10**26) would quietly make every split-brain
# "valid".
MAX_TOLERANCE_NS = 3_600 * 10**9


def target_names() -> tuple[str, ...]:
    from harness.targets import all_targets

    return tuple(all_targets())


# Not nemeses but choices of them: "none" (no faults) and "all" (every registered nemesis
# the target supports; one that refuses the cluster is listed with its reason and left out).
SPECIAL_NEMESES: tuple[str, ...] = ("none", "all")


def nemesis_names() -> tuple[str, ...]:
    """"none", "all", then every registered nemesis."""
    from harness.nemesis import all_nemeses

    return (*SPECIAL_NEMESES, *all_nemeses())


def backend_names() -> tuple[str, ...]:
    """ "auto" (docker when a daemon answers, else local), then every registered backend."""
    from harness.backends import all_backends

    return ("auto", *all_backends())


def __getattr__(name: str) -> Any:
    # Module attributes computed on use (PEP 562): the registries import the targets'
    # and nemeses' modules, which a plain `import harness.options` must not pay for.
    readers = {"TARGETS": target_names, "NEMESES": nemesis_names, "BACKENDS": backend_names}
    if name in readers:
        return readers[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class OptionError(ConfigError):
    """An option value that is not one of the accepted ones; the message says which."""


@dataclass(frozen=True)
class RunOptions:
    target: str = "reference"
    nemeses: tuple[str, ...] = ("none",)
    backend: str = "auto"
    nodes: int = 3
    time_limit: float | None = None  # None: 30 s, or longer to fit the target's long faults
    seed: int = 0


def parse_target(text: str) -> str:
    known = target_names()
    if text not in known:
        raise OptionError(
            f"--target: unknown target {echo(text)}; expected one of {', '.join(known)}"
        )
    return text


def parse_backend(text: str) -> str:
    known = backend_names()
    if text not in known:
        raise OptionError(
            f"--backend: unknown backend {echo(text)}; expected one of {', '.join(known)}"
        )
    return text


def parse_nemeses(text: str) -> tuple[str, ...]:
    """`partition,pause` -> ("partition", "pause"); duplicates and unknown names are errors."""
    names = tuple(part.strip() for part in text.split(","))
    if not names or any(not name for name in names):
        raise OptionError(f"--nemesis: empty name in {echo(text)}; expected e.g. 'partition,pause'")
    known = nemesis_names()
    for name in names:
        if name not in known:
            raise OptionError(
                f"--nemesis: unknown nemesis {echo(name)}; expected one or more of "
                f"{', '.join(known)} separated by commas"
            )
    if len(set(names)) != len(names):
        raise OptionError(f"--nemesis: a nemesis is named twice in {echo(text)}")
    for special in SPECIAL_NEMESES:
        if special in names and len(names) > 1:
            raise OptionError(f"--nemesis: {special!r} cannot be combined with other nemeses")
    return names


def parse_nodes(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise OptionError(f"--nodes: expected an integer, got {echo(text)}") from None
    if count not in NODE_COUNTS:
        raise OptionError(
            f"--nodes: {echo(count)} nodes is not supported; expected one of "
            f"{', '.join(map(str, NODE_COUNTS))} (an odd size, so a majority exists)"
        )
    return count


def parse_time_limit(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise OptionError(f"--time-limit: expected seconds as a number, got {echo(text)}") from None
    if not 0 < seconds <= 86_400:
        raise OptionError(f"--time-limit: expected 0 < seconds <= 86400, got {echo(text)}")
    return seconds


def parse_seed(text: str) -> int:
    if len(text) > 40:  # int() of a huge digit string is slow; no seed is that long
        raise OptionError(f"--seed: expected 0 <= seed <= {MAX_SEED}, got {echo(text)}")
    try:
        seed = int(text)
    except ValueError:
        raise OptionError(f"--seed: expected an integer, got {echo(text)}") from None
    if not 0 <= seed <= MAX_SEED:
        raise OptionError(f"--seed: expected 0 <= seed <= {MAX_SEED} (2**63 - 1), got {echo(text)}")
    return seed
