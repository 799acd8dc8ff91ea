"""Scenario runs of the reference elector: real clusters under the selected nemeses.

    pytest --target=reference --nemesis=partition      # or pause, kill, clock, all, ...

The safe configuration must come out valid under whatever faults are selected; each
unsafe configuration must be caught by the fault that exposes it (configs/detection/).
Detection is statistical (about 19 runs in 20), so an unsafe configuration gets up to
three seeded runs to be caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.options import RunOptions
from tests.scenarios.outcomes import assert_caught, describe, selected

pytestmark = [pytest.mark.scenario, pytest.mark.integration]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# nemesis -> the detection configuration whose bug that fault exposes
EXPOSED_BY = {
    "partition": "no-check-quorum-partition.yaml",
    "kill": "no-persist-kill.yaml",
    "clock": "zero-drift-clock.yaml",
}


@pytest.fixture
def reference_only(harness_options: RunOptions) -> RunOptions:
    if harness_options.target != "reference":
        pytest.skip("reference-elector scenarios: select with --target=reference")
    return harness_options


def test_safe_configuration_is_valid(harness_run: Any, reference_only: RunOptions) -> None:
    outcome = harness_run(CONFIGS / "reference" / "safe.yaml")
    assert outcome.error is None, describe(outcome)
    assert outcome.exit_code == 0, describe(outcome)
    assert outcome.verdict["valid"] is True, describe(outcome)
    assert outcome.verdict["stats"]["acquisitions"] > 0, "no candidate ever led"


@pytest.mark.parametrize("nemesis", sorted(EXPOSED_BY))
def test_unsafe_configuration_is_caught(
    harness_run: Any, reference_only: RunOptions, nemesis: str
) -> None:
    if nemesis not in selected(reference_only.nemeses):
        pytest.skip(f"exposed by --nemesis={nemesis} (or all)")
    config = CONFIGS / "detection" / EXPOSED_BY[nemesis]
    # The detection configuration names its own faults; only the seed varies.
    assert_caught(harness_run, config, reference_only.seed)
