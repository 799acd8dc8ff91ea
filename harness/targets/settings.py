"""Typed reads of a target's `server:` settings, with errors that name file and key.

Targets for third-party systems (etcd, Consul) validate their YAML section with a
`SettingsReader`: harness/validation.py's `Reader`, whose errors are
`TargetSettingsError` (both a `TargetError`, as targets raise, and a `ConfigError`, as
every configuration mistake is), naming the source, the full key and what was expected
(the command line turns it into exit status 2).
"""

from __future__ import annotations

from typing import Any

from harness.targets.base import TargetSettingsError
from harness.validation import Reader


class SettingsReader(Reader):
    """A Reader of one mapping of server settings; `prefix` is its key path ("server.")."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        super().__init__(data, source, prefix, error=TargetSettingsError)


__all__ = ["SettingsReader", "TargetSettingsError"]
