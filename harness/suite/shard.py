"""Suites split across machines: `--shard K/N` picks a deterministic share of a suite's
runs; `harness suite merge DIR...` puts the shards' results back together.

The split works on runs (case, seed), not cases, so that a suite of a few long cases
still spreads evenly. It is the classic longest-first greedy: runs sorted by expected
duration (time limit + quiet period + start-up; ties in suite order), each given to the
shard with the least expected time so far (ties: the lowest shard). It depends only on
the suite and N, so every machine computes the same split without talking to the others.

A shard's directory is an ordinary suite directory whose suite.json also records the
shard, the suite file, the command-line overrides and the directory it was written in
(run directories are found again relative to it after the shards are copied elsewhere).
Merge checks that the directories are the N shards of one suite, each once, together
holding every run exactly once, then judges the whole suite as one run would have.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import ConfigError
from harness.suite.model import Suite
from harness.suite.runner import RunKey, RunRecord, expected_duration_s

MAX_SHARDS = 1000


@dataclass(frozen=True)
class Shard:
    k: int  # 1-based
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def parse_shard(text: str) -> Shard:
    """`K/N` with 1 <= K <= N; ValueError says what is wrong."""
    k_text, sep, n_text = text.partition("/")
    try:
        if not sep:
            raise ValueError
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"expected K/N (shard K of N, e.g. 2/4), got {text!r}") from None
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"expected N from 1 to {MAX_SHARDS} in K/N, got {text!r}")
    if not 1 <= k <= n:
        raise ValueError(f"expected K from 1 to N={n} in K/N, got {text!r}")
    return Shard(k, n)


def plan_shards(suite: Suite, n: int) -> list[set[RunKey]]:
    """The runs (case number, seed) of each of `n` shards, balanced by expected duration."""
    runs = [
        (expected_duration_s(case.run), i, (case.number, seed))
        for i, (case, seed) in enumerate((c, s) for c in suite.cases for s in c.seeds)
    ]
    runs.sort(key=lambda r: (-r[0], r[1]))
    shares: list[set[RunKey]] = [set() for _ in range(n)]
    load = [(0.0, k) for k in range(n)]  # (expected seconds so far, shard index)
    for duration, _, key in runs:
        total, k = heapq.heappop(load)
        shares[k].add(key)
        heapq.heappush(load, (total + duration, k))
    return shares


def shard_runs(suite: Suite, shard: Shard) -> set[RunKey]:
    return plan_shards(suite, shard.n)[shard.k - 1]


def expected_seconds(suite: Suite, runs: set[RunKey]) -> float:
    by_number = {c.number: c for c in suite.cases}
    return sum(expected_duration_s(by_number[number].run) for number, _ in runs)


# ----------------------------------------------------------------------------- merging


class MergeError(ConfigError):
    """The directories are not the shards of one suite (bad input: exit 2); the message
    says why."""


@dataclass
class ShardDir:
    path: Path
    data: dict[str, Any]
    shard: Shard

    @property
    def file(self) -> str:
        return str(self.data.get("file"))

    @property
    def settings(self) -> tuple[Any, ...]:
        """What must be equal across the shards of one suite."""
        return (orjson.dumps(self.data.get("overrides"), option=orjson.OPT_SORT_KEYS),)

    def records(self) -> dict[str, list[RunRecord]]:
        """Records by case name, with run directories found under this directory."""
        written_in = self.data.get("directory")
        out: dict[str, list[RunRecord]] = {}
        for case in self.data.get("cases", []):
            recs = []
            for raw in case.get("runs", []):
                rec = RunRecord.from_dict(raw)
                rec.run_dir = _relocated(rec.run_dir, written_in, self.path)
                recs.append(rec)
            out[str(case["name"])] = recs
        return out


def _relocated(run_dir: str | None, written_in: Any, now: Path) -> str | None:
    if run_dir is None or not isinstance(written_in, str):
        return run_dir
    try:
        rel = Path(run_dir).relative_to(written_in)
    except ValueError:
        return run_dir  # not under the suite directory: left as it was
    return str(now.resolve() / rel)


def read_shard_dir(path: Path) -> ShardDir:
    file = path / "suite.json"
    if not path.is_dir():
        raise MergeError(f"{path}: no such directory")
    if not file.is_file():
        raise MergeError(f"{path}: no suite.json (not a suite directory, or its run broke off)")
    try:
        data = orjson.loads(file.read_bytes())
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
            raise ValueError("expected an object with a 'cases' list")
        raw = data.get("shard") or "1/1"  # an unsharded run is its own only shard
        shard = parse_shard(str(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise MergeError(f"{file}: {exc}") from None
    return ShardDir(path, data, shard)


def check_shards(dirs: list[ShardDir]) -> None:
    """The directories must be shards 1..N of one suite, each exactly once."""
    first = dirs[0]
    for d in dirs[1:]:
        if d.shard.n != first.shard.n:
            raise MergeError(
                f"{d.path}: shard {d.shard} is of a {d.shard.n}-way split, "
                f"but {first.path} is shard {first.shard}"
            )
        if d.settings != first.settings or d.data.get("suite") != first.data.get("suite"):
            raise MergeError(
                f"{d.path}: a different suite or different overrides than {first.path} "
                f"({d.data.get('suite')!r} {d.data.get('overrides')} vs "
                f"{first.data.get('suite')!r} {first.data.get('overrides')})"
            )
    seen: dict[int, Path] = {}
    for d in dirs:
        if d.data.get("interrupted"):
            raise MergeError(
                f"{d.path}: shard {d.shard} was interrupted ({d.data['interrupted']}): run it again"
            )
        if d.shard.k in seen:
            raise MergeError(f"{d.path}: shard {d.shard} given twice (also {seen[d.shard.k]})")
        seen[d.shard.k] = d.path
    missing = [f"{k}/{first.shard.n}" for k in range(1, first.shard.n + 1) if k not in seen]
    if missing:
        raise MergeError(f"shard(s) {', '.join(missing)} missing: give every shard's directory")


def merged_records(suite: Suite, dirs: list[ShardDir]) -> dict[str, list[RunRecord]]:
    """Every case's records in seed order; MergeError if a run is missing or twice."""
    by_case: dict[str, dict[int, RunRecord]] = {c.name: {} for c in suite.cases}
    for d in dirs:
        expected = shard_runs(suite, d.shard)
        for name, recs in d.records().items():
            if name not in by_case:
                raise MergeError(f"{d.path}: case {name!r} is not in the suite {suite.path}")
            number = next(c.number for c in suite.cases if c.name == name)
            for rec in recs:
                if rec.seed in by_case[name]:
                    raise MergeError(f"{d.path}: case {name!r} seed {rec.seed} is in two shards")
                if (number, rec.seed) not in expected:
                    raise MergeError(
                        f"{d.path}: case {name!r} seed {rec.seed} does not belong to shard "
                        f"{d.shard} of {suite.path} (was the suite file changed?)"
                    )
                by_case[name][rec.seed] = rec
    out: dict[str, list[RunRecord]] = {}
    for case in suite.cases:
        have = by_case[case.name]
        lost = [s for s in case.seeds if s not in have]
        if lost:
            raise MergeError(
                f"case {case.name!r}: seed(s) {', '.join(map(str, lost))} in no shard "
                "(a shard was interrupted, or the suite file changed)"
            )
        out[case.name] = [have[s] for s in case.seeds]
    return out
