"""One history event, its field rules, and the error that reports malformed input.

Field validation follows docs/HISTORY.md ("Event fields"): required `time` (integer),
`process` (string or integer), `type` (invoke/ok/fail/info) and `f` (string); optional
`value` (object or null), `node` (string), `index` (integer) and `election` (string,
default "leader"). JSON booleans are not integers here, and 1.0 is not an integer.
Times must lie within +-2**62 ns (146 years): differences of two times, which the checker's
statistics hold, then still fit the 64-bit integers JSON writers (orjson) accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

EVENT_TYPES = frozenset({"invoke", "ok", "fail", "info"})
COMPLETION_TYPES = frozenset({"ok", "fail", "info"})
DEFAULT_ELECTION = "leader"
NEMESIS = "nemesis"
TIME_LIMIT = 1 << 62  # |time| < TIME_LIMIT: see the module docstring
_MIN_TIME = -TIME_LIMIT  # a constant, not a negation (and a new integer) per event

Process = str | int


@dataclass(frozen=True)
class Problem:
    """What is wrong with one line of input."""

    line: int | None  # 1-based file line; None when the event did not come from a file
    message: str
    source: str | None = None  # file name, when known

    def __str__(self) -> str:
        where = self.source or "history"
        return f"{where}:{self.line}: {self.message}" if self.line else f"{where}: {self.message}"


class HistoryError(HarnessError):
    """The history could not be read at all (missing file, unreadable gzip...)."""


class MalformedHistory(HistoryError):
    """The history breaks the format; carries every problem found, in line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"malformed history ({len(problems)} problem(s)):\n{shown}{more}")


class Event:
    """A validated event. `line` is its 1-based line in the file it came from (0 if none)."""

    __slots__ = ("election", "f", "index", "line", "node", "process", "time", "type", "value")

    def __init__(
        self,
        time: int,
        process: Process,
        type: str,
        f: str,
        value: dict[str, Any] | None = None,
        node: str | None = None,
        index: int | None = None,
        election: str = DEFAULT_ELECTION,
        line: int = 0,
    ) -> None:
        self.time = time
        self.process = process
        self.type = type
        self.f = f
        self.value = value
        self.node = node
        self.index = index
        self.election = election
        self.line = line

    @classmethod
    def from_dict(cls, obj: Any, line: int = 0) -> Event:
        """Validate one decoded JSON value; raises ValueError saying what is wrong."""
        # Fast path for well-formed events (a million of them must check in seconds);
        # anything else goes through the field-by-field checks that explain the problem.
        try:  # subscripts are cheaper than .get(); a non-object raises TypeError
            time = obj["time"]
            process = obj["process"]
            etype = obj["type"]
            f = obj["f"]
        except (KeyError, TypeError):
            return cls._checked(obj, line)
        if len(obj) == 4:  # no optional field (a list would have raised above)
            value = node = index = None
            election = DEFAULT_ELECTION
        else:
            get = obj.get
            value = get("value")
            node = get("node")
            index = get("index")
            election = get("election", DEFAULT_ELECTION)
        kind = type(process)
        if (
            type(time) is int
            and _MIN_TIME < time < TIME_LIMIT
            and (kind is str or kind is int)
            and etype in EVENT_TYPES
            and type(f) is str
            and (value is None or type(value) is dict)
            and (node is None or type(node) is str)
            and (index is None or type(index) is int)
            and type(election) is str
        ):
            return cls(time, process, etype, f, value, node, index, election, line)
        return cls._checked(obj, line)

    @classmethod
    def _checked(cls, obj: Any, line: int) -> Event:
        if type(obj) is not dict:
            raise ValueError(f"expected a JSON object, got {_json_type(obj)}")
        time = obj.get("time", _MISSING)
        if type(time) is not int:
            raise ValueError(_field_error("time", time, "an integer (nanoseconds)"))
        if not -TIME_LIMIT < time < TIME_LIMIT:
            raise ValueError(
                f"field 'time' must lie within +-2**62 ns (146 years), got {_short(time)}"
            )
        process = obj.get("process", _MISSING)
        if type(process) is not str and type(process) is not int:
            raise ValueError(_field_error("process", process, "a string or an integer"))
        etype = obj.get("type", _MISSING)
        if etype not in EVENT_TYPES:
            raise ValueError(_field_error("type", etype, 'one of "invoke", "ok", "fail", "info"'))
        f = obj.get("f", _MISSING)
        if type(f) is not str:
            raise ValueError(_field_error("f", f, "a string"))
        value = obj.get("value")
        if value is not None and type(value) is not dict:
            raise ValueError(_field_error("value", value, "an object or null"))
        node = obj.get("node")
        if node is not None and type(node) is not str:
            raise ValueError(_field_error("node", node, "a string"))
        index = obj.get("index")
        if index is not None and type(index) is not int:
            raise ValueError(_field_error("index", index, "an integer"))
        election = obj.get("election", DEFAULT_ELECTION)
        if type(election) is not str:
            raise ValueError(_field_error("election", election, "a string"))
        return cls(time, process, etype, f, value, node, index, election, line)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.node is not None:
            out["node"] = self.node
        if self.index is not None:
            out["index"] = self.index
        if self.election != DEFAULT_ELECTION:
            out["election"] = self.election
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __hash__(self) -> int:
        return hash((self.time, self.process, self.type, self.f, self.line))

    def __repr__(self) -> str:
        return f"Event({self.to_dict()!r}, line={self.line})"


_MISSING: Any = object()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _field_error(name: str, value: Any, expected: str) -> str:
    if value is _MISSING:
        return f"missing required field {name!r} (expected {expected})"
    return f"field {name!r} must be {expected}, got {_json_type(value)} {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
