"""Typed reads of a target's `server:` settings, with errors that name file and key.

Targets for third-party systems (etcd, Consul) validate their YAML section with a
`SettingsReader`; a mistake becomes a `TargetError` naming the source, the full key and
what was expected (the command line turns it into exit status 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.targets.base import TargetError


class SettingsReader:
    """Reads one mapping of settings; `prefix` is its key path ("server.lock.")."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            where = prefix.rstrip(".") or "server"
            raise TargetError(f"{source}: key '{where}': expected a mapping, got {data!r}")
        self.data = dict(data)
        self.source = source
        self.prefix = prefix

    def fail(self, key: str, expected: str, got: Any) -> TargetError:
        return TargetError(
            f"{self.source}: key '{self.prefix}{key}': expected {expected}, got {got!r}"
        )

    def only(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise TargetError(
                    f"{self.source}: unknown key '{self.prefix}{key}'; expected one of "
                    + ", ".join(f"{self.prefix}{k}" for k in sorted(allowed))
                )

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}", value)
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(key, f"a number from {low:g} to {high:g}", value)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.data.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # YAML reads `version: 3.5` as a number
        if value not in choices:
            raise self.fail(key, "one of " + ", ".join(choices), value)
        return str(value)

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.fail(key, "a non-empty string without spaces", value)
        return value

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings", value)
        return list(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, "a mapping", value)
        return dict(value)

    def section(self, key: str) -> SettingsReader:
        return SettingsReader(self.data.get(key), self.source, f"{self.prefix}{key}.")
