"""Targets and nemeses from installed packages (entry points), merged with the built-ins.

A package registers a target under the entry-point group `leader_harness.targets`, a
nemesis under `leader_harness.nemeses` and a backend under `leader_harness.backends`;
the entry point's name is the name used on the command line, its object the class. Once the
package is installed, `harness run --target NAME` finds it. A name that clashes with a
built-in, or an entry point that cannot be loaded, is an error naming the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from harness.errors import ConfigError

TARGET_GROUP = "leader_harness.targets"
NEMESIS_GROUP = "leader_harness.nemeses"
BACKEND_GROUP = "leader_harness.backends"

# Test seam: extra registrations, consulted like entry points (see tests/common/test_registry.py).
_EXTRA: dict[str, dict[str, Any]] = {TARGET_GROUP: {}, NEMESIS_GROUP: {}, BACKEND_GROUP: {}}


class PluginError(ConfigError):
    """An installed plugin cannot be used; the message names its package and why."""


def register(group: str, name: str, obj: Any) -> None:
    """Register `obj` under `name` in `group` for this process (what an entry point does
    for an installed package); used by tests and by programs embedding the harness."""
    _EXTRA[group][name] = obj


def unregister(group: str, name: str) -> None:
    _EXTRA[group].pop(name, None)


def load(group: str, builtins: Mapping[str, Any]) -> dict[str, Any]:
    """The built-ins, then every registered and installed plugin of `group`."""
    out = dict(builtins)
    found: dict[str, Any] = dict(_EXTRA[group])
    for ep in entry_points(group=group):
        where = f"entry point {ep.name!r} in group {group} ({ep.value})"
        try:
            found.setdefault(ep.name, ep.load())
        except Exception as exc:  # whatever the plugin's import raises
            raise PluginError(f"{where}: cannot load: {type(exc).__name__}: {exc}") from None
    for name, obj in found.items():
        if name in builtins and obj is not builtins[name]:
            raise PluginError(
                f"{group}: a plugin registers {name!r}, which is a built-in name; rename it"
            )
        if name in ("none", "auto", "all") or not name.replace("-", "").replace("_", "").isalnum():
            raise PluginError(f"{group}: {name!r} is not a usable name (letters, digits, - or _)")
        out[name] = obj
    return out
