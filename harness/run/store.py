"""Runs on disk (Jepsen's store/): one directory per run and a `latest` link.

store/20261126-120000-reference-partition-s1-ab12/
    config.yaml  history.jsonl  results.json  history/  logs/  nodes/
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

DEFAULT_STORE = Path("store")


def new_run_dir(store: Path, target: str, nemeses: tuple[str, ...], seed: int, run_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{target}-{'+'.join(nemeses)}-s{seed}-{run_id[:4]}"
    # Absolute: nodes (containers) see the run directory at this same path, not from
    # the harness's working directory.
    run_dir = store.resolve() / name
    for sub in ("history", "logs", "nodes"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    link = store / "latest"
    tmp = store / f".latest-{run_id}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(name)
    os.replace(tmp, link)
    return run_dir


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    tmp = run_dir / "results.json.tmp"
    tmp.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, run_dir / "results.json")
