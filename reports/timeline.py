"""History + verdict -> the report's model: a compact, JSON-ready description of the timeline.

Pure: no I/O, no HTML. The model holds one lane per node, each candidate's leadership
intervals (the checker's own belief intervals, from `harness.checker.walk`), the
server-level leader per term from `status` events, fault bands paired from nemesis
events, and the verdict's violations with the lanes they touch. Intervals and leader
segments are rows of numbers with string tables beside them, so a one-hour history with
10,000 leaderships stays a few hundred kilobytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.checker import Verdict
from harness.checker.walk import walk
from harness.history.events import NEMESIS, Event

Model = dict[str, Any]

# Nemesis start event -> (fault kind, the event that heals it). Anything else the nemesis
# records is drawn as a one-off mark.
FAULT_STARTS: Mapping[str, tuple[str, str]] = {
    "start-partition": ("partition", "stop-partition"),
    "pause": ("pause", "resume"),
    "kill": ("kill", "restart"),
    "clock-skew": ("clock", "clock-reset"),
}
_FAULT_STOPS = {stop: (kind, start) for start, (kind, stop) in FAULT_STARTS.items()}

MAX_FAULT_ROWS = 6  # rows of the fault track; a run rarely has more faults at once

# Order of ways a leadership ends, as the walk names them; the model stores indexes.
ENDINGS = ("release", "lost", "crash", "acquire", "end of history")


def _natural_key(name: str) -> list[Any]:
    """n2 before n10: compare digit runs as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class _Lanes:
    """Lane names in order of first use; sorted naturally at the end."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}

    def add(self, name: str) -> str:
        self.names.setdefault(name, None)
        return name

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(sorted(self.names, key=_natural_key))}


def _names(value: Any) -> list[str]:
    """Node names in a nemesis value field: a list of strings (anything else ignored)."""
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
    return []


def _groups(value: Mapping[str, Any]) -> list[list[str]]:
    groups = value.get("groups")
    if not isinstance(groups, list):
        return []
    return [_names(g) for g in groups if isinstance(g, list)]


def fault_label(kind: str, f: str, value: Mapping[str, Any]) -> str:
    """A short description of a fault, from the value its start event recorded."""
    nodes = ", ".join(_names(value.get("nodes")))
    where = f" on {nodes}" if nodes else ""
    if kind == "partition":
        groups = " | ".join(" ".join(g) for g in _groups(value))
        mode = value.get("mode")
        return f"partition{f' {mode}' if mode else ''}: {groups}" if groups else "partition"
    if kind in ("pause", "kill"):
        what = value.get("processes")
        return f"{'paused' if kind == 'pause' else 'killed'} {what or 'process'}{where}"
    if kind == "clock":
        mode = value.get("mode") or "skew"
        detail = ""
        if isinstance(value.get("rate"), int | float):
            detail = f" rate x{value['rate']:g}"
        elif isinstance(value.get("offset_ns"), int | float):
            detail = f" offset {value['offset_ns'] / 1e6:+g} ms"
        return f"clock {mode}{detail}{where}"
    return f"{f}{where}"


def _fault_key(kind: str, value: Mapping[str, Any]) -> Any:
    """What a heal event repeats of its start's value, to pair them when faults overlap."""
    if kind == "partition":
        return repr(_groups(value))
    return repr(_names(value.get("nodes")))


def _pair_faults(
    nemesis_events: list[Event], end_time: int, lanes: _Lanes
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fault bands from start/heal pairs, and one-off marks for everything else."""
    faults: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    open_faults: dict[str, list[dict[str, Any]]] = {}
    for e in nemesis_events:
        value = e.value or {}
        if e.f in FAULT_STARTS:
            kind = FAULT_STARTS[e.f][0]
            groups = _groups(value) if kind == "partition" else []
            nodes = [lanes.add(n) for n in _names(value.get("nodes"))]
            for g in groups:
                for n in g:
                    lanes.add(n)
            fault = {
                "kind": kind,
                "start": e.time,
                "end": end_time,
                "open": True,  # not healed within the history
                "label": fault_label(kind, e.f, value),
                "nodes": nodes,
                "groups": groups,
                "value": value,
                "line": e.line or None,
                "end_line": None,
                "_key": _fault_key(kind, value),
            }
            faults.append(fault)
            open_faults.setdefault(kind, []).append(fault)
        elif e.f in _FAULT_STOPS:
            kind = _FAULT_STOPS[e.f][0]
            pending = open_faults.get(kind, [])
            key = _fault_key(kind, value)
            # The heal of the same nodes if one is open, else the oldest open of its kind.
            match = next((f for f in pending if f["_key"] == key), pending[0] if pending else None)
            if match is None:
                marks.append({"time": e.time, "f": e.f, "value": value, "line": e.line or None})
                continue
            pending.remove(match)
            match.update(end=e.time, open=False, end_line=e.line or None)
        else:
            marks.append({"time": e.time, "f": e.f, "value": value, "line": e.line or None})
    for fault in faults:
        del fault["_key"]
    _stack(faults)
    return faults, marks


def _stack(faults: list[dict[str, Any]]) -> None:
    """Give each fault the lowest row of the fault track where it overlaps no other; past
    MAX_FAULT_ROWS (faults that never heal pile up) they share the last row."""
    row_ends: list[int] = []
    for fault in sorted(faults, key=lambda f: (f["start"], f["end"])):
        for row, end in enumerate(row_ends):
            if end < fault["start"]:
                row_ends[row] = fault["end"]
                fault["row"] = row
                break
        else:
            if len(row_ends) < MAX_FAULT_ROWS:
                fault["row"] = len(row_ends)
                row_ends.append(fault["end"])
            else:
                fault["row"] = MAX_FAULT_ROWS - 1
                row_ends[-1] = max(row_ends[-1], fault["end"])


def _leader_segments(statuses: list[Any]) -> list[tuple[str, str, int, int, int, int]]:
    """(leader, term, first seen, last seen, observations, observers): per (term, leader)
    named by `status` events, the span over which members named that leader."""
    seen: dict[tuple[str, int], list[Any]] = {}
    for s in sorted(statuses, key=lambda s: s.time):
        if s.leader is None:
            continue
        key = (str(s.leader), s.term)
        entry = seen.get(key)
        if entry is None:
            seen[key] = [s.time, s.time, 1, {str(s.node)}]
        else:
            entry[1] = s.time
            entry[2] += 1
            entry[3].add(str(s.node))
    return [
        (leader, term, first, last, count, len(observers))  # type: ignore[misc]
        for (leader, term), (first, last, count, observers) in seen.items()
    ]


def build_model(
    events: Sequence[Event],
    verdict: Verdict,
    *,
    source: str | None = None,
    run: Mapping[str, Any] | None = None,
) -> Model:
    """The report's model of `events`, judged by `verdict` (from `harness.checker.check`
    on the same events). `run` adds the run's facts (target, nemeses, seed, error)."""
    w = walk(events, source)
    lanes = _Lanes()

    # Where each process runs: its events' `node`, for the few whose acquire ok lacks one.
    node_of: dict[Any, str] = {}
    nemesis_events: list[Event] = []
    for e in sorted(events, key=lambda e: e.time):
        if e.process == NEMESIS:
            nemesis_events.append(e)
        elif e.node is not None and e.process not in node_of and e.f != "status":
            node_of[e.process] = e.node

    def lane_of_process(process: Any, event: Event | None) -> str:
        node = event.node if event is not None and event.node is not None else None
        return lanes.add(node or node_of.get(process) or f"process {process}")

    for s in w.statuses:
        lanes.add(str(s.node))
    elections = sorted(w.beliefs)
    processes: dict[Any, int] = {}
    raw_intervals: list[tuple[str, int, int, int, int, int, int, Any, Any]] = []
    process_lane: dict[Any, str] = {}
    for ei, election in enumerate(elections):
        for b in w.beliefs[election]:
            lane = lane_of_process(b.process, b.start_event)
            process_lane.setdefault(b.process, lane)
            pi = processes.setdefault(b.process, len(processes))
            raw_intervals.append(
                (
                    lane,
                    b.start,
                    b.end,
                    b.token,
                    pi,
                    ENDINGS.index(b.ended_by),
                    ei,
                    b.start_event.line if b.start_event is not None else None,
                    b.end_event.line if b.end_event is not None else None,
                )
            )
    segments = _leader_segments(w.statuses)
    for leader, *_ in segments:
        lanes.add(leader)
    faults, marks = _pair_faults(nemesis_events, w.end_time, lanes)

    violations = []
    for v in verdict["violations"]:
        if v.get("election") is None:  # server-level: processes are member names
            touched = [lanes.add(str(p)) for p in v["processes"]]
        else:
            touched = [
                process_lane.get(p) or lanes.add(node_of.get(p) or f"process {p}")
                for p in v["processes"]
            ]
        violations.append({**v, "lanes": touched})

    index = lanes.index()
    intervals = sorted(
        ([index[lane], *rest] for lane, *rest in raw_intervals), key=lambda r: (r[1], r[0])
    )
    leaders = sorted(
        (
            [index[leader], first, last, term, count, observers]
            for leader, term, first, last, count, observers in segments
        ),
        key=lambda r: (r[1], r[0]),
    )
    for fault in faults:
        fault["lanes"] = sorted({index[n] for n in fault.pop("nodes")})
        fault["groups"] = [[index[n] for n in g] for g in fault["groups"]]
    for v in violations:
        v["lanes"] = sorted({index[lane] for lane in v["lanes"]})
    return {
        "version": 1,
        "source": source,
        "start": w.start_time,
        "end": w.end_time,
        "valid": verdict["valid"],
        "stats": verdict["stats"],
        "settings": verdict.get("settings", {}),
        "run": dict(run) if run else None,
        "lanes": list(index),
        "elections": elections,
        "processes": list(processes),
        "endings": list(ENDINGS),
        # [lane, start, end, token, process, ending, election, start line, end line]
        "intervals": intervals,
        # [lane, first seen, last seen, term, observations, observers]
        "leaders": leaders,
        "faults": faults,
        "marks": marks,
        "violations": violations,
    }
