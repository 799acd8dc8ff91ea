"""History + verdict -> the report's model: a compact, JSON-ready description of the timeline.

Pure: no I/O, no HTML. The model holds one lane per node, each candidate's leadership
intervals (the checker's own belief intervals, from `harness.checker.walk`), the
server-level leader per term from `status` events, fault bands paired from harness.nemesis
events, and the verdict's violations with the lanes they touch. Intervals and leader
segments are rows of numbers with string tables beside them, so a one-hour history with
10,000 leaderships stays a few hundred kilobytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checker import Verdict
from harness.checker.walk import Walk, walk
from harness.history.events import NEMESIS, Event

Model = dict[str, Any]


def fault_bands() -> dict[str, tuple[str, str, str]]:
    """Nemesis start event -> (fault kind, the event that heals it, band colour), from
    every registered nemesis's `report_band`. Anything else the nemesis records is
    drawn as a one-off mark."""
    from harness.nemesis import all_nemeses

    out: dict[str, tuple[str, str, str]] = {}
    for cls in all_nemeses().values():
        band = getattr(cls, "report_band", None)
        if band is not None:
            out[band.start] = (band.kind, band.heal, band.color)
    return out


def fault_labellers() -> dict[str, Any]:
    """Fault kind -> the nemesis's own `fault_label(value)` (a label, or None for the
    generic one), for nemeses that describe their faults themselves."""
    from harness.nemesis import all_nemeses

    out: dict[str, Any] = {}
    for cls in all_nemeses().values():
        band = getattr(cls, "report_band", None)
        label = getattr(cls, "fault_label", None)
        if band is not None and callable(label):
            out[band.kind] = label
    return out


MAX_FAULT_ROWS = 6  # rows of the fault track; a run rarely has more faults at once

# Order of ways a leadership ends, as the walk names them; the model stores indexes.
ENDINGS = ("release", "lost", "crash", "acquire", "end of history")


def _natural_key(name: str) -> list[Any]:
    """n2 before n10: compare runs of ASCII digits as numbers. Only ASCII: other digits
    (`²`, `٣`) are text, so `n2²` sorts instead of crashing `int()`; split() puts the digit
    runs at the odd positions, so numbers are only ever compared with numbers."""
    return [int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(name))]


_DIGITS = re.compile(r"([0-9]+)")


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


def fault_label(
    kind: str, f: str, value: Mapping[str, Any], labellers: Mapping[str, Any] | None = None
) -> str:
    """A short description of a fault, from the value its start event recorded
    (`labellers`: fault_labellers(), when the caller labels many faults)."""
    own = (fault_labellers() if labellers is None else labellers).get(kind)
    if own is not None:
        label = own(value)
        if isinstance(label, str):
            return label
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
    starts = fault_bands()
    labellers = fault_labellers()
    stops = {heal: (kind, start) for start, (kind, heal, _) in starts.items()}
    for e in nemesis_events:
        value = e.value or {}
        if e.f in starts:
            kind, _, color = starts[e.f]
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
                "label": fault_label(kind, e.f, value, labellers),
                "color": color,
                "nodes": nodes,
                "groups": groups,
                "value": value,
                "line": e.line or None,
                "end_line": None,
                "_key": _fault_key(kind, value),
            }
            faults.append(fault)
            open_faults.setdefault(kind, []).append(fault)
        elif e.f in stops:
            kind = stops[e.f][0]
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
    node_of, nemesis_events = _process_nodes(events)
    for s in w.statuses:
        lanes.add(str(s.node))
    tracks = _leaderships(w, lanes, node_of)
    segments = _leader_segments(w.statuses)
    for leader, *_ in segments:
        lanes.add(leader)
    faults, marks = _pair_faults(nemesis_events, w.end_time, lanes)
    violations = _violations(verdict, lanes, tracks.process_lane, node_of)
    # Every lane is known now: replace lane names by their final (sorted) indexes.
    index = lanes.index()
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
        "elections": tracks.elections,
        "processes": list(tracks.processes),
        "endings": list(ENDINGS),
        # [lane, start, end, token, process, ending, election, start line, end line]
        "intervals": sorted(
            ([index[lane], *rest] for lane, *rest in tracks.intervals),
            key=lambda r: (r[1], r[0]),
        ),
        # [lane, first seen, last seen, term, observations, observers]
        "leaders": sorted(
            (
                [index[leader], first, last, term, count, observers]
                for leader, term, first, last, count, observers in segments
            ),
            key=lambda r: (r[1], r[0]),
        ),
        "faults": _indexed_faults(faults, index),
        "marks": marks,
        "violations": [
            {**v, "lanes": sorted({index[lane] for lane in v["lanes"]})} for v in violations
        ],
    }


def _process_nodes(events: Sequence[Event]) -> tuple[dict[Any, str], list[Event]]:
    """Where each process runs (the `node` of its first event that has one, for the few
    whose acquire ok lacks one), and the nemesis events in time order."""
    node_of: dict[Any, str] = {}
    nemesis_events: list[Event] = []
    for e in sorted(events, key=lambda e: e.time):
        if e.process == NEMESIS:
            nemesis_events.append(e)
        elif e.node is not None and e.process not in node_of and e.f != "status":
            node_of[e.process] = e.node
    return node_of, nemesis_events


def _lane_of_process(lanes: _Lanes, node_of: Mapping[Any, str], process: Any) -> str:
    return lanes.add(node_of.get(process) or f"process {process}")


@dataclass
class _Leaderships:
    """Every belief interval as a row (lane still a name), and who is where."""

    elections: list[str] = field(default_factory=list)
    processes: dict[Any, int] = field(default_factory=dict)  # process -> its number
    process_lane: dict[Any, str] = field(default_factory=dict)  # the lane of its first
    intervals: list[tuple[str, int, int, int, int, int, int, Any, Any]] = field(
        default_factory=list
    )


def _leaderships(w: Walk, lanes: _Lanes, node_of: Mapping[Any, str]) -> _Leaderships:
    """The belief intervals of every election, each on the lane of the node its acquire
    ok names (else where its process runs)."""
    out = _Leaderships(elections=sorted(w.beliefs))
    for ei, election in enumerate(out.elections):
        for b in w.beliefs[election]:
            node = b.start_event.node if b.start_event is not None else None
            lane = lanes.add(node) if node else _lane_of_process(lanes, node_of, b.process)
            out.process_lane.setdefault(b.process, lane)
            pi = out.processes.setdefault(b.process, len(out.processes))
            out.intervals.append(
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
    return out


def _violations(
    verdict: Verdict,
    lanes: _Lanes,
    process_lane: Mapping[Any, str],
    node_of: Mapping[Any, str],
) -> list[dict[str, Any]]:
    """The verdict's violations, each with the names of the lanes it touches."""
    out: list[dict[str, Any]] = []
    for v in verdict["violations"]:
        if v.get("election") is None:  # server-level: processes are member names
            touched = [lanes.add(str(p)) for p in v["processes"]]
        else:
            touched = [
                process_lane.get(p) or _lane_of_process(lanes, node_of, p) for p in v["processes"]
            ]
        out.append({**v, "lanes": touched})
    return out


def _indexed_faults(faults: list[dict[str, Any]], index: Mapping[str, int]) -> list[dict[str, Any]]:
    """Faults with their nodes and partition groups as lane indexes."""
    for fault in faults:
        fault["lanes"] = sorted({index[n] for n in fault.pop("nodes")})
        fault["groups"] = [[index[n] for n in g] for g in fault["groups"]]
    return faults
