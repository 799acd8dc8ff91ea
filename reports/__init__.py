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

from harness.checker import check
from harness.history import HistoryError, read_history
from reports.render import render_html, write_report
from reports.timeline import build_model

REPORT_NAME = "report.html"
_RUN_FACTS = ("target", "nemeses", "seed", "backend", "error")


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
    results: dict[str, Any] = {}
    results_path = run_path / "results.json"
    if results_path.is_file():
        try:
            results = orjson.loads(results_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise HistoryError(f"{results_path}: not valid JSON: {exc}") from exc
    # Judge again rather than trust results.json: the report cites each violation's
    # events, and a results.json written by an older harness does not have them.
    settings = ((results.get("verdict") or {}).get("settings")) or {}
    events = read_history(history)
    verdict = check(
        events,
        tolerance_ns=int(settings.get("tolerance_ns", 0)),
        stale_grace_ns=int(settings.get("stale_grace_ns", 0)),
        source=str(history),
    )
    run = {key: results.get(key) for key in _RUN_FACTS} if results else None
    return write_report(events, verdict, run_path / REPORT_NAME, source=str(history), run=run)


__all__ = ["REPORT_NAME", "build_model", "render_html", "write_report", "write_run_report"]
