"""A case's figures across its runs, judged against its expectations and a baseline.

Figures: runs, runs with violations (and the kinds), runs that could not run, failover
p50/p99 pooled over every run's latencies (from each run's history; when a history is
not readable, the worst of the runs' own p99s and the median of their p50s), leaderless
% = sum of leaderless time / sum of spans, the fewest acquisitions in a run, and the most
server-level elections in a run (terms with a leader after the first, from the status
probe: under no faults, every one is a false election) and the fewest.

A baseline is one JSON file per case (`DIR/<suite>/<case>.json`) holding those figures.
A case regresses when its p99 grows beyond the suite's tolerance, its leaderless %
grows by more than the tolerated points, or it was valid in the baseline and now has
violations.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.checker.stats import percentile
from harness.errors import ConfigError
from harness.oneline import one_line
from harness.safefile import write_atomic
from harness.suite.model import Case, Expect, Suite, Tolerance, slug
from harness.suite.runner import RunRecord

BASELINE_FORMAT = 1


@dataclass
class Figures:
    runs: int = 0
    runs_caught: int = 0  # runs with at least one violation
    runs_error: int = 0  # runs that could not run or had nothing to judge
    kinds: dict[str, int] = field(default_factory=dict)  # violation kind -> count
    failover_count: int = 0
    failover_p50_ns: int | None = None
    failover_p99_ns: int | None = None
    failover_pooled: bool = True  # False: from the runs' own summaries
    leaderless_pct: float | None = None
    acquisitions_min: int | None = None
    elections_max: int | None = None
    elections_min: int | None = None

    @property
    def runs_judged(self) -> int:
        return self.runs - self.runs_error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        """Figures from a saved baseline; ValueError names the key of a wrong value, so a
        bad baseline stops the suite before any run instead of the judge after all."""
        if not isinstance(data, dict):
            raise ValueError(f"'figures': expected an object, got {_shown(data)}")
        for key, value in data.items():
            check = _FIELD_CHECKS.get(key)
            if check is not None and not check[0](value):
                raise ValueError(f"'figures.{key}': expected {check[1]}, got {_shown(value)}")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


_BIG = 2**62  # counts and nanoseconds beyond this are no measurement


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _BIG


def _count_or_none(v: Any) -> bool:
    return v is None or _count(v)


def _shown(v: Any) -> str:
    return one_line(orjson.dumps(v, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode(), 60)


_FIELD_CHECKS: dict[str, tuple[Any, str]] = {
    "runs": (_count, "a count"),
    "runs_caught": (_count, "a count"),
    "runs_error": (_count, "a count"),
    "kinds": (
        lambda v: isinstance(v, dict) and all(_count(n) for n in v.values()),
        "an object of counts",
    ),
    "failover_count": (_count, "a count"),
    "failover_p50_ns": (_count_or_none, "nanoseconds or null"),
    "failover_p99_ns": (_count_or_none, "nanoseconds or null"),
    "failover_pooled": (lambda v: isinstance(v, bool), "true or false"),
    "leaderless_pct": (
        lambda v: (
            v is None or (isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100)
        ),
        "a percentage (0 to 100) or null",
    ),
    "acquisitions_min": (_count_or_none, "a count or null"),
    "elections_max": (_count_or_none, "a count or null"),
    "elections_min": (_count_or_none, "a count or null"),
}


def aggregate(records: list[RunRecord]) -> Figures:
    f = Figures(runs=len(records))
    kinds: Counter[str] = Counter()
    judged = [r for r in records if r.ok]
    f.runs_error = len(records) - len(judged)
    for r in judged:
        kinds.update(r.violation_kinds)
        f.runs_caught += bool(r.violation_kinds)
    f.kinds = dict(sorted(kinds.items()))
    if judged and all(r.failover_latencies_ns is not None for r in judged):
        pooled = sorted(x for r in judged for x in r.failover_latencies_ns or [])
        f.failover_count = len(pooled)
        f.failover_p50_ns = percentile(pooled, 50)
        f.failover_p99_ns = percentile(pooled, 99)
    elif judged:
        # No raw latencies: the worst p99 stands for the pool's (never better than truth
        # by more than one run's tail), the median p50 for its middle.
        f.failover_pooled = False
        p99s = [r.failover_p99_ns for r in judged if r.failover_p99_ns is not None]
        p50s = sorted(r.failover_p50_ns for r in judged if r.failover_p50_ns is not None)
        f.failover_p99_ns = max(p99s) if p99s else None
        f.failover_p50_ns = percentile(p50s, 50)
    spans = [(r.leaderless_ns, r.span_ns) for r in judged if r.span_ns]
    if spans:
        f.leaderless_pct = 100.0 * sum(lo or 0 for lo, _ in spans) / sum(s for _, s in spans)
    acquisitions = [r.acquisitions for r in judged if r.acquisitions is not None]
    f.acquisitions_min = min(acquisitions) if acquisitions else None
    elections = [r.elections for r in judged if r.elections is not None]
    f.elections_max = max(elections) if elections else None
    f.elections_min = min(elections) if elections else None
    return f


def seconds(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e9:.3f} s"


def check_expectations(expect: Expect, f: Figures, records: list[RunRecord]) -> list[str]:
    """Each expectation that failed, in words; empty when the case passes."""
    failures: list[str] = []
    if f.runs == 0:
        return ["no run was carried out"]
    if f.runs_error:
        first = next(r for r in records if not r.ok)
        why = first.error or f"nothing to judge (verdict {first.valid!r})"
        failures.append(
            f"{f.runs_error}/{f.runs} run(s) could not be judged: seed {first.seed}: {why}"
        )
    judged = f.runs_judged
    kinds = ", ".join(f.kinds) or "none"
    if expect.valid is True and f.runs_caught:
        failures.append(f"expected valid: violations in {f.runs_caught}/{judged} run(s) ({kinds})")
    if expect.valid is False and f.runs_caught < judged:
        failures.append(f"expected invalid in every run: caught in {f.runs_caught}/{judged}")
    if expect.caught_at_least is not None and judged:
        share = f.runs_caught / judged
        if share < expect.caught_at_least:
            wanted = (
                "in every run"
                if expect.caught_at_least >= 1
                else f"in >= {expect.caught_at_least:.0%} of runs"
            )
            failures.append(f"expected caught {wanted}: caught in {f.runs_caught}/{judged}")
    if expect.allow is not None:
        other = sorted(set(f.kinds) - set(expect.allow))
        if other:
            failures.append(
                f"violations of kinds {', '.join(other)} (allowed only {', '.join(expect.allow)})"
            )
    if expect.violations == "none" and f.runs_caught:
        failures.append(f"expected no violations: found {kinds} in {f.runs_caught}/{judged} run(s)")
    if expect.violations == "any" and not f.runs_caught and judged:
        failures.append(f"expected violations: none found in {judged} run(s)")
    if isinstance(expect.violations, tuple) and judged:
        if not f.runs_caught:
            failures.append(
                f"expected violations of {', '.join(expect.violations)}: none found in "
                f"{judged} run(s)"
            )
        other = sorted(set(f.kinds) - set(expect.violations))
        if other:
            failures.append(
                f"unexpected violation kinds {', '.join(other)} "
                f"(expected only {', '.join(expect.violations)})"
            )
    for name, limit, value in (
        ("p50", expect.failover_p50_s, f.failover_p50_ns),
        ("p99", expect.failover_p99_s, f.failover_p99_ns),
    ):
        # No failover at all is not slow: the bound holds.
        if limit is not None and value is not None and value > limit * 1e9:
            failures.append(f"failover {name} {seconds(value)} > {limit:g} s")
    if (
        expect.leaderless_pct_max is not None
        and f.leaderless_pct is not None
        and f.leaderless_pct > expect.leaderless_pct_max
    ):
        failures.append(f"leaderless {f.leaderless_pct:.1f} % > {expect.leaderless_pct_max:g} %")
    if (
        expect.acquisitions_min is not None
        and f.acquisitions_min is not None
        and f.acquisitions_min < expect.acquisitions_min
    ):
        failures.append(f"acquisitions {f.acquisitions_min} in a run < {expect.acquisitions_min}")
    if (
        expect.elections_max is not None
        and f.elections_max is not None
        and f.elections_max > expect.elections_max
    ):
        failures.append(f"elections {f.elections_max} in a run > {expect.elections_max}")
    if expect.elections_min is not None and judged:
        # Unlike a bound that holds when nothing was measured, a bug expected to show
        # must be seen: no count is a failure.
        if f.elections_min is None:
            failures.append("elections could not be counted (no readable history)")
        elif f.elections_min < expect.elections_min:
            failures.append(
                f"elections {f.elections_min} in a run < {expect.elections_min} "
                "(the flapping it expects was not seen)"
            )
    return failures


def compare_baseline(
    f: Figures, base: Figures, tol: Tolerance, allow: tuple[str, ...] = ()
) -> list[str]:
    """Each way this case got worse than its baseline beyond the tolerance (violations
    only of `allow`ed kinds are not a regression)."""
    out: list[str] = []
    only_allowed = bool(allow) and set(f.kinds) <= set(allow)
    if base.runs_judged and not base.runs_caught and f.runs_caught and not only_allowed:
        out.append(
            f"safety: valid in the baseline ({base.runs_judged} run(s)), violations now in "
            f"{f.runs_caught}/{f.runs_judged} ({', '.join(f.kinds)})"
        )
    if f.failover_p99_ns is not None and base.failover_p99_ns is not None:
        allowed = (
            base.failover_p99_ns * (1 + tol.failover_p99_pct / 100) + tol.failover_p99_ms * 1e6
        )
        if f.failover_p99_ns > allowed:
            growth = (
                f"+{(f.failover_p99_ns / base.failover_p99_ns - 1):.0%}"
                if base.failover_p99_ns
                else "from 0"
            )
            out.append(
                f"failover p99 {seconds(base.failover_p99_ns)} -> {seconds(f.failover_p99_ns)} "
                f"({growth}; tolerance {tol.failover_p99_pct:g} % + {tol.failover_p99_ms:g} ms)"
            )
    if (
        f.leaderless_pct is not None
        and base.leaderless_pct is not None
        and f.leaderless_pct > base.leaderless_pct + tol.leaderless_pct_points
    ):
        out.append(
            f"leaderless {base.leaderless_pct:.1f} % -> {f.leaderless_pct:.1f} % "
            f"(tolerance {tol.leaderless_pct_points:g} points)"
        )
    return out


@dataclass
class CaseVerdict:
    """A case's figures and judgement, as the table, the index and pytest show them."""

    case: Case
    records: list[RunRecord]
    figures: Figures
    failures: list[str]
    regressions: list[str]
    baseline: Figures | None = None  # None: no baseline given, or none for this case

    @property
    def passed(self) -> bool:
        return not self.failures and not self.regressions

    @property
    def errored(self) -> bool:
        return self.figures.runs_error > 0


def judge(
    case: Case, records: list[RunRecord], tolerance: Tolerance, baseline: Figures | None
) -> CaseVerdict:
    figures = aggregate(records)
    failures = check_expectations(case.expect, figures, records)
    regressions = (
        compare_baseline(figures, baseline, tolerance, case.expect.allow or ())
        if baseline is not None
        else []
    )
    return CaseVerdict(case, records, figures, failures, regressions, baseline)


def baseline_path(directory: str | os.PathLike[str], suite: Suite, case: Case) -> Path:
    return Path(directory) / suite.stem / f"{slug(case.name)}.json"


def save_baseline(directory: str | os.PathLike[str], suite: Suite, verdict: CaseVerdict) -> Path:
    path = baseline_path(directory, suite, verdict.case)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": BASELINE_FORMAT,
        "suite": suite.name,
        "case": verdict.case.name,
        "seeds": list(verdict.case.seeds),
        "figures": verdict.figures.to_dict(),
    }
    write_atomic(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    return path


class BaselineError(ConfigError):
    """A baseline file that cannot be read; the message names it."""


def load_baselines(
    suite: Suite, directory: str | None, option: str = "--baseline"
) -> dict[str, Figures | None]:
    """The baseline of every case of `suite` saved under `directory` (none given: {});
    BaselineError names `option` when the directory is missing."""
    if directory is None:
        return {}
    if not Path(directory).is_dir():
        raise BaselineError(f"{option} {directory}: no such directory")
    return {c.name: load_baseline(directory, suite, c) for c in suite.cases}


def load_baseline(directory: str | os.PathLike[str], suite: Suite, case: Case) -> Figures | None:
    """The case's saved figures; None when the baseline has no file for it (a new case)."""
    path = baseline_path(directory, suite, case)
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise BaselineError(f"{path}: expected an object, got {_shown(data)}")
        if data.get("format") != BASELINE_FORMAT:
            raise BaselineError(f"{path}: unknown baseline format {_shown(data.get('format'))}")
        return Figures.from_dict(data["figures"])
    except BaselineError:
        raise
    except orjson.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not a readable baseline: {one_line(exc)}") from None
    except ValueError as exc:  # a figure of the wrong type: the message names its key
        raise BaselineError(f"{path}: {one_line(exc)}") from None
    except (OSError, KeyError, TypeError) as exc:
        raise BaselineError(f"{path}: not a readable baseline: {one_line(exc)}") from None
