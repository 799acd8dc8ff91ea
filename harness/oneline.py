"""One line of text for a terminal or a CI log, from anything: a message, a value, a name.

Input-derived text (file content, YAML values, process names in a history) reaches error
messages; it must not span lines, carry terminal escapes, or print a whole file.
"""

from __future__ import annotations

import sys

MAX_CHARS = 300
ERROR_CHARS = 600  # an error line: the problem, the key, what was expected


def one_line(text: object, limit: int = MAX_CHARS) -> str:
    """`text` on one line: control characters (newlines, ESC, ...) shown as escapes, and at
    most `limit` characters, the cut marked with an ellipsis."""
    raw = str(text)
    if len(raw) > 4 * limit:  # never escape megabytes only to throw them away
        raw = raw[: 4 * limit]
    out = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in raw
    )
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


def error_line(command: str, message: object) -> None:
    """Print `command: message` to stderr as one line (the form of every input error)."""
    print(f"{command}: {one_line(message, ERROR_CHARS)}", file=sys.stderr)
