"""Differential tests: the streaming checker (`check`, `check_file`) against the reference
rules over a whole in-memory walk (`harness.checker.rules.reference_verdict`).

The histories are chaos on purpose: a few processes in two elections doing every
operation in any order, small tokens and terms so that duplicates, regressions, stale
writes and split terms are common, equal and decreasing times, indexes, writes applied
before or after their ok, malformed values, and integers at the edges of what the two
JSON decoders read alike. Verdicts, or the malformed-history report, must be identical.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.checker import check, check_file
from harness.checker.rules import reference_verdict
from harness.checker.walk import walk
from harness.history import MalformedHistory, parse_lines, read_history
from harness.history.synth import correct_history

Record = dict[str, Any]

OPERATIONS = ["acquire", "acquire", "release", "write", "write", "x", "lost", "crash"]
# Integers the fast decoder must leave to orjson (beyond int64) or take (its edges).
ODD_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]
ODD_VALUES = [True, 1.0, None, "7", [1], {"n": 2**70}, *ODD_INTS]


def chaos(rng: random.Random) -> list[Record]:
    """Events of a few processes that mostly pair their operations, with a slip now and
    then (a wrong type or value, a stray completion, two events at one time), in time
    order but for an occasional swap of neighbours."""
    records: list[Record] = []
    open_ops: dict[Any, Record] = {}  # process -> its open invoke
    now = rng.randint(-3, 3)
    slips = rng.choice([0, 0, 30, 100])  # about one slip in this many events (0: none)
    for _ in range(rng.randint(0, 60)):
        now += rng.choice([0, 1, 1, 2, 3, 7])
        slip = slips and rng.randrange(slips) == 0
        process = rng.choice([0, 1, 2, "p3", "nemesis", "status"])
        record: Record
        if process == "status":
            node = rng.choice(["n1", "n2", "n3"])
            leader = rng.choice(["n1", "n2", "n3", None, node, node])
            value = {"node": node, "leader": leader, "term": rng.randint(0, 4)}
            record = {"time": now, "process": f"status-{node}", "type": "ok", "f": "status"}
            record["value"] = value
        elif process == "nemesis":
            record = {"time": now, "process": process, "type": "info", "f": "kill"}
        elif process in open_ops and not (slip and rng.random() < 0.5):
            invoke = open_ops.pop(process)
            etype = rng.choice(["ok", "ok", "ok", "fail", "info"])
            record = {"time": now, "process": process, "type": etype, "f": invoke["f"]}
            if invoke["f"] == "acquire" and etype == "ok":
                record["value"] = {"token": rng.randint(0, 5)}
            elif invoke["f"] == "write" and etype == "ok" and rng.random() < 0.4:
                record["value"] = {"applied_at": now + rng.randint(-6, 4)}
            if "election" in invoke:
                record["election"] = invoke["election"]
        else:
            f = rng.choice(
                ["acquire", "acquire", "release", "write", "write", "x", "lost", "crash"]
            )
            etype = "info" if f in ("lost", "crash") else "invoke"
            record = {"time": now, "process": process, "type": etype, "f": f}
            if f == "write":
                record["value"] = {"token": rng.randint(0, 5), "seq": rng.randint(0, 9)}
            if rng.random() < 0.2:
                record["election"] = "other"
            if etype == "invoke":
                open_ops[process] = record
            elif f == "crash":
                open_ops.pop(process, None)
        if rng.random() < 0.05:
            record["index"] = len(records)
        if slip:
            slip_into(rng, record)
        records.append(record)
    if records and rng.random() < 0.2:
        i = rng.randrange(len(records))
        records[i : i + 2] = records[i : i + 2][::-1]
    return records


def slip_into(rng: random.Random, record: Record) -> None:
    """One mistake in the record: a wrong field value or type, or an odd integer."""
    choice = rng.randrange(6)
    if choice == 0:
        record[rng.choice(["time", "process", "index", "node", "election"])] = rng.choice(
            ODD_VALUES
        )
    elif choice == 1:
        record["value"] = {"token": rng.choice(ODD_VALUES), "seq": rng.choice(ODD_VALUES)}
    elif choice == 2:
        record["type"] = rng.choice(["ok", "info", "invoke", "bogus"])
    elif choice == 3:
        record["time"] -= rng.randint(0, 2)
    elif choice == 4 and isinstance(record.get("value"), dict):
        record["value"][rng.choice(["term", "leader", "node", "applied_at"])] = rng.choice(
            ODD_VALUES
        )
    else:
        record["index"] = rng.randint(0, 3)


# A seed rather than `st.randoms`: a history draws hundreds of numbers, more than
# Hypothesis lets one example consume.
histories = st.builds(lambda seed: chaos(random.Random(seed)), st.integers(0, 2**64))


def lines_of(records: list[Record]) -> list[bytes]:
    # The standard library writes integers of any size, which orjson refuses to.
    return [json.dumps(r, separators=(",", ":")).encode() for r in records]


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The verdict, or the malformed-history report as text."""
    try:
        return fn(*args, **kwargs)
    except MalformedHistory as exc:
        return ("malformed", [str(p) for p in exc.problems])


def reference_of_events(records: list[Record], tolerance: int, grace: int) -> Any:
    def judge() -> Any:
        return reference_verdict(walk(parse_lines(lines_of(records))), tolerance, grace)

    return outcome(judge)


def reference_of_file(path: Path, tolerance: int, grace: int) -> Any:
    return outcome(lambda: reference_verdict(walk(read_history(path), str(path)), tolerance, grace))


settings_ = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings_
@given(histories, st.integers(0, 6), st.integers(0, 6))
def test_check_equals_the_reference(records: list[Record], tolerance: int, grace: int) -> None:
    expected = reference_of_events(records, tolerance, grace)
    got = outcome(
        lambda: check(parse_lines(lines_of(records)), tolerance_ns=tolerance, stale_grace_ns=grace)
    )
    assert got == expected


@settings_
@given(histories, st.integers(0, 6), st.integers(0, 6), st.booleans())
def test_check_file_equals_the_reference(
    tmp_path: Path, records: list[Record], tolerance: int, grace: int, zipped: bool
) -> None:
    path = tmp_path / ("history.jsonl.gz" if zipped else "history.jsonl")
    data = b"".join(line + b"\n" for line in lines_of(records))
    path.write_bytes(gzip.compress(data) if zipped else data)
    expected = reference_of_file(path, tolerance, grace)
    got = outcome(check_file, path, tolerance_ns=tolerance, stale_grace_ns=grace)
    assert got == expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.integers(0, 2**64), st.integers(1, 3), st.data())
def test_long_generated_histories_with_violations_agree(
    tmp_path: Path, seed: int, elections: int, data: st.DataObject
) -> None:
    """Correct histories of several elections merged in time order, with some of their
    tokens and terms squeezed together so that every kind of violation turns up."""
    rng = random.Random(seed)
    records: list[Record] = []
    for n in range(elections):
        history = correct_history(rng, leaderships=20, election=None if n == 0 else f"e{n}")
        for r in history:  # each election's candidates are processes of their own
            if isinstance(r["process"], int):
                r["process"] += 1000 * n
        records += history
    squeeze = data.draw(st.integers(1, 4))
    for r in records:
        value = r.get("value")
        if isinstance(value, dict):
            for key in ("token", "term"):
                if isinstance(value.get(key), int) and rng.random() < 0.3:
                    value[key] //= squeeze
    records.sort(key=lambda r: r["time"])
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines_of(records)))
    grace = data.draw(st.sampled_from([0, 10**6, 10**8]))
    expected = reference_of_file(path, 0, grace)
    assert outcome(check_file, path, stale_grace_ns=grace) == expected
    assert outcome(check, read_history(path), source=str(path), stale_grace_ns=grace) == expected
    if isinstance(expected, dict):
        assert expected["stats"]["acquisitions"] > 0


def test_the_chaos_reaches_every_kind_and_malformed_input() -> None:
    """The generator is worth its name: over fixed seeds it produces every violation
    kind, valid and malformed histories (else the tests above could pass by luck)."""
    seen: set[str] = set()
    outcomes = {"malformed": 0, "valid": 0}
    for seed in range(400):
        verdict = reference_of_events(chaos(random.Random(seed)), 0, 0)
        if isinstance(verdict, tuple):
            outcomes["malformed"] += 1
        else:
            outcomes["valid"] += verdict["valid"] is True
            seen |= {v["kind"] for v in verdict["violations"]}
    assert outcomes["malformed"] > 0 and outcomes["valid"] > 0, outcomes
    assert seen == {
        "split-brain",
        "duplicate-token",
        "token-regression",
        "stale-write",
        "term-split-brain",
        "stale-leader",
    }


@pytest.mark.parametrize("value", ODD_INTS)
def test_wide_integers_mean_what_orjson_reads(tmp_path: Path, value: int) -> None:
    """orjson reads an integer past 64 bits as a float; the fast decoder must not make
    it an integer (a token, an index, a process)."""
    records = [
        {"time": 1, "process": 0, "type": "invoke", "f": "acquire"},
        {"time": 2, "process": 0, "type": "ok", "f": "acquire", "value": {"token": value}},
        {"time": 3, "process": value, "type": "invoke", "f": "write", "value": {"token": value}},
        {"time": 4, "process": 5, "type": "info", "f": "x", "index": value},
    ]
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines_of(records)))
    assert outcome(check_file, path) == reference_of_file(path, 0, 0)
