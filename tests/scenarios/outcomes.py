"""What the scenario tests share: describing a run's outcome, and trying an unsafe setup
over a few seeds until it is caught (detection is statistical, about 19 runs in 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ATTEMPTS = 3


def selected(nemeses: tuple[str, ...]) -> set[str]:
    """The nemeses a scenario run selected: `all` means every registered one."""
    from harness.nemesis import all_nemeses

    return set(all_nemeses()) if "all" in nemeses else set(nemeses)


def describe(outcome: Any) -> str:
    if outcome.verdict is None:
        return f"no verdict ({outcome.error}); run directory {outcome.run_dir}"
    kinds = [v["kind"] for v in outcome.verdict["violations"]]
    valid = outcome.verdict["valid"]
    return f"valid={valid} violations={kinds} error={outcome.error} in {outcome.run_dir}"


def assert_caught(harness_run: Any, config: Path, seed: int, **overrides: Any) -> None:
    """Run `config` (its own faults: `nemeses=None`) with seeds `seed`, `seed + 1`, ...
    until a run finds a violation; fail if none of ATTEMPTS runs does."""
    tried = []
    for attempt in range(ATTEMPTS):
        outcome = harness_run(config, nemeses=None, seed=seed + attempt, **overrides)
        tried.append(describe(outcome))
        assert outcome.error is None, describe(outcome)
        if outcome.exit_code == 1:
            assert outcome.verdict["valid"] is False
            return
    pytest.fail(f"{config.name} was not caught in {ATTEMPTS} runs:\n" + "\n".join(tried))
