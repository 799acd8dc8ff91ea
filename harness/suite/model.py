"""A regression suite's YAML: parsing and validation into `Suite` and `Case` objects.

    name: reference elector              # optional; default: the file's stem
    tolerance: {failover_p99_pct: 20, failover_p99_ms: 0, leaderless_pct_points: 5}
    defaults: {time_limit: 10, runs: 3}  # run keys, runs/seeds, expect: below every case
    cases:
      - name: safe/partition
        config: ../configs/reference/safe.yaml   # optional, relative to this file
        nemesis: {faults: [partition]}           # any run key, merged over the config
        runs: 3                                  # seeds 1..3 (or seeds: [4, 9])
        expect: {valid: true, failover_p99_s: 3, leaderless_pct_max: 20}

A case's run is built from, lowest first: the run defaults, the suite's `defaults`, the
`config:` file, the case's own run keys (mappings merge key by key, anything else
replaces), then command-line overrides; it is then validated by harness/runconfig.py's
parser, the target's settings and the nemeses' settings, so that a mistake stops the
suite before any run. Every error names the file, the case (number and name) and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checker import VIOLATION_KINDS
from harness.runconfig import RUN_KEYS, ConfigError, RunConfig, load_yaml, parse_run_config
from harness.targets import TargetError, make_target
from nemesis import make_nemeses

SUITE_KEYS = ("name", "description", "tolerance", "defaults", "cases")
CASE_KEYS = frozenset({"name", "config", "runs", "seeds", "expect"})
EXPECT_KEYS = (
    "valid", "caught", "caught_at_least", "violations", "failover_p50_s", "failover_p99_s",
    "leaderless_pct_max", "acquisitions_min", "elections_max",
)  # fmt: skip
TOLERANCE_KEYS = ("failover_p99_pct", "failover_p99_ms", "leaderless_pct_points")
MAX_RUNS = 1000
DEFAULT_RUNS = 3


class SuiteError(ConfigError):
    """A bad suite file: the message names the file, the case and the key."""


@dataclass(frozen=True)
class Expect:
    """What every case must show; None: not checked. Default: `valid: true`."""

    valid: bool | None = None
    caught_at_least: float | None = None  # fraction of runs with at least one violation
    violations: str | tuple[str, ...] | None = None  # "none", "any" or the allowed kinds
    failover_p50_s: float | None = None
    failover_p99_s: float | None = None
    leaderless_pct_max: float | None = None
    acquisitions_min: int | None = None
    elections_max: int | None = None  # server-level elections in a run, after the first

    def describe(self) -> list[str]:
        out = []
        if self.valid is not None:
            out.append("valid" if self.valid else "invalid in every run")
        if self.caught_at_least is not None:
            out.append(
                "caught in every run"
                if self.caught_at_least >= 1
                else f"caught in >= {self.caught_at_least:.0%} of runs"
            )
        if isinstance(self.violations, tuple):
            out.append(f"violations only of kinds {', '.join(self.violations)}")
        elif self.violations is not None:
            out.append(f"violations: {self.violations}")
        if self.failover_p50_s is not None:
            out.append(f"failover p50 <= {self.failover_p50_s:g} s")
        if self.failover_p99_s is not None:
            out.append(f"failover p99 <= {self.failover_p99_s:g} s")
        if self.leaderless_pct_max is not None:
            out.append(f"leaderless <= {self.leaderless_pct_max:g} %")
        if self.acquisitions_min is not None:
            out.append(f"acquisitions >= {self.acquisitions_min} per run")
        if self.elections_max is not None:
            out.append(f"elections <= {self.elections_max} per run")
        return out


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a case may get before it counts as regressed."""

    failover_p99_pct: float = 20.0  # relative growth of the pooled p99
    failover_p99_ms: float = 0.0  # plus this much absolute slack (noise at tiny p99s)
    leaderless_pct_points: float = 5.0  # growth of leaderless % in percentage points


@dataclass
class Case:
    name: str
    number: int  # 1-based position in the file, for messages
    run: RunConfig  # the seed is set per run
    seeds: tuple[int, ...]
    expect: Expect
    config_path: str | None = None

    @property
    def label(self) -> str:
        return f"case {self.number} ({self.name!r})"


@dataclass
class Suite:
    path: str
    name: str
    cases: list[Case]
    tolerance: Tolerance = field(default_factory=Tolerance)
    description: str = ""

    @property
    def stem(self) -> str:
        return slug(Path(self.path).stem)


def slug(text: str) -> str:
    """A file-name-safe form of a case or suite name (baselines, run directories)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "case"


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key (recursively); any other value in `over` replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class _Where:
    """Builds errors that name the file, the case and the key."""

    def __init__(self, source: str, case: str | None = None) -> None:
        self.source = source
        self.case = case

    @property
    def prefix(self) -> str:
        return f"{self.source}: {self.case}" if self.case else self.source

    def error(self, key: str, message: str) -> SuiteError:
        return SuiteError(f"{self.prefix}: key '{key}': {message}")

    def expected(self, key: str, what: str, got: Any) -> SuiteError:
        return self.error(key, f"expected {what}, got {got!r}")


def _number(w: _Where, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise w.expected(key, f"a number from {low:g} to {high:g}", value)
    return float(value)


def _integer(w: _Where, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise w.expected(key, f"an integer from {low} to {high}", value)
    return value


def _boolean(w: _Where, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise w.expected(key, "true or false", value)
    return value


def parse_expect(data: Any, w: _Where, key: str = "expect") -> Expect:
    if data is None:
        return Expect(valid=True)
    if not isinstance(data, dict):
        raise w.expected(key, "a mapping of expectations", data)
    for k in data:
        if k not in EXPECT_KEYS:
            raise w.error(
                f"{key}.{k}", f"unknown expectation; expected one of {', '.join(EXPECT_KEYS)}"
            )
    values: dict[str, Any] = {}
    if "valid" in data:
        values["valid"] = _boolean(w, f"{key}.valid", data["valid"])
    if "caught" in data and _boolean(w, f"{key}.caught", data["caught"]):
        values["caught_at_least"] = 1.0
    if "caught_at_least" in data:
        if "caught_at_least" in values:
            raise w.error(f"{key}.caught_at_least", "give either caught or caught_at_least")
        values["caught_at_least"] = _number(
            w, f"{key}.caught_at_least", data["caught_at_least"], 0.0, 1.0
        )
    if "violations" in data:
        v = data["violations"]
        if v in ("none", "any"):
            values["violations"] = v
        elif isinstance(v, list) and v:
            for i, kind in enumerate(v):
                if kind not in VIOLATION_KINDS:
                    raise w.expected(
                        f"{key}.violations[{i}]",
                        f"a violation kind ({', '.join(VIOLATION_KINDS)})",
                        kind,
                    )
            values["violations"] = tuple(v)
        else:
            raise w.expected(f"{key}.violations", "none, any, or a list of violation kinds", v)
    for k in ("failover_p50_s", "failover_p99_s"):
        if k in data:
            values[k] = _number(w, f"{key}.{k}", data[k], 0.0, 86_400)
    if "leaderless_pct_max" in data:
        values["leaderless_pct_max"] = _number(
            w, f"{key}.leaderless_pct_max", data["leaderless_pct_max"], 0.0, 100.0
        )
    for k in ("acquisitions_min", "elections_max"):
        if k in data:
            values[k] = _integer(w, f"{key}.{k}", data[k], 0, 10**9)
    expect = Expect(**values)
    # Contradictions are mistakes in the suite, not findings: refuse them up front.
    wants_safe = expect.valid is True or expect.violations == "none"
    wants_caught = (
        expect.valid is False
        or (expect.caught_at_least or 0) > 0
        or expect.violations == "any"
        or isinstance(expect.violations, tuple)
    )
    if wants_safe and wants_caught:
        raise w.error(key, "contradicts itself: it asks for no violations and for violations")
    return expect


def parse_tolerance(data: Any, w: _Where) -> Tolerance:
    if data is None:
        return Tolerance()
    if not isinstance(data, dict):
        raise w.expected("tolerance", "a mapping", data)
    for k in data:
        if k not in TOLERANCE_KEYS:
            raise w.error(f"tolerance.{k}", f"unknown; expected one of {', '.join(TOLERANCE_KEYS)}")
    values = {
        k: _number(w, f"tolerance.{k}", data[k], 0.0, 10**6) for k in TOLERANCE_KEYS if k in data
    }
    return Tolerance(**values)


def _seeds(data: Mapping[str, Any], w: _Where) -> tuple[int, ...] | None:
    if "runs" in data and "seeds" in data:
        raise w.error("seeds", "give either runs or seeds, not both")
    if "runs" in data:
        return tuple(range(1, _integer(w, "runs", data["runs"], 1, MAX_RUNS) + 1))
    if "seeds" in data:
        seeds = data["seeds"]
        if not isinstance(seeds, list) or not seeds:
            raise w.expected("seeds", "a non-empty list of seeds", seeds)
        out = tuple(_integer(w, f"seeds[{i}]", s, 0, 2**63 - 1) for i, s in enumerate(seeds))
        if len(set(out)) != len(out):
            raise w.expected("seeds", "distinct seeds", seeds)
        return out
    return None


def _absolute_server(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A `server:` path made absolute, relative to the file that gave it."""
    if isinstance(data.get("server"), str):
        return {**data, "server": str((base / data["server"]).resolve())}
    return data


def _config_file(path_text: Any, suite_dir: Path, w: _Where) -> tuple[dict[str, Any], str]:
    if not isinstance(path_text, str) or not path_text:
        raise w.expected("config", "a path to a run configuration (YAML)", path_text)
    path = Path(path_text) if os.path.isabs(path_text) else suite_dir / path_text
    if not path.is_file():
        raise w.error("config", f"no such file: {path}")
    try:
        data = load_yaml(path)
        # Validate the file on its own first, so that its own mistakes name it.
        parse_run_config(data, str(path))
    except ConfigError as exc:
        raise w.error("config", str(exc)) from None
    data = data or {}
    if not set(data) & RUN_KEYS:
        # A plain reference-elector configuration, as `harness run --config` takes it.
        data = {"target": "reference", "server": str(path.resolve())}
    return _absolute_server(dict(data), path.parent), str(path)


def _run_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in RUN_KEYS}


def _validate_run(cfg: RunConfig, w: _Where) -> None:
    """What the runner would refuse before creating anything, refused at load instead."""
    where = cfg.server_source or f"{w.prefix}: server"
    try:
        target = make_target(cfg.target, cfg.server, where)
        settings = {
            name: {**target.nemesis_defaults.get(name, {}), **cfg.nemesis_settings.get(name, {})}
            for name in {*target.nemesis_defaults, *cfg.nemesis_settings}
        }
        make_nemeses([n for n in cfg.nemeses if n != "none"], settings)
    except (TargetError, ValueError) as exc:
        message = str(exc)
        if not message.startswith(w.prefix):
            message = f"{w.prefix}: {message}"
        raise SuiteError(message) from None


def parse_case(
    data: Any,
    number: int,
    source: str,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> Case:
    w = _Where(source)
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: case {number}: expected a mapping of case keys, got {data!r}")
    name = data.get("name", f"case-{number}")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(
            f"{source}: case {number}: key 'name': expected a non-empty string, got {name!r}"
        )
    w = _Where(source, f"case {number} ({name!r})")
    for key in data:
        if key not in CASE_KEYS and key not in RUN_KEYS:
            raise w.error(
                key,
                f"unknown; expected one of {', '.join(sorted(CASE_KEYS | RUN_KEYS))}",
            )
    suite_dir = Path(source).parent
    run_data = _absolute_server(_run_keys(defaults), suite_dir)
    config_path = None
    if "config" in data:
        config_data, config_path = _config_file(data["config"], suite_dir, w)
        run_data = merge(run_data, config_data)
    own = _absolute_server(_run_keys(data), suite_dir)
    if isinstance(run_data.get("server"), str) and isinstance(own.get("server"), dict):
        # Overriding some server settings of a configuration that names a server file.
        try:
            run_data["server"] = load_yaml(run_data["server"]) or {}
        except ConfigError as exc:
            raise w.error("server", str(exc)) from None
    run_data = merge(run_data, own)
    try:
        cfg = parse_run_config(run_data, w.prefix)
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.source = config_path or source
    _validate_run(cfg, w)
    seeds = (
        _seeds(data, w)
        or _seeds(defaults, _Where(source, "defaults"))
        or tuple(range(1, DEFAULT_RUNS + 1))
    )
    expect_data = data["expect"] if "expect" in data else defaults.get("expect")
    expect = parse_expect(expect_data, w)
    return Case(name.strip(), number, cfg, seeds, expect, config_path)


def parse_suite(
    data: Any,
    source: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    runs: int | None = None,
) -> Suite:
    """`overrides`: RunConfig fields set on every case (e.g. backend); `runs`: seeds 1..runs."""
    w = _Where(source)
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: expected a mapping with a 'cases' list, got {data!r}")
    for key in data:
        if key not in SUITE_KEYS:
            raise w.error(key, f"unknown; expected one of {', '.join(SUITE_KEYS)}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise w.expected("name", "a non-empty string", name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise w.expected("description", "a string", description)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise w.expected("defaults", "a mapping of run keys, runs, seeds, expect", defaults)
    for key in defaults:
        if key not in RUN_KEYS and key not in CASE_KEYS - {"name", "config"}:
            raise w.error(
                f"defaults.{key}",
                "unknown; expected a run key "
                f"({', '.join(sorted(RUN_KEYS))}), runs, seeds or expect",
            )
    if "expect" in defaults:
        parse_expect(defaults["expect"], w, "defaults.expect")
    cases_data = data.get("cases")
    if not isinstance(cases_data, list) or not cases_data:
        raise w.expected("cases", "a non-empty list of cases", cases_data)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(cases_data, start=1):
        case = parse_case(item, number, source, defaults, overrides or {})
        if case.name in seen:
            raise SuiteError(
                f"{source}: {case.label}: key 'name': the name is already used by case "
                f"{seen[case.name]}; case names must be unique"
            )
        if slug(case.name) in {slug(n) for n in seen}:
            raise SuiteError(
                f"{source}: {case.label}: key 'name': too close to another case's name "
                "(their baseline files would collide)"
            )
        seen[case.name] = number
        if runs is not None:
            case.seeds = tuple(range(1, runs + 1))
        cases.append(case)
    return Suite(
        path=source,
        name=name,
        cases=cases,
        tolerance=parse_tolerance(data.get("tolerance"), w),
        description=description,
    )


def load_suite(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    runs: int | None = None,
) -> Suite:
    source = os.fspath(path)
    try:
        data = load_yaml(source)
    except SuiteError:
        raise
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    return parse_suite(data, source, overrides=overrides, runs=runs)
