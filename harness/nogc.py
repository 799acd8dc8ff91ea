"""Pausing Python's cyclic garbage collector around bulk work on many small objects.

Reading and checking a history creates millions of dicts and events that hold no
reference cycles; with the collector on, each generation threshold triggers a rescan
of everything alive, which triples the time to check a million-event history.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
