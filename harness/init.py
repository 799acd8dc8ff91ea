"""`harness init`: a starter run configuration, suite and test in a team's repository.

Writes `leader-harness/run.yaml` (etcd, guarded candidates, fencing; with the keys that
put the team's own program under the harness, commented), `leader-harness/suite.yaml`
(that configuration valid under partition and pause) and
`tests/test_leader_harness.py` (a scenario test using the `harness_run` fixture). An
existing file is never overwritten: init stops before writing anything, naming it.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError

RUN_YAML = """\
# A run of etcd under faults (harness run --config leader-harness/run.yaml).
# Every key is optional; the command line wins. docs: the harness's README.
target: etcd
time_limit: 30
nemesis:
  faults: [partition, pause]
server:
  election: {name: harness-leader, lease_ttl_s: 2}
workload:
  discipline: guarded
  # Your own leader program instead of the harness's candidate (any language; the
  # protocol is in docs/CANDIDATE.md of the harness):
  # command: [python3, my_leader.py]
  # files: [../my_leader.py]            # relative to this file
  # requirements: [etcd3gw==2.7.0]      # installed for the nodes, cached
resource:
  fencing: true
"""

SUITE_YAML = """\
# harness suite leader-harness/suite.yaml   (or: pytest --suite leader-harness/suite.yaml)
name: our leader election
defaults: {time_limit: 20, runs: 3}
cases:
  - name: partition
    config: run.yaml
    nemesis: {faults: [partition]}
    expect: {valid: true}
  - name: pause
    config: run.yaml
    nemesis: {faults: [pause]}
    expect: {valid: true}
"""

TEST_PY = '''\
"""Leader election under faults: `pytest --target=etcd --nemesis=partition`.

Plain `pytest` skips scenario tests; giving --target or --nemesis runs them. A run that
could not run (no Docker, a bad configuration) is an ERROR saying why.
"""

import pytest


@pytest.mark.scenario
def test_leader_election_is_safe(harness_run):
    outcome = harness_run("../leader-harness/run.yaml")  # relative to this file
    assert outcome.verdict["valid"] is True, outcome.verdict["violations"]
'''

FILES = {
    Path("leader-harness/run.yaml"): RUN_YAML,
    Path("leader-harness/suite.yaml"): SUITE_YAML,
    Path("tests/test_leader_harness.py"): TEST_PY,
}


class InitError(HarnessError):
    """init would overwrite a file; nothing was written."""


def init(root: Path) -> list[Path]:
    """Write the starter files under `root`; returns them. Raises InitError, writing
    nothing, if any of them exists."""
    existing = [root / rel for rel in FILES if (root / rel).exists()]
    if existing:
        raise InitError(
            "harness init: would overwrite " + ", ".join(map(str, existing)) + "; nothing written"
        )
    written = []
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
