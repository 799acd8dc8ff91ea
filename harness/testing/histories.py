"""History builders: compact records to events in format v1 (docs/HISTORY.md), and checks."""

from __future__ import annotations

from typing import Any

import orjson

from harness.checker import Verdict, check
from harness.history import Event, parse_lines


def events(*records: dict[str, Any]) -> list[Event]:
    """The records, as the checker would read them from a file."""
    return parse_lines([orjson.dumps(r) for r in records])


def verdict(*records: dict[str, Any], tolerance_ns: int = 0, stale_grace_ns: int = 0) -> Verdict:
    """The checker's verdict on the records."""
    return check(events(*records), tolerance_ns=tolerance_ns, stale_grace_ns=stale_grace_ns)


def kinds(v: Verdict) -> list[str]:
    return [violation["kind"] for violation in v["violations"]]


def inv(t: int, p: Any, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return _event(t, p, "invoke", f, value, extra)


def ok(t: int, p: Any, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return _event(t, p, "ok", f, value, extra)


def fail(t: int, p: Any, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return _event(t, p, "fail", f, value, extra)


def info(t: int, p: Any, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return _event(t, p, "info", f, value, extra)


def acquired(t_invoke: int, t_ok: int, p: Any, token: int, **extra: Any) -> list[dict[str, Any]]:
    return [inv(t_invoke, p, "acquire", **extra), ok(t_ok, p, "acquire", {"token": token}, **extra)]


def status(t: int, node: str, leader: str | None, term: int, p: Any = "probe") -> dict[str, Any]:
    return ok(t, p, "status", {"node": node, "leader": leader, "term": term})


def _event(t: int, p: Any, etype: str, f: str, value: Any, extra: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"time": t, "process": p, "type": etype, "f": f}
    if value is not None:
        record["value"] = value
    record.update(extra)
    return record
