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

from harness.errors import ConfigError
from harness.oneline import one_line
from harness.safefile import write_atomic

DEFAULT_STORE = Path("store")


class StoreError(ConfigError):
    """The store cannot hold run directories; the message names it and says why."""


def check_store(store: Path) -> Path:
    """The store as an absolute directory that exists and is writable, made if missing.
    Checked before anything else of a run is done (backend, leftovers, nodes)."""
    shown = one_line(store, 120)
    if store.exists() and not store.is_dir():
        raise StoreError(f"--store {shown}: not a directory")
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"--store {shown}: cannot create it: {exc.strerror or exc}") from None
    if not os.access(store, os.W_OK | os.X_OK):
        raise StoreError(f"--store {shown}: not writable")
    return store.resolve()


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
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    write_atomic(run_dir / "results.json", data)
