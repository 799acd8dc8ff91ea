"""The report's model -> one self-contained HTML file (inline CSS, JS and SVG; fetches nothing).

The summary and the violation list are rendered here by Jinja with autoescaping; the
timeline is drawn in the browser from the model, embedded as JSON in a
`<script type="application/json">` block. `<`, `>` and `&` in that JSON are written as
\\u003c, \\u003e and \\u0026, so no string from a history (a process named
`</script><script>...`) can end the block; the page's script puts history strings into
the page with textContent and setAttribute only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup

from harness.checker import Verdict
from harness.checker.units import duration
from harness.history.events import Event
from harness.reports.timeline import Model, build_model
from harness.safefile import write_atomic

MAX_LISTED_VIOLATIONS = 500  # past this the list stops; every one is still on the timeline


def embed_json(data: Any) -> Markup:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` characters at all."""
    raw = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    raw = raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
    return Markup(raw.decode())


def _asset(name: str) -> Markup:
    # Our own CSS and JS, inlined as they are (they are not history data).
    return Markup((resources.files("harness.reports") / "templates" / name).read_text())


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["ns"] = duration
_env.filters["json"] = lambda value: orjson.dumps(value).decode()


def render_html(model: Model) -> str:
    """The whole report page for `model` (see reports.timeline.build_model)."""
    stats = model["stats"]
    span = stats.get("span_ns") or 0
    counts: dict[str, int] = {}
    for v in model["violations"]:
        counts[v["kind"]] = counts.get(v["kind"], 0) + 1
    title = os.path.basename(model["source"]) if model["source"] else "history"
    return _env.get_template("report.html.j2").render(
        title=title,
        model=model,
        stats=stats,
        failover=stats.get("failover_ns", {}),
        leaderless_pct=(100 * stats.get("leaderless_ns", 0) / span) if span else 0.0,
        counts=counts,
        listed=model["violations"][:MAX_LISTED_VIOLATIONS],
        unlisted=max(0, len(model["violations"]) - MAX_LISTED_VIOLATIONS),
        data=embed_json(model),
        style=_asset("report.css"),
        script=_asset("report.js"),
    )


def write_report(
    events: Sequence[Event],
    verdict: Verdict,
    out: str | os.PathLike[str],
    *,
    source: str | None = None,
    run: Mapping[str, Any] | None = None,
) -> Path:
    """Build and write the report of `events` judged by `verdict`; returns its path."""
    path = Path(out)
    html = render_html(build_model(events, verdict, source=source, run=run))
    write_atomic(path, html)  # a reader never sees half a report; never through a link
    return path
