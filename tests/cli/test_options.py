"""The option names (harness.options) agree with the registries that serve them, so
that every name `--target`, `--backend` or `--nemesis` accepts can be built and every
registered target and backend can be asked for by name."""

from __future__ import annotations

from harness import options
from harness.backends import BACKENDS
from harness.targets import TARGETS


def test_target_registry_matches_option_names() -> None:
    from harness.targets import all_targets

    # Built-ins, plus whatever installed packages register (examples/harness-target-etcd34
    # stays installed after .ci/run has run the examples).
    assert set(all_targets()) == set(options.TARGETS)
    assert set(TARGETS) <= set(options.TARGETS)
    for name, cls in TARGETS.items():
        assert getattr(cls, "name", None) == name, cls


def test_backend_registry_matches_option_names() -> None:
    # `auto` is not a backend: it chooses one of the registered ones at run time.
    assert set(BACKENDS) == set(options.BACKENDS) - {"auto"}
    for name, cls in BACKENDS.items():
        assert getattr(cls, "name", None) == name, cls
