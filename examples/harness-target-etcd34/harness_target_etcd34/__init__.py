"""An out-of-tree target for leader-harness: etcd 3.4.23 as a team that pinned 3.4 runs
it, with etcd 3.4's own defaults (pre-vote off) instead of the harness's.

Installed (`pip install examples/harness-target-etcd34`), its entry point in the group
`leader_harness.targets` makes `harness run --target etcd34`, `pytest --target=etcd34`,
`target: etcd34` in run configurations and suites find it; nothing in the harness names
it. Everything else (members, probe, candidates' election client, stale-leader bound,
nemesis defaults) is the built-in etcd target's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.targets.etcd import EtcdTarget


class Etcd34Target(EtcdTarget):
    name = "etcd34"

    def __init__(self, server: Mapping[str, Any] | None = None, source: str = "server") -> None:
        # etcd 3.4's defaults; the run's `server:` keys still win and are validated alike.
        defaults = {"version": "3.4.23", "pre_vote": False}
        super().__init__({**defaults, **dict(server or {})}, source)
