"""Reports: verdict and history rendered as a self-contained HTML timeline.

    write_report(events, verdict, "report.html")   # any history in format v1
    write_run_report(run_dir)                       # RUN_DIR/report.html from its files

`reports.timeline` builds the model (pure), `reports.render` turns it into HTML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from harness import options as opts
from harness.checker import check
from harness.history import HistoryError, read_history
from harness.oneline import one_line
from harness.reports.render import render_html, write_report
from harness.reports.timeline import build_model
from harness.safefile import open_read

REPORT_NAME = "report.html"
MAX_RESULTS_BYTES = 16 * 2**20  # a run's results are kilobytes; the schedule is the bulk
MAX_TOLERANCE_NS = opts.MAX_TOLERANCE_NS
_RUN_FACTS = (
    "target", "nemeses", "seed", "backend", "error",
    # the schedule carried out, where it came from, and the run it was derived from
    "time_limit", "schedule", "schedule_source", "origin",
)  # fmt: skip


def write_run_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write RUN_DIR/report.html from RUN_DIR/history.jsonl, judged with the settings that
    RUN_DIR/results.json records (defaults without one). Raises HistoryError when the
    directory or its history is missing or malformed (the message names file and line)."""
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise HistoryError(f"{run_path}: no such run directory")
    history = run_path / "history.jsonl"
    if not history.is_file():
        raise HistoryError(f"{history}: no history in this run directory")
    results_path = run_path / "results.json"
    results = read_results(results_path) if results_path.exists() else {}
    # Judge again rather than trust results.json: the report cites each violation's
    # events, and a results.json written by an older harness does not have them.
    settings = ((results.get("verdict") or {}).get("settings")) or {}
    events = read_history(history)
    verdict = check(
        events,
        tolerance_ns=settings.get("tolerance_ns", 0),
        stale_grace_ns=settings.get("stale_grace_ns", 0),
        source=str(history),
    )
    run = {key: results.get(key) for key in _RUN_FACTS} if results else None
    return write_report(events, verdict, run_path / REPORT_NAME, source=str(history), run=run)


def read_results(path: Path) -> dict[str, Any]:
    """RUN_DIR/results.json, checked for what the report uses: HistoryError names the file,
    the key and what was expected (it may come from anywhere: an artifact, a colleague)."""
    try:
        with open_read(path) as fh:
            raw = fh.read(MAX_RESULTS_BYTES + 1)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {one_line(exc.strerror or exc)}") from exc
    if len(raw) > MAX_RESULTS_BYTES:
        raise HistoryError(f"{path}: larger than {MAX_RESULTS_BYTES} bytes; not a results file")
    try:
        results = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"{path}: not valid JSON: {one_line(exc)}") from exc

    def bad(key: str, expected: str, value: Any) -> HistoryError:
        got = one_line(orjson.dumps(value).decode(), 60)
        return HistoryError(f"{path}: {key}: expected {expected}, got {got}")

    if not isinstance(results, dict):
        raise bad("top level", "an object", results)
    for key, kinds, expected in (
        ("target", (str,), "a string"),
        ("backend", (str,), "a string"),
        ("error", (str,), "a string"),
        ("seed", (int,), "an integer"),
        ("nemeses", (list,), "a list of strings"),
    ):
        value = results.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise bad(key, expected + " or null", value)
    if not all(isinstance(n, str) for n in results.get("nemeses") or []):
        raise bad("nemeses", "a list of strings", results["nemeses"])
    verdict = results.get("verdict")
    if verdict is None:
        return results
    if not isinstance(verdict, dict):
        raise bad("verdict", "an object or null", verdict)
    settings = verdict.get("settings")
    if settings is None:
        return results
    if not isinstance(settings, dict):
        raise bad("verdict.settings", "an object or null", settings)
    for key in ("tolerance_ns", "stale_grace_ns"):
        value = settings.get(key, 0)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_TOLERANCE_NS
        ):
            raise bad(f"verdict.settings.{key}", f"an integer 0..{MAX_TOLERANCE_NS} (ns)", value)
    return results


__all__ = [
    "REPORT_NAME",
    "build_model",
    "read_results",
    "render_html",
    "write_report",
    "write_run_report",
]
