"""Synthetic histories from a model of a correct elector, for tests and benchmarks.

The model: leaderships follow one another with strictly increasing tokens and no
overlap; other processes campaign meanwhile and fail or wait; the leader writes with
its token, and each write is applied inside its leadership; a leadership ends by
release, lost or crash (a crashed process is replaced by a new process id, Jepsen's
convention); status probes report the current leader and term, or no leader; the
nemesis adds fault events. Every time is distinct, so any line order means the same
history. Such histories must always be valid.
"""

from __future__ import annotations

import random
from typing import Any

Record = dict[str, Any]


def correct_history(
    rng: random.Random,
    *,
    nodes: int = 3,
    leaderships: int = 10,
    writes_per_leadership: int = 3,
    election: str | None = None,
) -> list[Record]:
    """Events of a correct run, in time order, as dicts in format v1."""
    events: list[Record] = []
    now = 0

    def tick(max_step: int = 1_000_000) -> int:
        nonlocal now
        now += rng.randint(1, max_step)
        return now

    def emit(process: Any, etype: str, f: str, value: Any = None, node: str | None = None) -> None:
        record: Record = {"time": tick(), "process": process, "type": etype, "f": f}
        if value is not None:
            record["value"] = value
        if node is not None:
            record["node"] = node
        if election is not None and process != "nemesis" and f != "status":
            record["election"] = election
        events.append(record)

    names = [f"n{i + 1}" for i in range(nodes)]
    process_of = {name: i for i, name in enumerate(names)}  # node -> its current process
    next_process = nodes
    campaigning: set[str] = set()  # nodes whose process has an open acquire invoke
    term = 0
    seq = 0

    def status_round(leader: str | None) -> None:
        for name in names:
            shown = leader if leader is not None and rng.random() < 0.9 else None
            emit(f"status-{name}", "ok", "status", {"node": name, "leader": shown, "term": term})

    status_round(None)
    for _ in range(leaderships):
        for name in names:
            if name not in campaigning and rng.random() < 0.7:
                emit(process_of[name], "invoke", "acquire", node=name)
                campaigning.add(name)
        leader = rng.choice(names)
        if leader not in campaigning:
            emit(process_of[leader], "invoke", "acquire", node=leader)
        campaigning.discard(leader)
        term += rng.randint(1, 3)
        process = process_of[leader]
        emit(process, "ok", "acquire", {"token": term}, node=leader)
        # Losers of this election may learn it; their next try is a new invoke later.
        for name in sorted(campaigning):
            if rng.random() < 0.5:
                emit(process_of[name], "fail", "acquire", node=name)
                campaigning.discard(name)
        status_round(leader)
        if rng.random() < 0.3:
            emit(
                "nemesis",
                "info",
                rng.choice(["start-partition", "pause", "kill"]),
                {"nodes": [leader]},
            )
        for _ in range(writes_per_leadership):
            emit(process, "invoke", "write", {"token": term, "seq": seq}, node=leader)
            seq += 1
            outcome = rng.random()
            if outcome < 0.8:
                applied = tick()
                emit(process, "ok", "write", {"applied_at": applied}, node=leader)
            elif outcome < 0.9:
                emit(process, "fail", "write", node=leader)
            else:
                emit(process, "info", "write", node=leader)
        ending = rng.random()
        if ending < 0.4:
            emit(process, "invoke", "release", node=leader)
            emit(process, "ok", "release", node=leader)
        elif ending < 0.8:
            emit(process, "info", "lost", node=leader)
        else:
            emit(process, "info", "crash", node=leader)
            process_of[leader] = next_process
            next_process += 1
        status_round(None)
        if rng.random() < 0.3:
            emit("nemesis", "info", rng.choice(["stop-partition", "resume", "restart"]))
    return events
