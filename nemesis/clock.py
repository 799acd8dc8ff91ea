"""The clock nemesis: skew what members and candidates perceive as time.

It writes the clock control file of `harness.skewclock` (`{"offset_ns", "rate",
"since_ns"}`) on the node, atomically (temp file + rename, through `backend.run`), for
the member (`cluster.member_clock_file`; None means this target's member cannot be
skewed) and/or the candidate (`cluster.candidate_clock_file`), as the `processes`
setting says. History stamps are never skewed: only what the system perceives.

Modes:
- `bump`: jump the clock by `offset_ns` until heal.
- `rate`: run the clock at `rate` (from `since_ns` = now, so there is no jump).
- `strobe`: flip the offset between two values every `period_ms`, in a background
  thread that heal stops and joins.

Safety envelope (the default). A lease-based elector assumes clocks drift by at most a
known bound, and can only be safe under faults within that bound; a nemesis that breaks
the assumption finds "bugs" that are only the assumption. So by default this nemesis
models bounded drift:
- `rate` on one node, with |rate - 1| <= max_rate_skew: a slow rate on the current
  leader (it thinks its lease lasts longer) or a fast one on a follower (it thinks the
  leader's lease ran out sooner): the two directions that test the elector's margin.
- `bump` only forward (a monotonic clock never goes back; a forward jump on one node is
  a burst of fast time), on one node, by at most max_bump_ms.
- `strobe` only on a non-leader node (it jumps back and forth), between its current
  offset and that plus at most max_bump_ms; if the node becomes leader meanwhile, the
  strobe stops moving its clock back.
- Heal never makes a clock jump: it sets the rate back to 1 and keeps the offset the
  clock has reached (forward bumps and drift accumulate per node over a run). Resetting
  to zero would move a clock back after a forward bump or a fast rate (or forward, by
  up to max_rate_skew x duration, after a slow one), which is itself unbounded drift
  on a node that may lead by then. The offsets kept are in each `clock-reset` event.
`unbounded: true` lifts these limits for users who want to see what breaks: any target
(up to all nodes), bumps and rates in both directions, strobe on the leader, and heal
resets every touched clock to real time.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.backends.base import Node
from harness.nemesis._common import (
    PROCESSES,
    TARGETS,
    FaultError,
    choose_nodes,
    settings_reader,
    start_or_undo,
)
from harness.nemesis.base import Cluster, FaultPlan, NemesisRefused, ReportBand
from harness.skewclock import Skew
from harness.targets.base import Timing

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("bump", "strobe", "rate")
# A clock fault's default durations straddle this many election timeouts (or the takeover
# time, if longer): see ClockNemesis.duration_bound.
CLOCK_ELECTIONS = 5

REFUSAL = (
    "clock: cannot skew the members of this target (Go programs read the clock through "
    "the vDSO; containers share the kernel clock); use processes: candidate"
)
REMOTE_REFUSAL = (
    "clock: member clocks on remote (ssh) hosts are out of scope: the harness does not "
    "set a real host's clock; candidates run on the harness machine and can be skewed "
    "(use processes: candidate)"
)
# Atomic replace on the node: readers (SkewClock) see the old file or the new one. The
# directory is writable by the node's (unprivileged) processes and this runs as root, so
# the temporary file is a fresh one made by mktemp (O_EXCL: never a planted link), and
# the rename replaces whatever is at the final name itself, never a link's target.
WRITE_SH = (
    't=$(mktemp "$2.XXXXXXXX") && printf "%s" "$1" > "$t" && chmod 644 "$t" '
    '&& mv -f "$t" "$2" || { rm -f "$t"; exit 1; }'
)

Key = tuple[str, str]  # (node name, "member" | "candidate")


class ClockFault:
    def __init__(
        self,
        nemesis: ClockNemesis,
        cluster: Cluster,
        plan: FaultPlan,
        nodes: list[Node],
        value: dict[str, Any],
    ) -> None:
        self.nemesis = nemesis
        self.cluster = cluster
        self.plan = plan
        self.nodes = nodes
        self.value = value
        self.processes: str = plan.params.get("processes", nemesis.processes)
        self.description = (
            f"clock {plan.mode} ({self.processes}) on {', '.join(n.name for n in nodes)}"
        )
        self.files: dict[Key, tuple[Node, str]] = {}
        for node in nodes:
            for kind in ("member", "candidate"):
                if self.processes not in (kind, "both"):
                    continue
                if kind == "member":
                    path = cluster.member_clock_file(node)
                    if path is None:
                        raise NemesisRefused(f"{REFUSAL} (node {node.name})")
                else:
                    path = cluster.candidate_clock_file(node)
                self.files[(node.name, kind)] = (node, path)
        # What each file says now, as far as this nemesis knows (it alone writes them).
        self.current: dict[Key, Skew] = {k: nemesis.skew_of(k) for k in self.files}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reset: set[Key] = set()
        self._kept: dict[str, int] = {}  # "node/process" -> offset the heal kept
        self._healed = False

    def _write(self, key: Key, skew: Skew) -> None:
        node, path = self.files[key]
        if key[1] == "candidate" and not self.cluster.backend.shares_clock:
            # The candidate runs on the harness machine (ssh hosts): its file is here.
            tmp = Path(f"{path}.tmp.{os.getpid()}")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(skew.to_json())
            os.replace(tmp, path)
            self.current[key] = skew
            self.nemesis.set_skew(key, skew)
            return
        r = self.cluster.backend.run(node, ["sh", "-c", WRITE_SH, "sh", skew.to_json(), path])
        if r.returncode != 0:
            raise FaultError(
                f"clock: writing {path} on {node.name} failed ({r.returncode}): {r.stderr.strip()}"
            )
        self.current[key] = skew
        self.nemesis.set_skew(key, skew)

    def apply(self) -> None:
        mode, params = self.plan.mode, self.plan.params
        if mode == "bump":
            for key, base in list(self.current.items()):
                self._write(key, Skew(offset_ns=base.offset_ns + int(params["offset_ns"])))
        elif mode == "rate":
            # The kernel's monotonic clock is shared by namespaces and containers, so
            # "now" here is "now" in the node's SkewClock.
            since = time.monotonic_ns()
            for key, base in list(self.current.items()):
                self._write(key, Skew(base.offset_ns, float(params["rate"]), since))
        elif mode == "strobe":
            self._strobe_base = {k: s.offset_ns for k, s in self.current.items()}
            self._flip(high=True)
            self._thread = threading.Thread(
                target=self._strobe, name="clock-strobe", daemon=True
            )  # fmt: skip
            self._thread.start()
        else:
            raise ValueError(f"clock: unknown mode {mode!r}; expected one of {', '.join(MODES)}")

    def _flip(self, high: bool) -> None:
        delta = int(self.plan.params["offset_ns"])
        leader = None
        if not high and not self.nemesis.unbounded:
            try:
                current = self.cluster.leader()
                leader = None if current is None else current.name
            except Exception as exc:  # a failing probe must not stop the strobe
                log.warning("clock strobe: leader unknown: %s", exc)
        for key, base in self._strobe_base.items():
            if high:
                offset = base + delta
            elif self.nemesis.unbounded:
                offset = base - delta
            elif key[0] == leader:
                continue  # bounded: never move a leader's clock back
            else:
                offset = base
            self._write(key, Skew(offset_ns=offset))

    def _strobe(self) -> None:
        period = float(self.plan.params.get("period_ms", self.nemesis.strobe_period_ms)) / 1000
        high = True
        while not self._stop.wait(period):
            high = not high
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._flip(high)
            except Exception as exc:
                log.warning("clock strobe on %s: %s", self.description, exc)

    def heal(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():  # pragma: no cover - a write stuck past its timeout
                raise FaultError(f"{self.description}: the strobe thread did not stop")
        with self._lock:
            if self._healed:
                return
            now = time.monotonic_ns()
            errors = []
            for key, skew in list(self.current.items()):
                if key in self._reset:
                    continue
                # Bounded: stop drifting, keep the reading the clock has reached.
                offset = 0 if self.nemesis.unbounded else skew.apply(now) - now
                try:
                    self._write(key, Skew(offset_ns=offset))
                except Exception as exc:
                    errors.append(str(exc))
                    continue
                self._reset.add(key)
                self._kept[f"{key[0]}/{key[1]}"] = offset
            if errors:
                raise FaultError(f"{self.description}: reset failed: " + "; ".join(errors))
            self._healed = True
            value = dict(self.value)
            if not self.nemesis.unbounded:
                value["kept_offset_ns"] = dict(self._kept)
            self.cluster.record("clock-reset", value)

    def __repr__(self) -> str:
        return f"ClockFault({self.description!r})"


RATE_TARGETS = ("leader", "holder", "follower")
DEFAULT_RATE_TARGETS = ("leader", "follower")
# A rate that brackets a fault aimed at the leader (or holder) is drawn from the strong
# end of the envelope, at least this share of max_rate_skew: a lease that trusts its
# clock outlives the followers' window by at most (1/rate - 1) x the lease, 75 ms at
# 0.8 x 300 ms but 16 ms at 0.95, less than a heartbeat, and the followers use up part
# of it electing (a split vote of two followers that timed out together costs a whole
# round). Measured on the reference elector without a drift margin (README, plain
# options): a cut of the leader bracketed at 0.80-0.85 was caught about 2 times in 3.
BRACKET_SKEW = 0.9


class ClockNemesis:
    """Clock bump, strobe and rate skew through the harness's clock control files."""

    name = "clock"
    # With faults on the node timeline in the run, each clock fault brackets one of them
    # (nemesis/schedule.py): a skew matters across the election another fault causes.
    brackets = "node"
    report_band = ReportBand("clock", "clock-skew", "clock-reset", "rgba(247, 144, 9, .2)")
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(MODES)}",
        "processes": f"one of {', '.join(PROCESSES)} (default member)",
        "max_rate_skew": "a number in (0, 0.9]: rates are drawn in [1-s, 1+s] (default 0.2)",
        "max_bump_ms": "milliseconds in (0, 3600000] (default 250)",
        "strobe_period_ms": "milliseconds in (0, 60000] (default 100)",
        "unbounded": "true or false (default false): lift the bounded-drift envelope",
        "rate_targets": "a list of leader, holder, follower: whose rate `rate` skews "
        "(default leader, follower; holder: the node whose candidate holds the election)",
        "min_rate_skew": "a number in (0, max_rate_skew] (default max_rate_skew / 4)",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        r = settings_reader(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = r.subset("modes", MODES, MODES)
        self.processes = r.choice("processes", "member", PROCESSES)
        self.max_rate_skew = r.number("max_rate_skew", 0.2, 0, 0.9, above_low=True)
        self.max_bump_ms = r.number("max_bump_ms", 250, 0, 3_600_000, above_low=True)
        self.strobe_period_ms = r.number("strobe_period_ms", 100, 0, 60_000, above_low=True)
        self.rate_targets: tuple[str, ...] = r.subset(
            "rate_targets", DEFAULT_RATE_TARGETS, RATE_TARGETS
        )
        self.min_rate_skew = r.number(
            "min_rate_skew", self.max_rate_skew / 4, 0, self.max_rate_skew, above_low=True
        )
        self.unbounded = r.boolean("unbounded", False)
        # What this nemesis last wrote to each clock file over the run (it is their only
        # writer): a later fault builds on the offset an earlier heal kept.
        self._skews: dict[Key, Skew] = {}
        self._skews_lock = threading.Lock()

    def skew_of(self, key: Key) -> Skew:
        with self._skews_lock:
            return self._skews.get(key, Skew())

    def set_skew(self, key: Key, skew: Skew) -> None:
        with self._skews_lock:
            self._skews[key] = skew

    def duration_bound(self, timing: Timing) -> tuple[float, str]:
        """A skew matters while something else happens to the skewed node: a lease held
        or lost across an election. So a clock fault lasts across several election
        timeouts (five), and past the takeover time, to overlap the other faults."""
        bound = max(timing.takeover_s, CLOCK_ELECTIONS * timing.election_timeout_s)
        return bound, f"{CLOCK_ELECTIONS} election timeouts or the takeover: {timing.describe()}"

    def refusal(self, cluster: Cluster) -> str | None:
        if self.processes == "candidate":
            return None
        if not cluster.backend.shares_clock:
            return REMOTE_REFUSAL
        missing = [n.name for n in cluster.nodes if cluster.member_clock_file(n) is None]
        if missing:
            return REFUSAL if len(missing) == len(cluster.nodes) else f"{REFUSAL} ({missing})"
        return None

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        """Targets and magnitudes for one fault, inside the envelope unless unbounded."""
        params: dict[str, Any] = {"processes": self.processes}
        unbounded = self.unbounded
        any_target = TARGETS
        # Magnitudes from a quarter of the bound to the bound: tiny skews test nothing.
        amount_ns = int(rng.uniform(0.25, 1.0) * self.max_bump_ms * 1_000_000)
        if mode == "bump":
            params["target"] = rng.choice(any_target) if unbounded else "one"
            sign = rng.choice((-1, 1)) if unbounded else 1
            params["offset_ns"] = sign * amount_ns
        elif mode == "strobe":
            params["target"] = rng.choice(any_target) if unbounded else "follower"
            params["offset_ns"] = amount_ns
            params["period_ms"] = self.strobe_period_ms
        elif mode == "rate":
            skew = rng.uniform(self.min_rate_skew, self.max_rate_skew)
            if unbounded:
                params["target"] = rng.choice(any_target)
                sign = rng.choice((-1, 1))
            else:
                # Slow on the leader (or holder), fast on a follower: the directions that
                # matter.
                params["target"] = rng.choice(self.rate_targets)
                sign = 1 if params["target"] == "follower" else -1
            params["rate"] = round(1.0 + sign * skew, 6)
        else:
            raise ValueError(f"clock: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        return params

    def bracket_params(self, aim: str, rng: random.Random) -> tuple[str, dict[str, Any]] | None:
        """Around a fault that takes the leader (or holder) away: that node's clock runs
        slow, from the strong end of the envelope, so that its lease (or its candidate's
        deadline) outlives the election the fault starts. None when `rate` on that node
        is not in this nemesis's settings."""
        if "rate" not in self.modes or aim not in self.rate_targets:
            return None
        low = max(self.min_rate_skew, BRACKET_SKEW * self.max_rate_skew)
        skew = rng.uniform(low, self.max_rate_skew)
        return "rate", {"processes": self.processes, "target": aim, "rate": round(1.0 - skew, 6)}

    def start(self, cluster: Cluster, plan: FaultPlan) -> ClockFault:
        missing = ("offset_ns",) if plan.mode in ("bump", "strobe") else ("rate",)
        for key in missing:
            if key not in plan.params:
                raise ValueError(f"clock {plan.mode}: plan params lack {key!r}: {plan.params}")
        target = plan.params.get("target", "one")
        nodes, note = choose_nodes(cluster, target, plan.pick)
        value: dict[str, Any] = {
            "nodes": [n.name for n in nodes],
            "mode": plan.mode,
            "processes": plan.params.get("processes", self.processes),
            "target": target,
        }
        for key in ("offset_ns", "rate", "period_ms"):
            if key in plan.params:
                value[key] = plan.params[key]
        if note:
            value["note"] = note
        fault = ClockFault(self, cluster, plan, nodes, value)
        start_or_undo(cluster, "clock-skew", value, fault.apply, fault.heal)
        return fault
