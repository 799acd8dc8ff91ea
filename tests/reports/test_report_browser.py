"""Reports opened in a real browser (headless Chromium): drawn, not blank, and inert."""

from __future__ import annotations

import random
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from harness.checker import check
from harness.history.synth import correct_history
from harness.reports import write_report
from harness.reports.browser import dump_dom, find_chromium, screenshot
from harness.testing.histories import acquired, events, info, status
from tests.png import colours

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="no chromium binary on PATH (apt-get install chromium; .ci/run installs it)",
    ),
]

Record = dict[str, Any]


def expected_leaderships(records: list[Record]) -> set[tuple[str, int, int, int]]:
    """(process, token, start, end) per acquire ok, computed here from HISTORY.md's
    definition: until the process's next release invoke, lost, crash or acquire invoke,
    or the end of the history."""
    ordered = sorted(records, key=lambda r: r["time"])
    end_of_history = ordered[-1]["time"]
    found = set()
    for i, r in enumerate(ordered):
        if r["f"] != "acquire" or r["type"] != "ok":
            continue
        end = end_of_history
        for later in ordered[i + 1 :]:
            if later["process"] != r["process"]:
                continue
            f, t = later["f"], later["type"]
            if f in ("lost", "crash") or (f in ("release", "acquire") and t == "invoke"):
                end = later["time"]
                break
        found.add((str(r["process"]), r["value"]["token"], r["time"], end))
    return found


def drawn_intervals(dom: str) -> set[tuple[str, int, int, int]]:
    drawn = set()
    for tag in re.findall(r'<rect [^>]*class="iv"[^>]*>', dom):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        drawn.add(
            (
                unescape(attrs["data-p"]),
                int(attrs["data-tok"]),
                int(attrs["data-s"]),
                int(attrs["data-e"]),
            )
        )
    return drawn


def with_faults(records: list[Record]) -> list[Record]:
    end = max(r["time"] for r in records)
    groups = {"mode": "halves", "groups": [["n1"], ["n2", "n3"]]}
    return [
        *records,
        {
            "time": end // 4,
            "process": "nemesis",
            "type": "info",
            "f": "start-partition",
            "value": groups,
        },
        {
            "time": end // 2,
            "process": "nemesis",
            "type": "info",
            "f": "stop-partition",
            "value": groups,
        },
        {
            "time": end // 3,
            "process": "nemesis",
            "type": "info",
            "f": "clock-skew",
            "value": {"nodes": ["n2"], "mode": "rate", "rate": 0.8},
        },
    ]


def render(tmp_path: Path, records: list[Record], name: str = "report.html") -> Path:
    evs = events(*records)
    return write_report(evs, check(evs), tmp_path / name, source="history.jsonl")


def test_drawn_intervals_match_the_historys_leaderships(tmp_path: Path) -> None:
    records = with_faults(correct_history(random.Random(7), nodes=3, leaderships=60))
    page = render(tmp_path, records)
    dom = dump_dom(page)
    assert re.search(r'data-drawn-ms="[\d.]+"', dom), "the page never finished drawing"
    expected = expected_leaderships(records)
    assert len(expected) == 60
    assert drawn_intervals(dom) == expected
    assert 'data-intervals="60"' in dom
    # The server-level leaders and the fault track were drawn as well.
    assert int(re.search(r'data-leaders="(\d+)"', dom).group(1)) > 0  # type: ignore[union-attr]
    for f, kind in (("start-partition", "partition"), ("clock-skew", "clock"), ("kill", "kill")):
        started = sum(1 for r in records if r["f"] == f)
        assert dom.count(f'class="fault {kind}"') == started, kind


def test_violations_are_marked_on_the_timeline(tmp_path: Path) -> None:
    records = [
        *acquired(0, 10, 1, 4, node="n1"),
        *acquired(5, 20, 2, 7, node="n2"),
        info(50, 1, "lost", node="n1"),
        status(60, "n1", "n1", 3),
        status(61, "n3", "n3", 3, p="probe3"),
    ]
    dom = dump_dom(render(tmp_path, records))
    assert 'data-violations="2"' in dom
    assert dom.count('class="viol-flag"') == 2


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    records = with_faults(correct_history(random.Random(8), nodes=3, leaderships=30))
    shot = screenshot(render(tmp_path, records), tmp_path / "shot.png", size=(1200, 800))
    counts = colours(shot)
    total = sum(counts.values())
    assert total == 1200 * 800
    # A page of text and coloured bars: many colours, and no colour covers it all.
    assert len(counts) > 50
    assert max(counts.values()) < 0.9 * total


EVIL_PROCESS = "<script>document.title='pwned'</script>"
EVIL_NODE = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','1')\">"


def test_names_from_the_history_run_nothing(tmp_path: Path) -> None:
    records = [
        *acquired(0, 10, EVIL_PROCESS, 4, node=EVIL_NODE),
        info(50, EVIL_PROCESS, "lost", node=EVIL_NODE),
        *acquired(60, 70, "</script><script>document.title='pwned2'</script>", 5, node="n2"),
        {
            "time": 80,
            "process": "nemesis",
            "type": "info",
            "f": "pause",
            "value": {"nodes": [EVIL_NODE]},
        },
        status(90, EVIL_NODE, EVIL_NODE, 3),
        status(91, "n2", "n2", 3, p="probe2"),  # a violation, so its detail is listed too
    ]
    dom = dump_dom(render(tmp_path, records))
    title = re.search(r"<title>(.*?)</title>", dom).group(1)  # type: ignore[union-attr]
    assert title == "Leadership report: history.jsonl"
    assert "data-pwned" not in dom.split(">", 2)[1]  # the <html> element's attributes
    assert "<img" not in dom  # no element made from a name, anywhere
    assert re.search(r'data-drawn-ms="[\d.]+"', dom), "the page's own script did not run"
    # The names are shown as text: the lane name and the process are in the drawing.
    assert "&lt;img src=x onerror=" in dom
    assert "data-p=\"&lt;script&gt;document.title='pwned'&lt;/script&gt;\"" in dom


ZOOM_SCRIPT = """<script>
window.addEventListener("load", function () {
  // Buttons draw at once, so the effects are in the DOM when this returns.
  var root = document.documentElement;
  root.setAttribute("data-before", root.getAttribute("data-intervals"));
  for (var i = 0; i < 4; i++) document.getElementById("zoom-in").click();
  root.setAttribute("data-zoomed", root.getAttribute("data-intervals"));
  document.querySelector("button.goto").click();
  root.setAttribute("data-selected", document.querySelectorAll(".violation.hl").length);
  root.setAttribute("data-hl", document.querySelectorAll("rect.viol.hl").length);
  root.setAttribute("data-at-violation", root.getAttribute("data-intervals"));
});
</script></body>"""


def test_zoom_culls_to_the_window_and_a_violation_can_be_selected(tmp_path: Path) -> None:
    records = correct_history(random.Random(9), nodes=3, leaderships=80)
    end = max(r["time"] for r in records)
    # Two leaders at the very end: a split brain to select.
    records += [
        *acquired(end + 1, end + 2, "x1", 10_000, node="n1"),
        *acquired(end + 3, end + 4, "x2", 10_001, node="n2"),
        info(end + 1_000, "x", "noop"),
    ]
    page = render(tmp_path, records)
    page.write_text(page.read_text().replace("</body>", ZOOM_SCRIPT))
    dom = dump_dom(page)
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', dom.split(">", 2)[1]))
    assert int(attrs["data-before"]) == 82
    # Zoomed 16x into the middle: only the leaderships in that window are drawn.
    assert 0 < int(attrs["data-zoomed"]) < 20
    assert attrs["data-selected"] == "1" and attrs["data-hl"] == "1"
    # Zoomed to the split brain at the end: the two leaders' bars (and maybe the last
    # regular leadership's end).
    assert 2 <= int(attrs["data-at-violation"]) <= 3
