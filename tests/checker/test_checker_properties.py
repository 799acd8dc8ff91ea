"""Property tests: histories from a model of a correct elector are valid; one injected
violation of each kind is found with its kind; line order and gzip change nothing."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.checker import check, check_file
from harness.history import parse_lines
from harness.history.synth import correct_history

Record = dict[str, Any]

histories = st.builds(
    lambda rng, nodes, leaderships, writes: correct_history(
        rng, nodes=nodes, leaderships=leaderships, writes_per_leadership=writes
    ),
    st.randoms(use_true_random=False),
    st.sampled_from([1, 3, 5]),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=4),
)


def run(records: list[Record], **settings_: int) -> dict[str, Any]:
    return check(parse_lines([orjson.dumps(r) for r in records]), **settings_)


def without_lines(verdict: dict[str, Any]) -> dict[str, Any]:
    """The verdict with its proving events' file lines dropped: they cite positions in the
    file, the only part of a verdict that line order may change."""
    for v in verdict["violations"]:
        v["events"] = sorted(
            ({k: x for k, x in e.items() if k != "line"} for e in v["events"]), key=orjson.dumps
        )
    return verdict


def kinds(records: list[Record]) -> set[str]:
    return {v["kind"] for v in run(records)["violations"]}


def acquisitions(records: list[Record]) -> list[Record]:
    return [r for r in records if r["f"] == "acquire" and r["type"] == "ok"]


def end_of(records: list[Record]) -> int:
    return max(r["time"] for r in records)


@given(histories)
def test_correct_histories_are_valid(records: list[Record]) -> None:
    verdict = run(records)
    assert verdict["valid"] is True, verdict["violations"]
    assert verdict["stats"]["acquisitions"] == len(acquisitions(records))


@given(histories, st.randoms(use_true_random=False))
def test_line_order_changes_nothing(records: list[Record], rng: random.Random) -> None:
    shuffled = list(records)
    rng.shuffle(shuffled)
    assert run(shuffled) == run(records)


@given(histories, st.data())
def test_shuffled_injected_violations_are_still_found(records: list[Record], data: Any) -> None:
    injected = data.draw(st.sampled_from(INJECTIONS))(records, data)
    shuffled = data.draw(st.permutations(injected))
    assert without_lines(run(list(shuffled))) == without_lines(run(injected))


# --- injections: each adds one violation of its kind to a correct history -------------


def inject_split_brain(records: list[Record], data: Any) -> list[Record]:
    """An intruder becomes leader while some leader still believes it leads."""
    grants = acquisitions(records)
    grant = data.draw(st.sampled_from(grants))
    holder, start = grant["process"], grant["time"]
    ends = [
        r["time"]
        for r in records
        if r["process"] == holder
        and r["time"] > start
        and (
            r["f"] in ("lost", "crash")
            or (r["f"] in ("release", "acquire") and r["type"] == "invoke")
        )
    ]
    end = min(ends, default=end_of(records) + 10)
    # Times in the model are distinct integers at least 1 apart; use half-steps.
    out = [{**r, "time": r["time"] * 4} for r in records]
    t = start * 4 + 1
    top = max(g["value"]["token"] for g in grants)
    out += [
        {"time": t, "process": "intruder", "type": "invoke", "f": "acquire"},
        {
            "time": t + 1,
            "process": "intruder",
            "type": "ok",
            "f": "acquire",
            "value": {"token": top + 100},
        },
        {"time": min(end * 4, end_of(out)) + 2, "process": "intruder", "type": "info", "f": "lost"},
    ]
    return out


def inject_duplicate_token(records: list[Record], data: Any) -> list[Record]:
    grant = data.draw(st.sampled_from(acquisitions(records)))
    t = end_of(records)
    return [
        *records,
        {"time": t + 1, "process": "twin", "type": "invoke", "f": "acquire"},
        {
            "time": t + 2,
            "process": "twin",
            "type": "ok",
            "f": "acquire",
            "value": {"token": grant["value"]["token"]},
        },
    ]


def inject_token_regression(records: list[Record], data: Any) -> list[Record]:
    low = min(g["value"]["token"] for g in acquisitions(records)) - 1
    t = end_of(records)
    return [
        *records,
        {"time": t + 1, "process": "late", "type": "invoke", "f": "acquire"},
        {"time": t + 2, "process": "late", "type": "ok", "f": "acquire", "value": {"token": low}},
    ]


def inject_stale_write(records: list[Record], data: Any) -> list[Record]:
    """A write with a token older than the newest grant, applied after it."""
    grants = acquisitions(records)
    newest = max(grants, key=lambda g: g["value"]["token"])
    t = end_of(records)
    stale_token = newest["value"]["token"] - data.draw(st.integers(1, 3))
    return [
        *records,
        {
            "time": t + 1,
            "process": "zombie",
            "type": "invoke",
            "f": "write",
            "value": {"token": stale_token, "seq": -1},
        },
        {
            "time": t + 3,
            "process": "zombie",
            "type": "ok",
            "f": "write",
            "value": {"applied_at": t + 2},
        },
    ]


def inject_term_split_brain(records: list[Record], data: Any) -> list[Record]:
    named = [r for r in records if r["f"] == "status" and r["value"]["leader"] is not None]
    t = end_of(records)
    if not named:
        term = 1
        named = [{"value": {"node": "n1", "leader": "n1", "term": term}}]
        extra = [
            {
                "time": t + 1,
                "process": "witness",
                "type": "ok",
                "f": "status",
                "value": {"node": "n1", "leader": "n1", "term": term},
            }
        ]
    else:
        extra = []
    seen = data.draw(st.sampled_from(named))["value"]
    return (
        records
        + extra
        + [
            {
                "time": t + 2,
                "process": "witness2",
                "type": "ok",
                "f": "status",
                "value": {"node": "nX", "leader": "nX", "term": seen["term"]},
            },
        ]
    )


def inject_stale_leader(records: list[Record], data: Any) -> list[Record]:
    terms = [r["value"]["term"] for r in records if r["f"] == "status"]
    t = end_of(records)
    high = max(terms, default=0) + 1
    return [
        *records,
        {
            "time": t + 1,
            "process": "witness",
            "type": "ok",
            "f": "status",
            "value": {"node": "nA", "leader": "nA", "term": high},
        },
        {
            "time": t + 2,
            "process": "witness2",
            "type": "ok",
            "f": "status",
            "value": {
                "node": "nB",
                "leader": "nB",
                "term": high - 1 - data.draw(st.integers(0, 2)),
            },
        },
    ]


INJECTIONS: list[Callable[[list[Record], Any], list[Record]]] = [
    inject_split_brain,
    inject_duplicate_token,
    inject_token_regression,
    inject_stale_write,
    inject_term_split_brain,
    inject_stale_leader,
]
EXPECTED = {
    inject_split_brain: "split-brain",
    inject_duplicate_token: "duplicate-token",
    inject_token_regression: "token-regression",
    inject_stale_write: "stale-write",
    inject_term_split_brain: "term-split-brain",
    inject_stale_leader: "stale-leader",
}


@given(histories, st.sampled_from(INJECTIONS), st.data())
def test_each_injected_violation_is_found_with_its_kind(
    records: list[Record], inject: Callable[[list[Record], Any], list[Record]], data: Any
) -> None:
    verdict = run(inject(records, data))
    assert verdict["valid"] is False
    assert EXPECTED[inject] in {v["kind"] for v in verdict["violations"]}


@given(histories, st.data())
def test_split_brain_is_found_exactly_past_the_tolerance(records: list[Record], data: Any) -> None:
    injected = inject_split_brain(records, data)
    overlaps = [
        v["end"] - v["start"] for v in run(injected)["violations"] if v["kind"] == "split-brain"
    ]
    assert overlaps
    worst = max(overlaps)
    assert "split-brain" in {v["kind"] for v in run(injected, tolerance_ns=worst - 1)["violations"]}
    assert "split-brain" not in {v["kind"] for v in run(injected, tolerance_ns=worst)["violations"]}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(histories, st.booleans())
def test_gzip_and_plain_agree(tmp_path: Path, records: list[Record], with_violation: bool) -> None:
    if with_violation:
        records = inject_token_regression(records, None)
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    plain = tmp_path / "h.jsonl"
    packed = tmp_path / "h.jsonl.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    assert check_file(plain) == check_file(packed)
    assert check_file(plain)["valid"] is (not with_violation)
