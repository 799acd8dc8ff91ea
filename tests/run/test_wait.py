"""wait_until: returns the predicate's first truthy value, or says what it waited for."""

from __future__ import annotations

import time

import pytest

from harness.errors import HarnessError
from harness.wait import WaitTimeout, wait_until


def test_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "n2", "n3"])
    assert wait_until(lambda: next(answers), 1.0, "a leader", interval=0.001) == "n2"


def test_timeout_says_what_and_how_long() -> None:
    calls = 0

    def never() -> bool:
        nonlocal calls
        calls += 1
        return False

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(never, 0.2, "daemon x on n1 to exit", interval=0.05)
    took = time.monotonic() - started
    assert str(info.value) == "timed out after 0.2 s waiting for daemon x on n1 to exit"
    assert info.value.what == "daemon x on n1 to exit" and info.value.timeout == 0.2
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, HarnessError)
    assert 0.2 <= took < 1.0
    assert calls >= 4  # polled through the wait, and once more at the deadline


def test_a_zero_timeout_is_one_look() -> None:
    calls: list[int] = []
    with pytest.raises(WaitTimeout):
        wait_until(lambda: calls.append(1), 0.0, "nothing")
    assert calls == [1]
    assert wait_until(lambda: 7, 0.0, "seven") == 7


def test_true_at_the_last_look_is_not_a_timeout() -> None:
    deadline = time.monotonic() + 0.1
    # Becomes true while the last sleep runs; the look at the deadline sees it.
    assert wait_until(lambda: time.monotonic() >= deadline, 0.1, "the deadline", interval=1.0)
