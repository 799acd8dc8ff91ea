"""Helpers for tests: build histories from compact records and check them."""

from __future__ import annotations

from typing import Any

import orjson

from harness.checker import Verdict, check
from harness.history import Event, parse_lines


def events(*records: dict[str, Any]) -> list[Event]:
    return parse_lines([orjson.dumps(r) for r in records])


def verdict(*records: dict[str, Any], **settings: int) -> Verdict:
    return check(events(*records), **settings)


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
