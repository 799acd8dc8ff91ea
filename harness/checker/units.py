"""Times for people: instants as seconds from the run's start, durations in s, ms or ns.

A history's `time` is nanoseconds since the run began, so an instant in seconds is
simply `time / 1e9`; it is computed with integers so that every digit is right however
large the time, and keeps the nanoseconds when they are not zero (`0.000000002 s`), so a
hand-written history with tiny times still reads exactly.
"""

from __future__ import annotations


def seconds(ns: int) -> str:
    """An instant: 3397000000 -> '3.397 s', 10 -> '0.00000001 s', -5 -> '-0.000000005 s'."""
    sign = "-" if ns < 0 else ""
    whole, frac = divmod(abs(ns), 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0").ljust(3, "0")
    return f"{sign}{whole}.{digits} s"


def duration(ns: int | None) -> str:
    """A length of time: seconds when large, milliseconds, nanoseconds when tiny."""
    if ns is None:
        return "-"
    if abs(ns) >= 1_000_000:
        return f"{ns / 1e9:.3f} s"
    if abs(ns) >= 1_000:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns} ns"
