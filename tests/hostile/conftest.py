"""Hostile inputs must never start a run: creating a backend or carrying out a suite's
run fails loudly here (an AssertionError, which the harness would report as an internal
error, failing the case's expected first line)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run import runner
    from harness.suite import runner as suite_runner

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hostile input got as far as starting a run")

    monkeypatch.setattr(runner, "create_backend", refuse)
    monkeypatch.setattr(suite_runner, "execute_run", refuse)
