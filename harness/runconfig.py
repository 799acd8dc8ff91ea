"""A run's configuration: YAML file, then command-line overrides, validated.

    target: reference          # reference | etcd | consul
    backend: auto              # auto | local | docker
    nodes: 3
    time_limit: 30             # seconds of workload and faults
    seed: 1
    quiet_s: 5                 # recovery after the last heal, before stopping
    probe_interval_ms: 100
    nemesis:
      faults: [partition]      # or "partition,pause"; [none] for no faults
      schedule: {warmup_s: 2, gap_s: [1, 3], duration_s: [2, 5]}
      clock: {max_rate_skew: 0.2}   # per-nemesis settings, by name
    server: {...}              # the target's server settings, or a path to a file of them
    workload: {...}            # candidate settings (workloads/settings.py)
    resource: {fencing: true}
    check: {tolerance_ns: 0, stale_grace_ns: null}   # null: the target's own bound

For the reference target, `--config` may also name a plain elector configuration
(configs/reference/*.yaml): a file with none of the keys above is taken whole as
`server`. Every error names the file, the key and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import options as opts
from workloads.settings import CandidateSettings, SettingsError, parse_candidate_settings

RUN_KEYS = frozenset(
    {
        "target", "backend", "nodes", "time_limit", "seed", "quiet_s", "probe_interval_ms",
        "nemesis", "server", "workload", "resource", "check",
    }
)  # fmt: skip
NEMESIS_KEYS = frozenset({"faults", "schedule"})
SCHEDULE_KEYS = ("warmup_s", "gap_s", "duration_s")


class ConfigError(ValueError):
    """A bad configuration: the message names the file, the key and what was expected."""


@dataclass(frozen=True)
class Schedule:
    warmup_s: float = 2.0
    gap_s: tuple[float, float] = (1.0, 3.0)
    duration_s: tuple[float, float] = (2.0, 5.0)


@dataclass
class RunConfig:
    target: str = "reference"
    backend: str = "auto"
    nodes: int = 3
    time_limit: float = 30.0
    seed: int = 0
    quiet_s: float = 5.0
    probe_interval_ms: int = 100
    nemeses: tuple[str, ...] = ("none",)
    schedule: Schedule = field(default_factory=Schedule)
    nemesis_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    workload: CandidateSettings = field(default_factory=CandidateSettings)
    workload_explicit: dict[str, Any] = field(default_factory=dict)  # keys the YAML set
    fencing: bool = True
    tolerance_ns: int = 0
    stale_grace_ns: int | None = None
    source: str | None = None  # the YAML file it came from
    server_source: str | None = None  # where `server` came from, if its own file

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "backend": self.backend,
            "nodes": self.nodes,
            "time_limit": self.time_limit,
            "seed": self.seed,
            "quiet_s": self.quiet_s,
            "probe_interval_ms": self.probe_interval_ms,
            "nemesis": {
                "faults": list(self.nemeses),
                "schedule": {
                    "warmup_s": self.schedule.warmup_s,
                    "gap_s": list(self.schedule.gap_s),
                    "duration_s": list(self.schedule.duration_s),
                },
                **self.nemesis_settings,
            },
            "server": self.server,
            "workload": self.workload.to_dict(),
            "resource": {"fencing": self.fencing},
            "check": {"tolerance_ns": self.tolerance_ns, "stale_grace_ns": self.stale_grace_ns},
        }


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}': expected {expected}, got {got!r}")

    def mapping(self, data: Any, key: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.fail(key, "a mapping", data)
        return data

    def number(self, value: Any, key: str, low: float, high: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(key, f"a number from {low:g} to {high:g}", value)
        return float(value)

    def pair(self, value: Any, key: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, "[min, max] seconds", value)
        low = self.number(value[0], f"{key}[0]", 0.0, 86_400)
        high = self.number(value[1], f"{key}[1]", low, 86_400)
        return (low, high)

    def option(self, value: Any, key: str, parse: Any) -> Any:
        try:
            return parse(str(value))
        except opts.OptionError as exc:
            message = str(exc).split(": ", 1)[-1]
            raise ConfigError(f"{self.source}: key '{key}': {message}") from None


def load_yaml(path: str | os.PathLike[str]) -> Any:
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text: {exc.reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None


def parse_run_config(data: Any, source: str, target_hint: str | None = None) -> RunConfig:
    r = _Reader(source)
    data = r.mapping(data, "(top level)")
    target = data.get("target", target_hint or "reference")
    if not set(data) & RUN_KEYS and target_hint in (None, "reference") and data:
        # A plain reference-elector configuration: the whole file is `server`.
        data = {"server": data}
    for key in data:
        if key not in RUN_KEYS:
            raise ConfigError(
                f"{source}: unknown key '{key}'; expected one of {', '.join(sorted(RUN_KEYS))}"
            )
    cfg = RunConfig(source=source)
    cfg.target = r.option(target, "target", opts.parse_target)
    if "backend" in data:
        cfg.backend = r.option(data["backend"], "backend", opts.parse_backend)
    if "nodes" in data:
        cfg.nodes = r.option(data["nodes"], "nodes", opts.parse_nodes)
    if "time_limit" in data:
        cfg.time_limit = r.option(data["time_limit"], "time_limit", opts.parse_time_limit)
    if "seed" in data:
        cfg.seed = r.option(data["seed"], "seed", opts.parse_seed)
    if "quiet_s" in data:
        cfg.quiet_s = r.number(data["quiet_s"], "quiet_s", 0, 3600)
    if "probe_interval_ms" in data:
        cfg.probe_interval_ms = int(
            r.number(data["probe_interval_ms"], "probe_interval_ms", 10, 10_000)
        )
    nemesis = r.mapping(data.get("nemesis"), "nemesis")
    if "faults" in nemesis:
        faults = nemesis["faults"]
        text = ",".join(map(str, faults)) if isinstance(faults, list) else str(faults)
        cfg.nemeses = r.option(text, "nemesis.faults", opts.parse_nemeses)
    if "schedule" in nemesis:
        sched = r.mapping(nemesis["schedule"], "nemesis.schedule")
        for key in sched:
            if key not in SCHEDULE_KEYS:
                raise ConfigError(
                    f"{source}: unknown key 'nemesis.schedule.{key}'; expected one of "
                    + ", ".join(SCHEDULE_KEYS)
                )
        cfg.schedule = Schedule(
            warmup_s=r.number(sched.get("warmup_s", 2.0), "nemesis.schedule.warmup_s", 0, 3600),
            gap_s=r.pair(sched.get("gap_s", [1.0, 3.0]), "nemesis.schedule.gap_s"),
            duration_s=r.pair(sched.get("duration_s", [2.0, 5.0]), "nemesis.schedule.duration_s"),
        )
    for key, value in nemesis.items():
        if key in NEMESIS_KEYS:
            continue
        if key not in opts.NEMESES or key == "none":
            raise ConfigError(
                f"{source}: unknown key 'nemesis.{key}'; expected faults, schedule, or a "
                f"nemesis name ({', '.join(n for n in opts.NEMESES if n != 'none')})"
            )
        cfg.nemesis_settings[key] = r.mapping(value, f"nemesis.{key}")
    server = data.get("server")
    if isinstance(server, str):
        # A path to the target's own configuration file, relative to this file.
        server_path = Path(source).parent / server
        server = load_yaml(server_path)
        cfg.server_source = str(server_path)
    cfg.server = r.mapping(server, "server")
    try:
        cfg.workload_explicit = dict(r.mapping(data.get("workload"), "workload"))
        cfg.workload = parse_candidate_settings(cfg.workload_explicit)
    except SettingsError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    resource = r.mapping(data.get("resource"), "resource")
    for key in resource:
        if key != "fencing":
            raise ConfigError(f"{source}: unknown key 'resource.{key}'; expected fencing")
    if "fencing" in resource:
        if not isinstance(resource["fencing"], bool):
            raise r.fail("resource.fencing", "true or false", resource["fencing"])
        cfg.fencing = resource["fencing"]
    check = r.mapping(data.get("check"), "check")
    for key in check:
        if key not in ("tolerance_ns", "stale_grace_ns"):
            raise ConfigError(
                f"{source}: unknown key 'check.{key}'; expected tolerance_ns, stale_grace_ns"
            )
    if "tolerance_ns" in check:
        cfg.tolerance_ns = int(r.number(check["tolerance_ns"], "check.tolerance_ns", 0, 10**15))
    if check.get("stale_grace_ns") is not None:
        cfg.stale_grace_ns = int(
            r.number(check["stale_grace_ns"], "check.stale_grace_ns", 0, 10**15)
        )
    return cfg


def load_run_config(
    path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """Read `path` (or defaults), then apply command-line `overrides` (already parsed)."""
    overrides = dict(overrides or {})
    if path is None:
        cfg = RunConfig()
    else:
        cfg = parse_run_config(load_yaml(path), os.fspath(path), overrides.get("target"))
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg
