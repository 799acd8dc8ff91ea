"""Repository-level pytest configuration.

The harness's pytest plugin is registered by the installed package's `pytest11` entry
point; registering it here as well would load it twice, so this file only checks that
the package is installed.
"""

import importlib.metadata

try:
    importlib.metadata.distribution("leader-harness")
except importlib.metadata.PackageNotFoundError as exc:  # pragma: no cover - setup error
    raise SystemExit(
        "leader-harness is not installed: run `pip install -e '.[dev]'` first"
    ) from exc

# pytester runs pytest in a scratch directory, as a user's project would.
pytest_plugins = ["pytester"]

# Hypothesis: CI machines are small and shared (two cores, real clusters running beside
# the unit tests), so generation speed and per-example time are no signal here.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "harness", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("harness")
