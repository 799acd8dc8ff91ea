"""Test doubles for the harness's seams, for its own tests and for plugin authors.

    from harness.testing import FakeBackend, FakeTarget, Journal    # a run without nodes
    from harness.testing import FakeCluster                          # a nemesis alone
    from harness.testing import FakeRuns                             # a suite without runs
    from harness.testing import histories                            # events from records

- `fakes`: a `Backend`, its `Daemon`s and a `Target` that create nothing and journal
  every call, so a test can assert what a run made and that it undid all of it.
- `nemesis`: a `Cluster` (the protocol nemeses act through) over a backend that records
  every command run on a node.
- `suite`: `FakeRuns`, a stand-in for `harness.suite.runner.execute_run`, and `verdict`.
- `histories`: compact builders of history events (`inv`, `ok`, `info`, `status`,
  `acquired`) and a `verdict` of them.
"""

from harness.testing import histories
from harness.testing.fakes import FakeBackend, FakeDaemon, FakeTarget, Journal
from harness.testing.nemesis import FakeCluster
from harness.testing.suite import FakeRuns

__all__ = [
    "FakeBackend",
    "FakeCluster",
    "FakeDaemon",
    "FakeRuns",
    "FakeTarget",
    "Journal",
    "histories",
]
