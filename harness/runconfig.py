"""A run's configuration: YAML file, then command-line overrides, validated.

    target: reference          # reference | etcd | consul
    backend: auto              # auto | local | docker | ssh
    hosts: hosts.yaml          # the ssh backend's inventory (relative to this file)
    # or both at once, the inventory inline (harness/backends/ssh_inventory.py):
    # backend: {kind: ssh, hosts: {key: id, known_hosts: known, nodes: [...]}}
    nodes: 3
    time_limit: 30             # seconds of workload and faults (default: 30, or longer
                               # to fit three of the target's long faults)
    seed: 1
    quiet_s: 5                 # recovery after the last heal, before stopping
    probe_interval_ms: 100
    nemesis:
      faults: [partition]      # or "partition,pause"; [all]: every fault the target
                               # supports; [none] for no faults
      schedule: {warmup_s: 2, gap_s: [1, 3], duration_s: [2, 5]}  # duration_s default:
                               # from the target's timing (nemesis/durations.py)
      # or an explicit list of faults instead of a seeded one (nemesis/explicit.py):
      # schedule: [{kind: pause, mode: candidate, target: holder, at_s: 3, duration_s: 4}]
      clock: {max_rate_skew: 0.2}   # per-nemesis settings, by name
    server: {...}              # the target's server settings, or a path to a file of them
    workload: {...}            # candidate settings (workloads/settings.py), or your own
                               # program or client (workloads/program.py)
    resource: {fencing: true}
    check: {tolerance_ns: 0, stale_grace_ns: null}   # null: the target's own bound
    origin: {shrunk_from: DIR}  # where this configuration came from (replay, shrink)

For the reference target, `--config` may also name a plain elector configuration
(configs/reference/*.yaml): a file with none of the keys above is taken whole as
`server`. Every error names the file, the key and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import options as opts
from harness.backends.ssh_inventory import Inventory, parse_inventory
from harness.errors import ConfigError
from harness.nemesis.base import FaultPlan
from harness.nemesis.explicit import kinds_of, parse_fault_list, plans_to_entries
from harness.validation import Reader, echo, kind_of, one_of
from harness.workloads.program import PROGRAM_KEYS, ProgramSpec, parse_program
from harness.workloads.settings import CandidateSettings, parse_candidate_settings
from harness.yamlio import load_yaml

RUN_KEYS = frozenset(
    {
        "target", "backend", "hosts", "nodes", "time_limit", "seed", "quiet_s",
        "probe_interval_ms", "nemesis", "server", "workload", "resource", "check", "origin",
    }
)  # fmt: skip
NEMESIS_KEYS = frozenset({"faults", "schedule"})
SCHEDULE_KEYS = ("warmup_s", "gap_s", "duration_s")


# Fault durations when neither the YAML nor the target's timing says (an older plugin).
FIXED_DURATION_S = (2.0, 5.0)


@dataclass(frozen=True)
class Schedule:
    warmup_s: float = 2.0
    gap_s: tuple[float, float] = (1.0, 3.0)
    # None: from the target's timing (nemesis/durations.py), else FIXED_DURATION_S.
    duration_s: tuple[float, float] | None = None

    @property
    def fixed_duration_s(self) -> tuple[float, float]:
        return self.duration_s if self.duration_s is not None else FIXED_DURATION_S


@dataclass
class RunConfig:
    target: str = "reference"
    backend: str = "auto"
    hosts: str | None = None  # the ssh backend's inventory file
    inventory: Inventory | None = None  # ... or the inventory given inline
    nodes: int = 3
    time_limit: float = 30.0
    time_limit_set: bool = False  # False: the runner may lengthen it to fit long faults
    seed: int = 0
    quiet_s: float = 5.0
    probe_interval_ms: int = 100
    nemeses: tuple[str, ...] = ("none",)
    schedule: Schedule = field(default_factory=Schedule)
    plans: list[FaultPlan] | None = None  # an explicit schedule: used instead of the seed's
    nemesis_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    workload: CandidateSettings = field(default_factory=CandidateSettings)
    workload_explicit: dict[str, Any] = field(default_factory=dict)  # keys the YAML set
    program: ProgramSpec = field(default_factory=ProgramSpec)  # the team's own code, if any
    fencing: bool = True
    tolerance_ns: int = 0
    stale_grace_ns: int | None = None
    source: str | None = None  # the YAML file it came from
    server_source: str | None = None  # where `server` came from, if its own file
    origin: dict[str, str] = field(default_factory=dict)  # e.g. {"shrunk_from": run dir}

    def to_dict(self) -> dict[str, Any]:
        schedule: Any = {
            "warmup_s": self.schedule.warmup_s,
            "gap_s": list(self.schedule.gap_s),
        }
        if self.schedule.duration_s is not None:
            schedule["duration_s"] = list(self.schedule.duration_s)
        if self.plans is not None:
            schedule = plans_to_entries(self.plans)
        backend: Any = self.backend
        if self.inventory is not None:
            backend = {"kind": self.backend, "hosts": self.inventory.to_dict()}
        out = {
            "target": self.target,
            "backend": backend,
            **({"hosts": self.hosts} if self.hosts is not None else {}),
            "nodes": self.nodes,
            "time_limit": self.time_limit,
            "seed": self.seed,
            "quiet_s": self.quiet_s,
            "probe_interval_ms": self.probe_interval_ms,
            "nemesis": {
                "faults": list(self.nemeses),
                "schedule": schedule,
                **self.nemesis_settings,
            },
            "server": self.server,
            # Only the keys the configuration set: the rest are the target's candidate
            # defaults, so a run read back from this (replay, shrink) starts the same
            # candidates (the full dict would override the target's defaults).
            "workload": {**self.workload_explicit, **self.program.to_dict()},
            "resource": {"fencing": self.fencing},
            "check": {"tolerance_ns": self.tolerance_ns, "stale_grace_ns": self.stale_grace_ns},
        }
        if self.origin:
            out["origin"] = dict(self.origin)
        return out


def _option(r: Reader, key: str, value: Any, parse: Callable[[str], Any]) -> Any:
    """A value checked by the command line's own parser (one vocabulary for both)."""
    try:
        return parse(str(value))
    except opts.OptionError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise r.problem(key, message) from None


def _read_top(r: Reader, cfg: RunConfig, target: Any) -> None:
    """The scalar keys at the top level."""
    cfg.target = _option(r, "target", target, opts.parse_target)
    if isinstance(r.get("backend"), Mapping):
        _read_backend_mapping(r, cfg)
    elif "backend" in r:
        cfg.backend = _option(r, "backend", r.get("backend"), opts.parse_backend)
    for key, parse in (
        ("nodes", opts.parse_nodes),
        ("time_limit", opts.parse_time_limit),
        ("seed", opts.parse_seed),
    ):
        if key in r:
            setattr(cfg, key, _option(r, key, r.get(key), parse))
    cfg.time_limit_set = "time_limit" in r
    if "hosts" in r:
        if cfg.inventory is not None or cfg.hosts is not None:
            raise r.problem("hosts", "the inventory is given twice (here and under backend)")
        cfg.hosts = _hosts_path(r, "hosts")
    if "quiet_s" in r:
        cfg.quiet_s = r.number("quiet_s", None, 0, 3600)
    if "probe_interval_ms" in r:
        cfg.probe_interval_ms = int(r.number("probe_interval_ms", None, 10, 10_000))


def _hosts_path(r: Reader, key: str) -> str:
    hosts = r.get(key)
    if not isinstance(hosts, str) or not hosts:
        raise r.fail(key, "the path of an ssh inventory file, or the inventory itself", hosts)
    return str(Path(r.source).parent / Path(hosts).expanduser())


def _read_backend_mapping(r: Reader, cfg: RunConfig) -> None:
    """`backend: {kind: ssh, hosts: FILE or the inventory inline}`."""
    backend = r.section("backend")
    backend.only({"kind": "auto, local, docker or ssh", "hosts": "the ssh inventory"})
    cfg.backend = _option(backend, "kind", backend.get("kind", "auto"), opts.parse_backend)
    if "hosts" not in backend:
        return
    if cfg.backend != "ssh":
        raise backend.problem("hosts", f"an inventory is for kind ssh, not {cfg.backend}")
    if isinstance(backend.get("hosts"), Mapping):
        # Validated now, with the run file's name and key path in every message.
        cfg.inventory = parse_inventory(
            backend.get("hosts"), r.source, Path(r.source).resolve().parent, backend.path("hosts.")
        )
    else:
        cfg.hosts = _hosts_path(backend, "hosts")


def _read_nemesis(r: Reader, cfg: RunConfig) -> None:
    """`nemesis:`: the faults, their schedule, and per-nemesis settings by name."""
    nemesis = r.section("nemesis")
    if "faults" in nemesis:
        faults = nemesis.get("faults")
        text = ",".join(map(str, faults)) if isinstance(faults, list) else str(faults)
        cfg.nemeses = _option(nemesis, "faults", text, opts.parse_nemeses)
    if isinstance(nemesis.get("schedule"), list):
        _read_fault_list(r, nemesis, cfg)
    elif "schedule" in nemesis:
        sched = nemesis.section("schedule")
        sched.only(SCHEDULE_KEYS)
        cfg.schedule = Schedule(
            warmup_s=sched.number("warmup_s", 2.0, 0, 3600),
            gap_s=sched.pair("gap_s", [1.0, 3.0], 0.0, 86_400),
            duration_s=(
                sched.pair("duration_s", list(FIXED_DURATION_S), 0.0, 86_400)
                if "duration_s" in sched
                else None
            ),
        )
    names = [n for n in opts.nemesis_names() if n not in opts.SPECIAL_NEMESES]
    for key in nemesis.data:
        if key in NEMESIS_KEYS:
            continue
        if key not in names:
            raise r.error(
                f"{r.source}: unknown key {echo(nemesis.path(str(key)))}; expected faults, "
                f"schedule, or a nemesis name ({one_of(names)})"
            )
        cfg.nemesis_settings[key] = nemesis.mapping(key)


def _read_fault_list(r: Reader, nemesis: Reader, cfg: RunConfig) -> None:
    """`nemesis.schedule` as an explicit list of faults (nemesis/explicit.py)."""
    cfg.plans = parse_fault_list(
        nemesis.get("schedule"), f"{r.source}: key '{nemesis.path('schedule')}'", cfg.time_limit
    )
    used = kinds_of(cfg.plans)
    if "faults" not in nemesis:
        cfg.nemeses = used
    elif "all" not in cfg.nemeses and not set(used) - {"none"} <= set(cfg.nemeses):
        raise nemesis.problem(
            "faults",
            f"the explicit schedule uses {', '.join(used)}, not all of them in faults "
            f"({', '.join(cfg.nemeses)})",
        )


def _read_origin(r: Reader, cfg: RunConfig) -> None:
    origin = r.section("origin")
    for key, value in origin.data.items():
        if not isinstance(value, str):
            raise origin.fail(str(key), "text", value)
    cfg.origin = {str(k): v for k, v in origin.data.items()}


def _read_server(r: Reader, cfg: RunConfig) -> None:
    """`server:`: the target's settings, inline or in a file named relative to this one."""
    server = r.get("server")
    if isinstance(server, str):
        server_path = Path(r.source).parent / server
        loaded = load_yaml(server_path)
        if loaded is not None and not isinstance(loaded, Mapping):
            # Described by its type, never echoed: it may be any file (/etc/passwd).
            raise r.problem(
                "server", f"{server_path} holds {kind_of(loaded)}; expected a mapping of settings"
            )
        cfg.server = dict(loaded or {})
        cfg.server_source = str(server_path)
    else:
        cfg.server = r.mapping("server")


def _read_workload(r: Reader, cfg: RunConfig) -> None:
    """`workload:`: the candidates' discipline settings, and the team's own program or
    client if given (workloads/program.py)."""
    workload = dict(r.mapping("workload"))
    program = {key: workload.pop(key) for key in PROGRAM_KEYS if key in workload}
    cfg.program = parse_program(program, r.source)
    cfg.workload_explicit = workload
    cfg.workload = parse_candidate_settings(cfg.workload_explicit, r.source)


def _read_resource_and_check(r: Reader, cfg: RunConfig) -> None:
    resource = r.section("resource")
    resource.only(["fencing"])
    cfg.fencing = resource.boolean("fencing", True)
    check = r.section("check")
    check.only(["tolerance_ns", "stale_grace_ns"])
    cfg.tolerance_ns = int(check.number("tolerance_ns", 0, 0, 10**15))
    if check.get("stale_grace_ns") is not None:
        cfg.stale_grace_ns = int(check.number("stale_grace_ns", None, 0, 10**15))


def parse_run_config(data: Any, source: str, target_hint: str | None = None) -> RunConfig:
    """Validate parsed YAML (None: an empty file) into a RunConfig; `target_hint` is the
    command line's --target, which decides whether a plain elector file is allowed."""
    r = Reader(data, source, expected="a mapping of run keys")
    target = r.get("target", target_hint or "reference")
    if not set(r.data) & RUN_KEYS and target_hint in (None, "reference") and r.data:
        # A plain reference-elector configuration: the whole file is `server`.
        r = Reader({"server": r.data}, source)
    r.only(RUN_KEYS)
    cfg = RunConfig(source=source)
    _read_top(r, cfg, target)
    _read_nemesis(r, cfg)
    _read_server(r, cfg)
    _read_workload(r, cfg)
    _read_resource_and_check(r, cfg)
    _read_origin(r, cfg)
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
    if overrides.get("hosts") is not None:
        cfg.inventory = None  # --hosts on the command line replaces an inline inventory
    if overrides.get("time_limit") is not None:
        cfg.time_limit_set = True
    return cfg


__all__ = [
    "RUN_KEYS", "ConfigError", "RunConfig", "Schedule", "load_run_config", "load_yaml",
    "parse_run_config",
]  # fmt: skip
