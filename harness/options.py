"""Run options shared by the command line and the pytest plugin: names and validation.

The names here are the product's vocabulary; each later registry (targets, nemeses,
backends) must agree with them, and a test checks that it does.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGETS: tuple[str, ...] = ("reference", "etcd", "consul")
NEMESES: tuple[str, ...] = ("none", "partition", "pause", "kill", "clock")
BACKENDS: tuple[str, ...] = ("auto", "local", "docker")
NODE_COUNTS: tuple[int, ...] = (1, 3, 5, 7)


class OptionError(ValueError):
    """An option value that is not one of the accepted ones; the message says which."""


@dataclass(frozen=True)
class RunOptions:
    target: str = "reference"
    nemeses: tuple[str, ...] = ("none",)
    backend: str = "auto"
    nodes: int = 3
    time_limit: float = 30.0
    seed: int = 0


def parse_target(text: str) -> str:
    if text not in TARGETS:
        raise OptionError(
            f"--target: unknown target {text!r}; expected one of {', '.join(TARGETS)}"
        )
    return text


def parse_backend(text: str) -> str:
    if text not in BACKENDS:
        raise OptionError(
            f"--backend: unknown backend {text!r}; expected one of {', '.join(BACKENDS)}"
        )
    return text


def parse_nemeses(text: str) -> tuple[str, ...]:
    """`partition,pause` -> ("partition", "pause"); duplicates and unknown names are errors."""
    names = tuple(part.strip() for part in text.split(","))
    if not names or any(not name for name in names):
        raise OptionError(f"--nemesis: empty name in {text!r}; expected e.g. 'partition,pause'")
    for name in names:
        if name not in NEMESES:
            raise OptionError(
                f"--nemesis: unknown nemesis {name!r}; expected one or more of "
                f"{', '.join(NEMESES)} separated by commas"
            )
    if len(set(names)) != len(names):
        raise OptionError(f"--nemesis: a nemesis is named twice in {text!r}")
    if "none" in names and len(names) > 1:
        raise OptionError("--nemesis: 'none' cannot be combined with other nemeses")
    return names


def parse_nodes(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise OptionError(f"--nodes: expected an integer, got {text!r}") from None
    if count not in NODE_COUNTS:
        raise OptionError(
            f"--nodes: {count} nodes is not supported; expected one of "
            f"{', '.join(map(str, NODE_COUNTS))} (an odd size, so a majority exists)"
        )
    return count


def parse_time_limit(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise OptionError(f"--time-limit: expected seconds as a number, got {text!r}") from None
    if not 0 < seconds <= 86_400:
        raise OptionError(f"--time-limit: expected 0 < seconds <= 86400, got {text!r}")
    return seconds


def parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise OptionError(f"--seed: expected an integer, got {text!r}") from None
    if seed < 0:
        raise OptionError(f"--seed: expected a non-negative integer, got {text!r}")
    return seed
