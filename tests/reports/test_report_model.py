"""The report's model (reports.timeline) and page (reports.render), without a browser."""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser
from typing import Any

from harness.checker import check
from harness.history.synth import correct_history
from harness.reports.render import embed_json, render_html
from harness.reports.timeline import build_model, fault_label
from harness.testing.histories import acquired, events, info, inv, status


def model_of(*records: dict[str, Any], **kw: Any) -> dict[str, Any]:
    evs = events(*records)
    return build_model(evs, check(evs), **kw)


def nemesis(t: int, f: str, value: dict[str, Any] | None = None) -> dict[str, Any]:
    return info(t, "nemesis", f, value)


def test_intervals_follow_the_checkers_beliefs_per_node_lane() -> None:
    m = model_of(
        *acquired(0, 10, 1, 4, node="n1"),
        info(50, 1, "lost", node="n1"),
        *acquired(20, 60, 2, 7, node="n2"),
        inv(90, 2, "release", node="n2"),
        info(100, "x", "noop"),
    )
    assert m["lanes"] == ["n1", "n2"]
    assert m["processes"] == [1, 2]
    ends = m["endings"]
    # [lane, start, end, token, process, ending, election, start line, end line]
    assert m["intervals"] == [
        [0, 10, 50, 4, 0, ends.index("lost"), 0, 2, 3],
        [1, 60, 90, 7, 1, ends.index("release"), 0, 5, 6],
    ]
    assert (m["start"], m["end"]) == (0, 100)


def test_open_leadership_runs_to_the_end_and_crash_ends_it() -> None:
    m = model_of(
        *acquired(0, 10, "a", 1, node="n1"),
        info(30, "a", "crash", node="n1"),
        *acquired(40, 50, "b", 2, node="n2"),
        info(80, "x", "noop"),
    )
    ends = m["endings"]
    assert [(r[1], r[2], ends[r[5]], r[8]) for r in m["intervals"]] == [
        (10, 30, "crash", 3),
        (50, 80, "end of history", None),
    ]


def test_a_process_without_node_gets_its_own_lane_and_lanes_sort_naturally() -> None:
    m = model_of(
        *acquired(0, 10, "a", 1, node="n10"),
        info(11, "a", "lost", node="n10"),
        *acquired(12, 20, "b", 2, node="n2"),
        info(21, "b", "lost", node="n2"),
        *acquired(22, 30, "c", 3),
    )
    assert m["lanes"] == ["n2", "n10", "process c"]
    assert [m["lanes"][r[0]] for r in m["intervals"]] == ["n10", "n2", "process c"]


def test_status_leaders_per_term_land_in_the_leaders_lane() -> None:
    m = model_of(
        status(0, "n1", None, 1),
        status(10, "n1", "n2", 3),
        status(12, "n3", "n2", 3, p="probe3"),
        status(30, "n2", "n2", 3, p="probe2"),
        status(40, "n1", "n1", 4),
    )
    assert m["lanes"] == ["n1", "n2", "n3"]
    # [lane, first seen, last seen, term, observations, observers]
    assert m["leaders"] == [[1, 10, 30, 3, 3, 3], [0, 40, 40, 4, 1, 1]]


def test_faults_pair_start_and_heal_and_keep_open_ones_to_the_end() -> None:
    m = model_of(
        *acquired(0, 1, "a", 1, node="n1"),
        nemesis(5, "start-partition", {"mode": "one", "groups": [["n1"], ["n2", "n3"]]}),
        nemesis(6, "pause", {"nodes": ["n2"], "processes": "both", "target": "one"}),
        nemesis(7, "pause", {"nodes": ["n3"], "processes": "member", "target": "one"}),
        nemesis(8, "resume", {"nodes": ["n3"], "processes": "member", "target": "one"}),
        nemesis(9, "clock-skew", {"nodes": ["n1"], "mode": "rate", "rate": 0.8}),
        nemesis(10, "stop-partition", {"mode": "one", "groups": [["n1"], ["n2", "n3"]]}),
        nemesis(11, "kill", {"nodes": ["n3"], "processes": "candidate"}),
        nemesis(12, "restart", {"nodes": ["n3"], "processes": "candidate"}),
        nemesis(13, "start-run", {"x": 1}),
        info(20, "x", "noop"),
    )
    lanes = m["lanes"]
    assert lanes == ["n1", "n2", "n3"]
    got = [
        (f["kind"], f["start"], f["end"], f["open"], [lanes[i] for i in f["lanes"]])
        for f in m["faults"]
    ]
    assert got == [
        ("partition", 5, 10, False, []),
        ("pause", 6, 20, True, ["n2"]),  # never resumed: open to the end
        ("pause", 7, 8, False, ["n3"]),  # the resume of n3 heals n3's pause, not n2's
        ("clock", 9, 20, True, ["n1"]),
        ("kill", 11, 12, False, ["n3"]),
    ]
    assert m["faults"][0]["groups"] == [[0], [1, 2]]
    # Overlapping faults get separate rows of the fault track.
    assert [f["row"] for f in m["faults"]] == [0, 1, 2, 2, 0]
    assert [(k["time"], k["f"]) for k in m["marks"]] == [(13, "start-run")]


def test_lossy_and_one_direction_faults_are_bands_with_their_nodes_and_labels() -> None:
    lossy = {"mode": "one-link", "links": [["n1", "n3"]], "nodes": ["n1", "n3"],
             "probability": 0.2}  # fmt: skip
    drop = {"mode": "one-direction", "node": "n2", "direction": "in", "nodes": ["n2"]}
    m = model_of(
        *acquired(0, 1, "a", 1, node="n1"),
        nemesis(5, "start-lossy", lossy),
        nemesis(6, "start-partition", drop),
        nemesis(8, "stop-partition", drop),
        nemesis(9, "stop-lossy", lossy),
    )
    lanes = m["lanes"]
    got = [
        (f["kind"], f["start"], f["end"], [lanes[i] for i in f["lanes"]], f["label"])
        for f in m["faults"]
    ]
    assert got == [
        ("lossy", 5, 9, ["n1", "n3"], "lossy 20% loss on n1-n3"),
        ("partition", 6, 8, ["n2"], "partition one-direction: n2 does not hear (drops in)"),
    ]
    assert m["marks"] == []


def test_fault_labels() -> None:
    assert fault_label(
        "partition", "start-partition", {"mode": "halves", "groups": [["n1"], ["n2", "n3"]]}
    ) == ("partition halves: n1 | n2 n3")
    assert fault_label("pause", "pause", {"nodes": ["n2"], "processes": "both"}) == (
        "paused both on n2"
    )
    assert fault_label(
        "clock", "clock-skew", {"nodes": ["n1"], "mode": "bump", "offset_ns": 2_500_000}
    ) == ("clock bump offset +2.5 ms on n1")


def test_violations_carry_their_lanes_and_proof() -> None:
    m = model_of(
        *acquired(0, 10, 1, 4, node="n1"),
        *acquired(5, 20, 2, 7, node="n2"),
        info(50, 1, "lost", node="n1"),
        status(60, "n1", "n1", 3),
        status(61, "n3", "n3", 3, p="probe3"),
    )
    kinds = [(v["kind"], [m["lanes"][i] for i in v["lanes"]]) for v in m["violations"]]
    assert kinds == [("split-brain", ["n1", "n2"]), ("term-split-brain", ["n1", "n3"])]
    assert [e["line"] for e in m["violations"][0]["events"]] == [2, 4, 5]


def test_model_of_a_synthetic_history_has_every_leadership() -> None:
    records = correct_history(random.Random(3), nodes=3, leaderships=200)
    m = model_of(*records)
    oks = [r for r in records if r["f"] == "acquire" and r["type"] == "ok"]
    assert len(m["intervals"]) == len(oks) == 200
    assert sorted(r[3] for r in m["intervals"]) == sorted(r["value"]["token"] for r in oks)
    assert [r[1] for r in m["intervals"]] == sorted(r[1] for r in m["intervals"])
    json.dumps(m)  # JSON-ready as it is


# --- the page -----------------------------------------------------------------------------


class _Scripts(HTMLParser):
    """Collects the page's <script> elements as the browser's tokenizer splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


EVIL = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)>&amp;"


def test_history_strings_cannot_leave_the_data_block() -> None:
    m = model_of(
        *acquired(0, 10, EVIL, 1, node=EVIL),
        info(50, EVIL, "lost", node=EVIL),
        nemesis(60, "pause", {"nodes": [EVIL]}),
        status(70, EVIL, EVIL, 3),
        status(71, "n2", "n2", 3, p="probe2"),
    )
    page = render_html(m)
    parser = _Scripts()
    parser.feed(page)
    # Exactly our two scripts: the data block and the drawing code, nothing injected.
    assert [attrs.get("type") for attrs, _ in parser.scripts] == ["application/json", None]
    assert "pwned" not in parser.scripts[1][1]
    data = json.loads(parser.scripts[0][1])
    assert data["lanes"][0] == EVIL and data["processes"] == [EVIL]
    # Outside the scripts (summary, violation list) the text is entity-escaped.
    outside = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert "<img" not in outside and "<script>document" not in outside
    assert "&lt;/script&gt;&lt;script&gt;document.title=" in outside


def test_embed_json_leaves_no_angle_brackets_or_ampersands() -> None:
    text = str(embed_json({"a": "</script>&<!--", "b": [1, "x"]}))
    assert not set("<>&") & set(text)
    assert json.loads(text) == {"a": "</script>&<!--", "b": [1, "x"]}


def test_page_summary_shows_verdict_counts_and_figures() -> None:
    m = model_of(
        *acquired(0, 1_000_000, 1, 4, node="n1"),
        info(2_000_000_000, 1, "lost", node="n1"),
        *acquired(2_100_000_000, 2_500_000_000, 2, 7, node="n2"),
        inv(3_000_000_000, 2, "release", node="n2"),
        *acquired(3_100_000_000, 3_200_000_000, 1, 3, node="n1"),
    )
    page = render_html(m)
    assert "INVALID: 1 violation(s)" in page
    assert "token-regression" in page
    # One failover of 0.5 s (lost at 2.0 s, next ok at 2.5 s) and one of 0.2 s.
    assert "0.200 s / 0.500 s / 0.500 s" in page
    assert "the 3 event(s) that prove it" in page


def test_valid_page_has_no_violations() -> None:
    page = render_html(model_of(*acquired(0, 10, 1, 4, node="n1")))
    assert 'class="badge valid"' in page and "None: every rule holds." in page


def test_faults_that_never_heal_share_the_last_fault_row() -> None:
    m = model_of(
        *acquired(0, 1, "a", 1, node="n1"),
        *[nemesis(10 + i, "pause", {"nodes": [f"n{i}"]}) for i in range(10)],
        info(100, "x", "noop"),
    )
    assert [f["row"] for f in m["faults"]] == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]
