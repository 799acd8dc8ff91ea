"""The suite's index page: one self-contained HTML file (inline CSS, no scripts) with a
row per case (figures, verdicts, baseline side by side) and a link to each run's report.

Links are relative to the index's own directory, so the suite directory can be moved or
published as a CI artifact whole. A run directory without `report.html` is linked by its
`results.json`. Every text from suites, configurations and verdicts is escaped
(jinja2's autoescape).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jinja2

from harness.reports import REPORT_NAME  # the runner writes it into every run directory
from harness.safefile import write_atomic
from harness.suite.compare import CaseVerdict, seconds
from harness.suite.model import Suite

INDEX_NAME = "index.html"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>suite {{ suite.name }}: {{ "PASS" if passed else "FAIL" }}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em}
.sub{color:#555;margin-bottom:1em}
table{border-collapse:collapse;margin-top:.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#13692b;font-weight:600}.fail{color:#b00020;font-weight:600}
.note{color:#666}.base{background:#fafaf0}
ul{margin:0;padding-left:1.1em}
.bar{display:inline-block;height:.6em;background:#6b8fd6;vertical-align:middle;margin-left:.3em}
.bar.old{background:#bbb}
a.run{margin-right:.4em;white-space:nowrap}
a.caught{color:#b00020}a.error{color:#8a5a00}
</style></head><body>
<h1>Suite {{ suite.name }}: <span class="{{ 'pass' if passed else 'fail' }}">
{{- "PASS" if passed else "FAIL" }}</span></h1>
<div class="sub">{{ suite.path }}{% if suite.description %} &mdash; {{ suite.description }}
{%- endif %}<br>{{ generated }}{% if interrupted %}; <span class="fail">interrupted
({{ interrupted }}): later runs were not carried out</span>{% endif %}
{% if baseline_dir %}<br>baseline: {{ baseline_dir }} (tolerance: failover p99
+{{ suite.tolerance.failover_p99_pct }} % + {{ suite.tolerance.failover_p99_ms }} ms,
leaderless +{{ suite.tolerance.leaderless_pct_points }} points){% endif %}</div>
<table>
<tr><th>case</th><th>target / faults</th><th>runs</th><th>violations</th>
<th>failover p50</th><th>failover p99</th><th>leaderless</th><th>elections<br>(max/run)</th>
{% if baseline_dir %}<th class="base">baseline p99</th><th class="base">baseline
leaderless</th><th class="base">baseline violations</th>{% endif %}
<th>expectations</th><th>verdict</th><th>runs (reports)</th></tr>
{% for row in rows %}
<tr>
<td>{{ row.name }}</td>
<td>{{ row.target }}<br><span class="note">{{ row.faults }}</span></td>
<td class="num">{{ row.runs }}</td>
<td>{{ row.violations }}{% if row.kinds %}<br><span class="note">{{ row.kinds }}</span>
{%- endif %}</td>
<td class="num">{{ row.p50 }}</td>
<td class="num">{{ row.p99 }}<span class="bar" style="width:{{ row.p99_bar }}px"></span></td>
<td class="num">{{ row.leaderless }}</td>
<td class="num">{{ row.elections }}</td>
{% if baseline_dir %}
<td class="num base">{{ row.base_p99 }}{% if row.base_p99_bar is not none %}<span
class="bar old" style="width:{{ row.base_p99_bar }}px"></span>{% endif %}</td>
<td class="num base">{{ row.base_leaderless }}</td>
<td class="base">{{ row.base_violations }}</td>
{% endif %}
<td><ul>{% for e in row.expect %}<li>{{ e }}</li>{% endfor %}</ul></td>
<td><span class="{{ 'pass' if row.passed else 'fail' }}">{{ row.word }}</span>
{% if row.problems %}<ul>{% for p in row.problems %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
</td>
<td>{% for run in row.links %}<a class="run {{ run.css }}" href="{{ run.href }}"
title="{{ run.title }}">s{{ run.seed }} {{ run.word }}</a> {% endfor %}</td>
</tr>
{% endfor %}
</table>
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _violations(runs_caught: int, judged: int, errors: int) -> str:
    text = f"{runs_caught}/{judged} caught"
    return text + (f", {errors} error" if errors else "")


def _link(run_dir: str | None, index_dir: Path) -> str | None:
    if run_dir is None:
        return None
    target = Path(run_dir) / REPORT_NAME
    if not target.is_file():
        target = Path(run_dir) / "results.json"
    # Relative, with forward slashes: a link that survives moving the suite directory.
    return Path(os.path.relpath(target.resolve(), index_dir.resolve())).as_posix()


def _rows(verdicts: list[CaseVerdict], index_dir: Path) -> list[dict[str, Any]]:
    p99s = [
        ns
        for v in verdicts
        for ns in (v.figures.failover_p99_ns, v.baseline and v.baseline.failover_p99_ns)
        if ns
    ]
    scale = 120 / max(p99s) if p99s else 0.0  # the widest bar is 120 px

    def bar(ns: int | None) -> int:
        return round((ns or 0) * scale)

    rows = []
    for v in verdicts:
        f, base = v.figures, v.baseline
        links = []
        for rec in v.records:
            href = _link(rec.run_dir, index_dir)
            if href is None:
                continue
            word = "error" if not rec.ok else ("caught" if rec.caught else "valid")
            title = rec.error or ", ".join(sorted(set(rec.violation_kinds))) or "valid"
            css = {"error": "error", "caught": "caught"}.get(word, "")
            links.append({"seed": rec.seed, "href": href, "word": word, "title": title, "css": css})
        rows.append(
            {
                "name": v.case.name,
                "target": v.case.run.target,
                "faults": "+".join(v.case.run.nemeses),
                "runs": f.runs,
                "violations": _violations(f.runs_caught, f.runs_judged, f.runs_error),
                "kinds": ", ".join(f"{k} x{n}" for k, n in f.kinds.items()),
                "p50": seconds(f.failover_p50_ns),
                "p99": seconds(f.failover_p99_ns),
                "p99_bar": bar(f.failover_p99_ns),
                "leaderless": _pct(f.leaderless_pct),
                "elections": "-" if f.elections_max is None else str(f.elections_max),
                "base_p99": seconds(base.failover_p99_ns) if base else "no baseline",
                "base_p99_bar": bar(base.failover_p99_ns) if base else None,
                "base_leaderless": _pct(base.leaderless_pct) if base else "-",
                "base_violations": (
                    _violations(base.runs_caught, base.runs_judged, base.runs_error)
                    if base
                    else "-"
                ),
                "expect": v.case.expect.describe(),
                "passed": v.passed,
                "word": verdict_word(v),
                "problems": v.failures + [f"regressed: {r}" for r in v.regressions],
                "links": links,
            }
        )
    return rows


def verdict_word(v: CaseVerdict) -> str:
    if v.passed:
        return "PASS"
    if v.failures and v.regressions:
        return "FAIL, REGRESSED"
    return "FAIL" if v.failures else "REGRESSED"


def render_index(
    suite: Suite,
    verdicts: list[CaseVerdict],
    index_dir: Path,
    *,
    baseline_dir: str | None = None,
    interrupted: str | None = None,
) -> str:
    return _ENV.from_string(_TEMPLATE).render(
        suite=suite,
        rows=_rows(verdicts, index_dir),
        passed=bool(verdicts) and all(v.passed for v in verdicts) and not interrupted,
        baseline_dir=baseline_dir,
        interrupted=interrupted,
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


def write_index(
    directory: Path,
    suite: Suite,
    verdicts: list[CaseVerdict],
    *,
    baseline_dir: str | None = None,
    interrupted: str | None = None,
) -> Path:
    path = directory / INDEX_NAME
    html = render_index(
        suite, verdicts, directory, baseline_dir=baseline_dir, interrupted=interrupted
    )
    write_atomic(path, html)
    return path
