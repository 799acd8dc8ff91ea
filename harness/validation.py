"""Reading typed values out of parsed input, with errors that say where and what.

Every reader of configuration (run files, suites, the reference elector's file, a
target's `server:` settings, the workload's and the nemeses' settings) goes through a
`Reader`: it wraps one mapping, knows where it came from (`source`: a file name, or
"file: case 2 ('name')") and its key path (`prefix`: "server.lock."), and raises one
error class (`ConfigError` unless told otherwise) with one line:

    run.yaml: key 'nemesis.schedule.gap_s[1]': expected a number from 1 to 86400, got 0.5
    run.yaml: unknown key 'nodez'; expected one of backend, check, nemesis, ...

Every value echoed in a message is cut short (`echo`): input can be a whole file read
by mistake (`server: /etc/passwd`), and CI logs are public. A whole document that is
not a mapping is described by its type only, never by its content.

`deep_merge` is the one layering rule for configuration mappings (suite defaults under a
case, a target's extra settings over its generated ones).

Standard library only: the reference elector on a node uses it too.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.errors import ConfigError

ECHO_CHARS = 60  # the most of a value's repr an error message shows


class _Echo(reprlib.Repr):
    """repr() that stops early on big or deep values (reprlib), so a huge value costs
    nothing to describe."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = ECHO_CHARS
        self.maxother = ECHO_CHARS
        self.maxlong = ECHO_CHARS
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 8


_ECHO = _Echo()


def echo(value: Any) -> str:
    """A value's repr for an error message, at most ECHO_CHARS characters."""
    try:
        text = _ECHO.repr(value)
    except Exception:  # a value whose repr fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return cut(text)


def cut(text: str, limit: int = ECHO_CHARS) -> str:
    """Text for an error message (a parser's complaint, a name), at most `limit` chars."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
    """A value described by its type only ("a list", "a string"), for whole documents."""
    names = {
        str: "a string", list: "a list", dict: "a mapping", int: "an integer",
        float: "a number", bool: "a boolean", bytes: "binary data",
    }  # fmt: skip
    if value is None:
        return "nothing (empty)"
    return names.get(type(value), f"a {type(value).__name__}")


def is_number(value: Any) -> bool:
    """An int or float, not a bool (YAML's `true` is not 1 here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def num(x: float) -> str:
    """A bound for a message: 3600000, not 3.6e+06; 0.05, not 0.05000000000000000277."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def one_of(names: Iterable[Any]) -> str:
    """'a, b, c' for "expected one of ..."."""
    return ", ".join(str(n) for n in names)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: mappings merge key by key (recursively), any other value
    in `over` replaces. Neither argument is changed."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_UNSET: Any = object()


class Reader:
    """Typed reads of one mapping of settings; errors name `source` and the full key.

    `data` None means an empty mapping (an empty YAML section). Each typed read takes the
    key and the default used when the key is absent; `value=` checks a value that is not
    in the mapping (a list item) under the given key.
    """

    def __init__(
        self,
        data: Any,
        source: str,
        prefix: str = "",
        *,
        error: type[ConfigError] = ConfigError,
        expected: str = "a mapping",
    ) -> None:
        self.source = source
        self.prefix = prefix
        self.error = error
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            if prefix:
                raise self.fail_path(prefix.rstrip("."), expected, data)
            # A whole document: name its type, never its content (it may be any file).
            raise error(f"{source}: expected {expected} at the top level, got {kind_of(data)}")
        self.data: dict[str, Any] = dict(data)

    # --- errors -----------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The full key path of `key` ("server.lock.key"); "" names the mapping itself."""
        return f"{self.prefix}{key}" if key else self.prefix.rstrip(".")

    def fail_path(self, path: str, expected: str, got: Any) -> ConfigError:
        return self.error(f"{self.source}: key '{path}': expected {expected}, got {echo(got)}")

    def fail(self, key: str, expected: str, got: Any) -> ConfigError:
        """The error for a value at `key` that is not what was `expected`."""
        return self.fail_path(self.path(key), expected, got)

    def problem(self, key: str, message: str) -> ConfigError:
        """An error about `key` that is not a type mismatch ("give either a or b")."""
        return self.error(f"{self.source}: key '{self.path(key)}': {message}")

    # --- structure --------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def only(self, allowed: Iterable[str] | Mapping[str, str]) -> None:
        """Refuse a key not in `allowed`; a mapping of names to descriptions is listed
        with the descriptions ("modes (a list of ...); targets (...)")."""
        names = list(allowed)
        for key in self.data:
            if key not in names:
                if isinstance(allowed, Mapping):
                    expected = "; ".join(f"{self.path(k)} ({allowed[k]})" for k in names)
                else:
                    expected = one_of(self.path(k) for k in sorted(names))
                raise self.error(
                    f"{self.source}: unknown key {echo(self.path(str(key)))}; "
                    f"expected one of {expected or '(no keys)'}"
                )

    def section(self, key: str, expected: str = "a mapping") -> Reader:
        """A Reader over the mapping at `key` (absent or empty: an empty one)."""
        return Reader(
            self.data.get(key), self.source, f"{self.prefix}{key}.",
            error=self.error, expected=expected,
        )  # fmt: skip

    def mapping(self, key: str, expected: str = "a mapping") -> dict[str, Any]:
        return self.section(key, expected).data

    # --- typed values -----------------------------------------------------------------

    def _value(self, key: str, default: Any, value: Any) -> Any:
        return self.data.get(key, default) if value is _UNSET else value

    def integer(self, key: str, default: Any, low: int, high: int, *, value: Any = _UNSET) -> int:
        value = self._value(key, default, value)
        if not is_integer(value) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}", value)
        return int(value)

    def number(
        self,
        key: str,
        default: Any,
        low: float,
        high: float,
        *,
        above_low: bool = False,
        value: Any = _UNSET,
    ) -> float:
        """A number in [low, high], or (low, high] with `above_low`."""
        value = self._value(key, default, value)
        in_range = is_number(value) and (low < value <= high if above_low else low <= value <= high)
        if not in_range:
            expected = (
                f"a number in ({num(low)}, {num(high)}]"
                if above_low
                else f"a number from {num(low)} to {num(high)}"
            )
            raise self.fail(key, expected, value)
        return float(value)

    def boolean(self, key: str, default: Any, *, value: Any = _UNSET) -> bool:
        value = self._value(key, default, value)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def choice(self, key: str, default: Any, choices: Sequence[str], *, value: Any = _UNSET) -> str:
        """One of `choices`; a number counts as its text (YAML reads `version: 3.5` as a
        number), but the error echoes what was given."""
        value = self._value(key, default, value)
        text = str(value) if is_number(value) else value
        if not isinstance(text, str) or text not in choices:
            raise self.fail(key, f"one of {one_of(choices)}", value)
        return text

    def text(self, key: str, default: Any, *, value: Any = _UNSET) -> str:
        """A non-empty string without whitespace (a name, a key)."""
        value = self._value(key, default, value)
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.fail(key, "a non-empty string without spaces", value)
        return value

    def strings(self, key: str, default: Any = (), *, value: Any = _UNSET) -> list[str]:
        value = self._value(key, list(default), value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings", value)
        return list(value)

    def pair(
        self,
        key: str,
        default: Any,
        low: float,
        high: float,
        *,
        what: str = "[min, max] seconds",
        value: Any = _UNSET,
    ) -> tuple[float, float]:
        """[min, max] with low <= min <= max <= high; each item is named `key[i]`."""
        value = self._value(key, default, value)
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise self.fail(key, what, value)
        first = self.number(f"{key}[0]", None, low, high, value=value[0])
        second = self.number(f"{key}[1]", None, first, high, value=value[1])
        return (first, second)

    def subset(
        self, key: str, default: Any, allowed: Sequence[str], *, value: Any = _UNSET
    ) -> tuple[str, ...]:
        """A non-empty list of names from `allowed` (a bare string is one name), in
        `allowed`'s order, so that results do not depend on how the user wrote them."""
        value = self._value(key, default, value)
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list | tuple)
            or not items
            or any(not isinstance(v, str) or v not in allowed for v in items)
        ):
            raise self.fail(key, f"a non-empty list of {one_of(allowed)}", value)
        return tuple(a for a in allowed if a in items)


__all__ = [
    "ECHO_CHARS",
    "ConfigError",
    "Reader",
    "cut",
    "deep_merge",
    "echo",
    "is_integer",
    "is_number",
    "kind_of",
    "num",
    "one_of",
]
