"""A finished run directory as the starting point of a replay or a shrink.

`load_run` reads RUN_DIR/config.yaml (the effective configuration the run wrote) and
RUN_DIR/results.json, and returns the run's configuration with the schedule it carried
out as an explicit list: running it again replays the same faults at the same offsets.
Works for any run directory, including the ones inside a suite's directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.runconfig import ConfigError, RunConfig, load_yaml, parse_run_config

# Keys config.yaml carries about the run itself, not about what to run.
_RUN_FACTS = ("run_id",)


@dataclass
class SourceRun:
    run_dir: Path
    cfg: RunConfig  # with the carried-out schedule as its explicit list
    results: dict[str, Any]

    def violation_kinds(self) -> list[str]:
        verdict = self.results.get("verdict") or {}
        return sorted({v["kind"] for v in verdict.get("violations") or []})


def _legacy_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A schedule entry written before explicit schedules existed (a FaultPlan as a dict:
    nemesis, mode, at_s, duration_s, pick, params) in the list form."""
    if "nemesis" not in entry:
        return entry
    params = dict(entry.get("params") or {})
    out: dict[str, Any] = {"kind": entry["nemesis"], "mode": entry["mode"]}
    if "target" in params:
        out["target"] = params.pop("target")
    out.update(at_s=entry["at_s"], duration_s=entry["duration_s"], pick=entry.get("pick", 0))
    if params:
        out["params"] = params
    return out


def load_run(run_dir: str | os.PathLike[str]) -> SourceRun:
    """The run in `run_dir`; ConfigError (naming the file) when something is missing."""
    path = Path(run_dir)
    config_path = path / "config.yaml"
    results_path = path / "results.json"
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run directory")
    for needed in (config_path, results_path):
        if not needed.is_file():
            raise ConfigError(f"{needed}: missing; is {path} a run directory (harness run)?")
    data = load_yaml(config_path)
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: expected a mapping, got {type(data).__name__}")
    try:
        results = orjson.loads(results_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{results_path}: not valid JSON: {exc}") from None
    schedule = results.get("schedule")
    if not isinstance(results, dict) or not isinstance(schedule, list):
        raise ConfigError(f"{results_path}: key 'schedule': expected the run's list of faults")
    data = {k: v for k, v in data.items() if k not in _RUN_FACTS}
    nemesis = dict(data.get("nemesis") or {})
    nemesis["schedule"] = [_legacy_entry(e) if isinstance(e, dict) else e for e in schedule]
    data["nemesis"] = nemesis
    cfg = parse_run_config(data, f"{config_path} (with the schedule of {results_path.name})")
    return SourceRun(path, cfg, results)


__all__ = ["SourceRun", "load_run"]
