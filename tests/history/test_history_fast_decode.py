"""The reader's fast path (msgspec into a checked struct) against the plain one (orjson
and `Event.from_dict`): every line means the same event, value for value and type for
type, or is refused by both."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.history.events import Event
from harness.history.reader import LineParser, decode_fast

# Values at the edges of what the two decoders read alike: integers around 64 bits
# (orjson makes a float of a wider one), floats near the limits, odd strings, nesting.
edges = st.one_of(
    st.integers(-(2**65), 2**65),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5e-324, 1.7976931348623157e308, -0.0, 0.1 + 0.2]),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
values = st.dictionaries(
    st.sampled_from(["token", "seq", "node", "term", "applied_at", "leader", "x"]),
    st.one_of(edges, st.lists(edges, max_size=2), st.dictionaries(st.text(max_size=2), edges)),
    max_size=3,
)
records = st.fixed_dictionaries(
    {
        "time": st.one_of(st.integers(-(2**62) - 2, 2**62 + 2), edges),
        "process": st.one_of(st.integers(-3, 3), st.sampled_from(["p", "nemesis"]), edges),
        "type": st.sampled_from(["invoke", "ok", "fail", "info", "bogus"]),
        "f": st.one_of(st.sampled_from(["acquire", "write", "status"]), edges),
    },
    optional={
        "value": st.one_of(values, edges),
        "node": st.one_of(st.sampled_from(["n1"]), edges),
        "index": edges,
        "election": st.one_of(st.sampled_from(["leader", "e"]), edges),
    },
)


def plain(raw: bytes, line: int) -> Event | None:
    import orjson

    try:
        return Event.from_dict(orjson.loads(raw), line)
    except ValueError:
        return None


def same(a: Event | None, b: Event | None) -> bool:
    if a is None or b is None:
        return a is b
    # == says 1 == 1.0 and True == 1: compare the types and reprs too.
    return a == b and all(
        type(getattr(a, k)) is type(getattr(b, k)) and repr(getattr(a, k)) == repr(getattr(b, k))
        for k in Event.__slots__
    )


@settings(max_examples=1500)
@given(st.lists(records, min_size=1, max_size=5))
def test_the_fast_reader_reads_what_the_plain_one_reads(batch: list[dict[str, Any]]) -> None:
    lines = [json.dumps(r).encode() for r in batch]
    parser = LineParser(None)
    got = {e.line: e for e in parser.parse(lines)}
    for n, raw in enumerate(lines, 1):
        assert same(got.get(n), plain(raw, n)), raw


@settings(max_examples=1500)
@given(records)
def test_the_checker_struct_takes_only_what_the_plain_reader_takes(record: dict[str, Any]) -> None:
    """The checker's struct (its value may nest) accepts a line only if the plain reader
    does, with the same fields the checker reads."""
    raw = json.dumps(record).encode()
    try:
        fast = decode_fast(raw)
    except Exception:
        return
    event = plain(raw, 1)
    assert event is not None, raw
    for field in ("time", "process", "type", "f", "node", "index", "election"):
        assert repr(getattr(fast, field)) == repr(getattr(event, field)), (field, raw)
    top = {k: v for k, v in (fast.value or {}).items() if not isinstance(v, list | dict)}
    assert all(repr(v) == repr((event.value or {})[k]) for k, v in top.items()), raw
