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
from harness.errors import ConfigError
from harness.nemesis import make_nemeses
from harness.runconfig import RUN_KEYS, RunConfig, parse_run_config
from harness.targets import TargetError, make_target
from harness.validation import Reader, cut, deep_merge, echo, kind_of, one_of
from harness.yamlio import load_yaml

SUITE_KEYS = ("name", "description", "tolerance", "defaults", "cases")
CASE_KEYS = frozenset({"name", "config", "runs", "seeds", "expect"})
EXPECT_KEYS = (
    "valid", "caught", "caught_at_least", "violations", "allow", "failover_p50_s",
    "failover_p99_s", "leaderless_pct_max", "acquisitions_min", "elections_max",
    "elections_min",
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
    # Kinds a run may show without failing the case (none at all passes too); any other
    # kind fails it. For a flaw of the system under test that the setup is known to
    # meet and to survive (a fencing resource still refusing stale writes).
    allow: tuple[str, ...] | None = None
    failover_p50_s: float | None = None
    failover_p99_s: float | None = None
    leaderless_pct_max: float | None = None
    acquisitions_min: int | None = None
    elections_max: int | None = None  # server-level elections in a run, after the first
    # Every run had at least this many: a liveness bug (leadership flapping under a
    # fault) is still caught, as caught_at_least says of a safety bug.
    elections_min: int | None = None

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
        if self.allow is not None:
            out.append(f"no violations but of kinds {', '.join(self.allow)}")
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
        if self.elections_min is not None:
            out.append(f"elections >= {self.elections_min} per run (flapping still caught)")
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
        return f"case {self.number} ({echo(self.name)})"


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


merge = deep_merge  # mappings merge key by key (recursively); anything else replaces


def _reader(data: Any, source: str, key: str, expected: str = "a mapping") -> Reader:
    """A Reader over the mapping at `key` (full path) of a suite file; errors are
    SuiteErrors."""
    return Reader(data, source, f"{key}.", error=SuiteError, expected=expected)


def _kinds(r: Reader, key: str, values: list[Any]) -> tuple[str, ...]:
    for i, kind in enumerate(values):
        if kind not in VIOLATION_KINDS:
            raise r.fail(f"{key}[{i}]", f"a violation kind ({one_of(VIOLATION_KINDS)})", kind)
    return tuple(values)


def parse_expect(data: Any, source: str, key: str = "expect") -> Expect:
    """`expect:` (None: `valid: true`); `source` is the file and case, for messages."""
    if data is None:
        return Expect(valid=True)
    r = _reader(data, source, key, "a mapping of expectations")
    r.only(EXPECT_KEYS)
    values: dict[str, Any] = {}
    if "valid" in r:
        values["valid"] = r.boolean("valid", None)
    if "caught" in r and r.boolean("caught", None):
        values["caught_at_least"] = 1.0
    if "caught_at_least" in r:
        if "caught_at_least" in values:
            raise r.problem("caught_at_least", "give either caught or caught_at_least")
        values["caught_at_least"] = r.number("caught_at_least", None, 0.0, 1.0)
    if "violations" in r:
        v = r.get("violations")
        if v in ("none", "any"):
            values["violations"] = v
        elif isinstance(v, list) and v:
            values["violations"] = _kinds(r, "violations", v)
        else:
            raise r.fail("violations", "none, any, or a list of violation kinds", v)
    if "allow" in r:
        v = r.get("allow")
        if not (isinstance(v, list) and v):
            raise r.fail("allow", "a list of violation kinds", v)
        values["allow"] = _kinds(r, "allow", v)
    for k in ("failover_p50_s", "failover_p99_s"):
        if k in r:
            values[k] = r.number(k, None, 0.0, 86_400)
    if "leaderless_pct_max" in r:
        values["leaderless_pct_max"] = r.number("leaderless_pct_max", None, 0.0, 100.0)
    for k in ("acquisitions_min", "elections_max", "elections_min"):
        if k in r:
            values[k] = r.integer(k, None, 0, 10**9)
    expect = Expect(**values)
    # Contradictions are mistakes in the suite, not findings: refuse them up front.
    wants_safe = expect.valid is True or expect.violations == "none"
    if expect.allow is not None and wants_safe:
        raise r.problem("allow", "contradicts valid: true / violations: none (drop one)")
    wants_caught = (
        expect.valid is False
        or (expect.caught_at_least or 0) > 0
        or expect.violations == "any"
        or isinstance(expect.violations, tuple)
    )
    if wants_safe and wants_caught:
        raise r.problem("", "contradicts itself: it asks for no violations and for violations")
    if (
        expect.elections_min is not None
        and expect.elections_max is not None
        and expect.elections_min > expect.elections_max
    ):
        raise r.problem("elections_min", "is more than elections_max: no run could pass")
    return expect


def parse_tolerance(data: Any, source: str) -> Tolerance:
    r = _reader(data, source, "tolerance")
    r.only(TOLERANCE_KEYS)
    return Tolerance(**{k: r.number(k, None, 0.0, 10**6) for k in TOLERANCE_KEYS if k in r})


def _seeds(r: Reader) -> tuple[int, ...] | None:
    """`runs: N` (seeds 1..N) or `seeds: [...]` of a case or of the defaults; None: neither."""
    if "runs" in r and "seeds" in r:
        raise r.problem("seeds", "give either runs or seeds, not both")
    if "runs" in r:
        return tuple(range(1, r.integer("runs", None, 1, MAX_RUNS) + 1))
    if "seeds" in r:
        seeds = r.get("seeds")
        if not isinstance(seeds, list) or not seeds:
            raise r.fail("seeds", "a non-empty list of seeds", seeds)
        out = tuple(
            r.integer(f"seeds[{i}]", None, 0, 2**63 - 1, value=s) for i, s in enumerate(seeds)
        )
        if len(set(out)) != len(out):
            raise r.fail("seeds", "distinct seeds", seeds)
        return out
    return None


def _absolute_server(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A `server:` path and `workload.files` made absolute, relative to the file that
    gave them."""
    if isinstance(data.get("server"), str):
        data = {**data, "server": str((base / data["server"]).resolve())}
    workload = data.get("workload")
    if isinstance(workload, dict) and isinstance(workload.get("files"), list):
        files = [str((base / f).resolve()) if isinstance(f, str) else f for f in workload["files"]]
        data = {**data, "workload": {**workload, "files": files}}
    return data


def _config_file(r: Reader, suite_dir: Path) -> tuple[dict[str, Any], str]:
    path_text = r.get("config")
    if not isinstance(path_text, str) or not path_text:
        raise r.fail("config", "a path to a run configuration (YAML)", path_text)
    path = Path(path_text) if os.path.isabs(path_text) else suite_dir / path_text
    if not os.path.isfile(path):  # False, not an error, for a name too long to exist
        raise r.problem("config", f"no such file: {cut(str(path), 200)}")
    try:
        data = load_yaml(path)
        # Validate the file on its own first, so that its own mistakes name it.
        parse_run_config(data, str(path))
    except ConfigError as exc:
        raise r.problem("config", str(exc)) from None
    data = data or {}
    if not set(data) & RUN_KEYS:
        # A plain reference-elector configuration, as `harness run --config` takes it.
        data = {"target": "reference", "server": str(path.resolve())}
    return _absolute_server(dict(data), path.parent), str(path)


def _run_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in RUN_KEYS}


def _validate_run(cfg: RunConfig, where_case: str) -> None:
    """What the runner would refuse before creating anything, refused at load instead."""
    where = cfg.server_source or f"{where_case}: server"
    try:
        target = make_target(cfg.target, cfg.server, where)
        settings = {
            name: {**target.nemesis_defaults.get(name, {}), **cfg.nemesis_settings.get(name, {})}
            for name in {*target.nemesis_defaults, *cfg.nemesis_settings}
        }
        make_nemeses([n for n in cfg.nemeses if n != "none"], settings)
    except (TargetError, ValueError) as exc:
        message = str(exc)
        if not message.startswith(where_case):
            message = f"{where_case}: {message}"
        raise SuiteError(message) from None


def parse_case(
    data: Any,
    number: int,
    source: str,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> Case:
    if not isinstance(data, dict):
        raise SuiteError(
            f"{source}: case {number}: expected a mapping of case keys, got {echo(data)}"
        )
    name = data.get("name", f"case-{number}")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(
            f"{source}: case {number}: key 'name': expected a non-empty string, got {echo(name)}"
        )
    where_case = f"{source}: case {number} ({echo(name)})"
    r = Reader(data, where_case, error=SuiteError)
    r.only(sorted(CASE_KEYS | RUN_KEYS))
    suite_dir = Path(source).parent
    run_data = _absolute_server(_run_keys(defaults), suite_dir)
    config_path = None
    if "config" in r:
        config_data, config_path = _config_file(r, suite_dir)
        run_data = merge(run_data, config_data)
    own = _absolute_server(_run_keys(data), suite_dir)
    if isinstance(run_data.get("server"), str) and isinstance(own.get("server"), dict):
        # Overriding some server settings of a configuration that names a server file.
        try:
            server = load_yaml(run_data["server"])
        except ConfigError as exc:
            raise r.problem("server", str(exc)) from None
        if server is not None and not isinstance(server, Mapping):
            raise r.problem(
                "server", f"{run_data['server']} holds {kind_of(server)}; expected a mapping"
            )
        run_data["server"] = dict(server or {})
    run_data = merge(run_data, own)
    try:
        cfg = parse_run_config(run_data, where_case)
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.source = config_path or source
    _validate_run(cfg, where_case)
    seeds = (
        _seeds(r)
        or _seeds(_reader(defaults, source, "defaults"))
        or tuple(range(1, DEFAULT_RUNS + 1))
    )
    expect_data = data["expect"] if "expect" in data else defaults.get("expect")
    expect = parse_expect(expect_data, where_case)
    return Case(name.strip(), number, cfg, seeds, expect, config_path)


def parse_suite(
    data: Any,
    source: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    runs: int | None = None,
) -> Suite:
    """`overrides`: RunConfig fields set on every case (e.g. backend); `runs`: seeds 1..runs."""
    r = Reader(data, source, error=SuiteError, expected="a mapping with a 'cases' list")
    r.only(SUITE_KEYS)
    name = r.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise r.fail("name", "a non-empty string", name)
    description = r.get("description", "")
    if not isinstance(description, str):
        raise r.fail("description", "a string", description)
    d = r.section("defaults", "a mapping of run keys, runs, seeds, expect")
    d.only(sorted(RUN_KEYS | (CASE_KEYS - {"name", "config"})))
    defaults = d.data
    if "expect" in d:
        parse_expect(d.get("expect"), source, "defaults.expect")
    cases_data = r.get("cases")
    if not isinstance(cases_data, list) or not cases_data:
        raise r.fail("cases", "a non-empty list of cases", cases_data)
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
        tolerance=parse_tolerance(r.get("tolerance"), source),
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
