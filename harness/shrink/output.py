"""What a shrink leaves behind, in its own directory:

shrunk.yaml   a runnable configuration (`harness run --config shrunk.yaml`)
shrink.json   every step: schedule, time limit, tries, failures, kinds, run dirs
report.html   the report of the smallest failing run
summary.txt   the one-screen summary that was printed
runs/         every candidate's run directory
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import orjson
import yaml

from harness.nemesis.explicit import describe, kinds_of, plans_to_entries
from harness.runconfig import RunConfig
from harness.shrink.search import Candidate, ShrinkResult


def _faults(c: Candidate) -> str:
    return f"{len(c.plans)} fault{'s' if len(c.plans) != 1 else ''}"


def summary_line(result: ShrinkResult) -> str:
    """ "8 faults, 30 s -> 1 fault (pause holder's candidate 4.1 s at 3.0 s), 9 s; fails 3/3" """
    start, best = result.start, result.best
    return (
        f"{_faults(start)}, {start.time_limit:g} s -> {best.summary()}; "
        f"fails {result.best_failures}/{result.best_tries}"
    )


def summary_text(result: ShrinkResult, directory: Path, source: Path, kinds: list[str]) -> str:
    runs = sum(s.tries for s in result.steps)
    stopped = {
        "done": "search finished",
        "budget": "stopped at the budget; best so far kept",
        "interrupted": "interrupted; best so far kept",
    }[result.stopped]
    lines = [
        summary_line(result),
        f"violation kind(s) wanted: {', '.join(kinds)}",
        "schedule:" if result.best.plans else "schedule: no faults",
        *(f"  {i + 1}. {describe(p)}" for i, p in enumerate(result.best.plans)),
        f"{len(result.steps)} candidate(s), {runs} run(s), {result.wall_s:.0f} s; {stopped}",
        f"from: {source}",
        f"shrunk.yaml: {directory / 'shrunk.yaml'}",
        f"shrink.json: {directory / 'shrink.json'}",
    ]
    if (directory / "report.html").is_file():
        lines.append(f"report: {directory / 'report.html'}")
    return "\n".join(lines)


def shrunk_config(base: RunConfig, best: Candidate, source: Path, directory: Path) -> RunConfig:
    cfg = copy.deepcopy(base)
    cfg.plans = list(best.plans)
    cfg.time_limit = best.time_limit
    cfg.nemeses = kinds_of(best.plans)
    cfg.origin = {"shrunk_from": str(source.resolve()), "shrink": str(directory.resolve())}
    return cfg


def write_outputs(
    directory: Path,
    result: ShrinkResult,
    base: RunConfig,
    source: Path,
    kinds: list[str],
    settings: dict[str, Any],
) -> str:
    """Write shrunk.yaml, shrink.json, report.html and summary.txt; returns the summary."""
    cfg = shrunk_config(base, result.best, source, directory)
    header = (
        f"# Shrunk by harness shrink from {source}\n# {summary_line(result)}\n"
        "# Run it: harness run --config shrunk.yaml\n"
    )
    (directory / "shrunk.yaml").write_text(header + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    data = {
        "source": str(source.resolve()),
        "kinds": kinds,
        **settings,
        "stopped": result.stopped,
        "wall_s": round(result.wall_s, 3),
        "summary": summary_line(result),
        "start": {
            "schedule": plans_to_entries(result.start.plans),
            "time_limit": result.start.time_limit,
        },
        "best": {
            "schedule": plans_to_entries(result.best.plans),
            "time_limit": result.best.time_limit,
            "failures": result.best_failures,
            "tries": result.best_tries,
            "run_dir": result.best_run_dir,
        },
        "steps": [s.to_dict() for s in result.steps],
    }
    (directory / "shrink.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    if result.best_run_dir is not None:
        report = Path(result.best_run_dir) / "report.html"
        if report.is_file():
            shutil.copyfile(report, directory / "report.html")
    text = summary_text(result, directory, source, kinds)
    (directory / "summary.txt").write_text(text + "\n")
    return text


__all__ = ["shrunk_config", "summary_line", "summary_text", "write_outputs"]
