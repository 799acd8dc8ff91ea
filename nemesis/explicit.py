"""Explicit fault schedules: a list of faults instead of a seed.

A run configuration may give `nemesis.schedule` as a list; every run writes the schedule
it carried out to `results.json` in exactly this form, so a run's schedule can be fed
back (`harness run --replay`, `harness shrink`):

    - {kind: pause, mode: candidate, target: holder, at_s: 3.0, duration_s: 4.1}
    - {kind: partition, mode: leader, at_s: 8.5, duration_s: 3.2, pick: 1234}
    - {kind: partition, mode: one-direction, at_s: 12.0, duration_s: 3.0,
       params: {direction: out}}
    - {kind: clock, mode: rate, target: leader, at_s: 2.0, duration_s: 5.0,
       params: {processes: both, rate: 0.8}}

`kind` is the nemesis, `mode` one of its modes, `at_s` the start (seconds after the
workload started) and `duration_s` how long it lasts. `target` (pause, kill, clock) says
which nodes: a role resolved when the fault starts (`leader`, `holder`, `follower`, `one`,
`minority`, `majority`, `all`) or a node name (`n2`); a partition's or lossy link's mode
is its role.
`pick` (default 0) is the number that chooses among nodes where the role leaves a choice,
as in a seeded schedule; `params` holds the rest of the nemesis's parameters.

Validation is one function from plain data to plans, raising `ScheduleError` naming the
entry and key, so any configuration reader can call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.nemesis._common import PROCESSES, TARGETS
from harness.nemesis.base import FaultPlan
from harness.nemesis.clock import MODES as CLOCK_MODES
from harness.nemesis.lossy import MODES as LOSSY_MODES
from harness.nemesis.partition import DIRECTIONS
from harness.nemesis.partition import MODES as PARTITION_MODES
from harness.nemesis.schedule import ScheduleError  # one error for bad schedules, seeded or not
from harness.validation import echo

FAULT_KEYS = ("kind", "mode", "target", "at_s", "duration_s", "pick", "params")
NODE_NAME = re.compile(r"n[1-9][0-9]*")
MAX_OFFSET_S = 86_400.0


def _check_clock(mode: str, params: Mapping[str, Any]) -> str | None:
    allowed = {"processes", "offset_ns", "period_ms", "rate"}
    for key in params:
        if key not in allowed:
            return f"unknown key {echo(key)}; expected {', '.join(sorted(allowed))}"
    if "processes" in params and params["processes"] not in PROCESSES:
        return f"processes must be one of {', '.join(PROCESSES)}; got {echo(params['processes'])}"
    if mode in ("bump", "strobe"):
        offset = params.get("offset_ns")
        if isinstance(offset, bool) or not isinstance(offset, int):
            return f"clock {mode} needs offset_ns (integer nanoseconds); got {echo(offset)}"
    if mode == "strobe" and "period_ms" in params:
        period = params["period_ms"]
        if isinstance(period, bool) or not isinstance(period, int | float) or period <= 0:
            return f"period_ms must be a number > 0; got {echo(period)}"
    if mode == "rate":
        rate = params.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100:
            return f"clock rate needs rate (a number in (0, 100]); got {echo(rate)}"
    return None


def _check_partition(mode: str, params: Mapping[str, Any]) -> str | None:
    if mode != "one-direction":
        return _no_params(mode, params)
    for key in params:
        if key != "direction":
            return f"unknown key {echo(key)}; expected direction"
    if params.get("direction", "out") not in DIRECTIONS:
        return f"direction must be one of {', '.join(DIRECTIONS)}; got {echo(params['direction'])}"
    return None


def _check_lossy(mode: str, params: Mapping[str, Any]) -> str | None:
    for key in params:
        if key != "probability":
            return f"unknown key {echo(key)}; expected probability"
    p = params.get("probability")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1:
        return f"lossy needs probability (a number in (0, 1]); got {echo(p)}"
    return None


def _no_params(mode: str, params: Mapping[str, Any]) -> str | None:
    return f"this kind takes no params; got {sorted(params)}" if params else None


# kind -> (its modes, whether it takes a `target`, its params check)
KINDS: dict[str, tuple[tuple[str, ...], bool, Callable[[str, Mapping[str, Any]], str | None]]] = {
    "partition": (PARTITION_MODES, False, _check_partition),
    "pause": (PROCESSES, True, _no_params),
    "kill": (PROCESSES, True, _no_params),
    "clock": (CLOCK_MODES, True, _check_clock),
    "lossy": (LOSSY_MODES, False, _check_lossy),
}


def plan_to_entry(plan: FaultPlan) -> dict[str, Any]:
    """The list form of one planned fault (what results.json records)."""
    params = dict(plan.params)
    entry: dict[str, Any] = {"kind": plan.nemesis, "mode": plan.mode}
    if "target" in params:
        entry["target"] = params.pop("target")
    entry["at_s"] = plan.at_s
    entry["duration_s"] = plan.duration_s
    entry["pick"] = plan.pick
    if params:
        entry["params"] = params
    return entry


def plans_to_entries(plans: Sequence[FaultPlan]) -> list[dict[str, Any]]:
    return [plan_to_entry(p) for p in plans]


def _number(where: str, key: str, value: Any, low: float, positive: bool) -> float:
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or value < low or (positive and value <= 0) or value > MAX_OFFSET_S:
        need = "> 0" if positive else f">= {low:g}"
        raise ScheduleError(
            f"{where}.{key}: expected a number of seconds {need}; got {echo(value)}"
        )
    return round(float(value), 3)


def parse_fault(data: Any, where: str) -> FaultPlan:
    """One entry of the list form -> a FaultPlan; `where` names it in messages."""
    if not isinstance(data, Mapping):
        raise ScheduleError(
            f"{where}: expected a mapping with {', '.join(FAULT_KEYS)}; got {echo(data)}"
        )
    for key in data:
        if key not in FAULT_KEYS:
            raise ScheduleError(
                f"{where}: unknown key {echo(key)}; expected one of {', '.join(FAULT_KEYS)}"
            )
    for key in ("kind", "mode", "at_s", "duration_s"):
        if key not in data:
            raise ScheduleError(f"{where}: missing key {echo(key)}")
    kind = data["kind"]
    if kind not in KINDS:
        raise ScheduleError(f"{where}.kind: expected one of {', '.join(KINDS)}; got {echo(kind)}")
    modes, takes_target, check_params = KINDS[kind]
    mode = data["mode"]
    if mode not in modes:
        raise ScheduleError(f"{where}.mode: {kind} modes are {', '.join(modes)}; got {echo(mode)}")
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise ScheduleError(f"{where}.params: expected a mapping; got {echo(params)}")
    params = dict(params)
    if "target" in params:
        raise ScheduleError(f"{where}.params: give the target as the entry's own 'target' key")
    if "target" in data:
        target = data["target"]
        if not takes_target:
            raise ScheduleError(
                f"{where}.target: a {kind} has no target (its mode says which nodes); "
                f"got {echo(target)}"
            )
        if not isinstance(target, str) or not (target in TARGETS or NODE_NAME.fullmatch(target)):
            raise ScheduleError(
                f"{where}.target: expected one of {', '.join(TARGETS)} or a node name "
                f"(n1, n2, ...); "
                f"got {echo(target)}"
            )
        params["target"] = target
    elif takes_target:
        params["target"] = "one"
    problem = check_params(mode, {k: v for k, v in params.items() if k != "target"})
    if problem is not None:
        raise ScheduleError(f"{where}.params: {problem}")
    pick = data.get("pick", 0)
    if isinstance(pick, bool) or not isinstance(pick, int) or not 0 <= pick < 2**63:
        raise ScheduleError(f"{where}.pick: expected an integer >= 0; got {echo(pick)}")
    at_s = _number(where, "at_s", data["at_s"], 0.0, positive=False)
    duration_s = _number(where, "duration_s", data["duration_s"], 0.0, positive=True)
    return FaultPlan(kind, mode, at_s, duration_s, pick, params)


def parse_fault_list(data: Any, where: str, time_limit_s: float | None = None) -> list[FaultPlan]:
    """The list form -> plans in start order. With `time_limit_s`, every fault must end
    by then (a fault cut short by the end of the workload would not be what was asked)."""
    if not isinstance(data, list):
        raise ScheduleError(f"{where}: expected a list of faults; got {echo(data)}")
    plans = [parse_fault(item, f"{where}[{i}]") for i, item in enumerate(data)]
    if time_limit_s is not None:
        check_fits(plans, time_limit_s, where)
    return sorted(plans, key=lambda p: (p.at_s, p.nemesis))


def check_fits(plans: Sequence[FaultPlan], time_limit_s: float, where: str) -> None:
    for i, plan in enumerate(plans):
        end = plan.at_s + plan.duration_s
        if end > time_limit_s + 1e-9:
            raise ScheduleError(
                f"{where}[{i}]: the {plan.nemesis} fault ends at {end:g} s, after the time "
                f"limit ({time_limit_s:g} s)"
            )


def kinds_of(plans: Sequence[FaultPlan]) -> tuple[str, ...]:
    """The nemeses a list uses, in first-use order (("none",) for an empty list)."""
    out: list[str] = []
    for plan in plans:
        if plan.nemesis not in out:
            out.append(plan.nemesis)
    return tuple(out) or ("none",)


def describe(plan: FaultPlan) -> str:
    """One fault for people: "pause holder's candidate 4.1 s at 3.0 s"."""
    target = plan.params.get("target")
    if plan.nemesis in ("pause", "kill"):
        what = {"both": "member and candidate"}.get(plan.mode, plan.mode)
        group = {"all": "every node", "minority": "a minority", "majority": "a majority"}
        if target in group:
            head = f"{plan.nemesis} {what} on {group[target]}"
        else:
            head = f"{plan.nemesis} {target}'s {what}"
    elif plan.nemesis == "clock":
        detail = ""
        if "rate" in plan.params:
            detail = f" x{plan.params['rate']:g}"
        elif "offset_ns" in plan.params:
            detail = f" {plan.params['offset_ns'] / 1e6:+g} ms"
        head = f"clock {plan.mode}{detail} on {target}"
    else:
        head = f"{plan.nemesis} {plan.mode}"
    return f"{head} {plan.duration_s:.1f} s at {plan.at_s:.1f} s"


__all__ = [
    "FAULT_KEYS",
    "KINDS",
    "ScheduleError",
    "check_fits",
    "describe",
    "kinds_of",
    "parse_fault",
    "parse_fault_list",
    "plan_to_entry",
    "plans_to_entries",
]
