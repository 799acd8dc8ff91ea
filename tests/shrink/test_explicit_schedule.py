"""Explicit schedules: the list form, its validation, the round trip through a run
configuration and results.json, `run --replay`'s loading, and node-name targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from harness.cli import main
from harness.nemesis import make_nemeses
from harness.nemesis._common import choose_nodes
from harness.nemesis.base import FaultPlan
from harness.nemesis.explicit import (
    describe,
    parse_fault_list,
    plan_to_entry,
    plans_to_entries,
)
from harness.nemesis.schedule import make_schedule
from harness.run.runner import explicit_plans
from harness.runconfig import ConfigError, parse_run_config
from harness.shrink.source import load_run

PAUSE = {"kind": "pause", "mode": "candidate", "target": "holder", "at_s": 3.0, "duration_s": 4.1}


def test_seeded_schedules_round_trip_through_the_list_form() -> None:
    nemeses = make_nemeses(["partition", "pause", "kill", "clock"], {})
    plans = make_schedule(nemeses, 5, 60.0)
    assert plans
    again = parse_fault_list(plans_to_entries(plans), "schedule", 60.0)
    assert again == plans


def test_a_list_in_a_configuration_becomes_the_runs_plans() -> None:
    cfg = parse_run_config(
        {"time_limit": 10, "nemesis": {"schedule": [PAUSE, {**PAUSE, "target": "n2", "at_s": 1}]}},
        "x.yaml",
    )
    assert cfg.nemeses == ("pause",)
    assert cfg.plans is not None
    assert [p.at_s for p in cfg.plans] == [1.0, 3.0]  # start order
    assert cfg.plans[1] == FaultPlan("pause", "candidate", 3.0, 4.1, 0, {"target": "holder"})
    # to_dict writes the same list back
    data = cfg.to_dict()
    assert data["nemesis"]["schedule"][1] == {**PAUSE, "pick": 0}
    assert parse_run_config(data, "again.yaml").plans == cfg.plans


def test_an_empty_list_means_no_faults() -> None:
    cfg = parse_run_config({"nemesis": {"schedule": []}}, "x.yaml")
    assert cfg.plans == [] and cfg.nemeses == ("none",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**PAUSE, "kind": "flood"}, r"x.yaml: key 'nemesis.schedule'\[0\].kind: expected one of"),
        ({**PAUSE, "mode": "halves"}, r"\[0\].mode: pause modes are member, candidate, both"),
        ({**PAUSE, "target": "boss"}, r"\[0\].target: expected one of .* or a node name"),
        ({**PAUSE, "duration_s": 0}, r"\[0\].duration_s: expected a number of seconds > 0"),
        ({**PAUSE, "at_s": -1}, r"\[0\].at_s: expected a number of seconds >= 0"),
        ({**PAUSE, "when": 3}, r"\[0\]: unknown key 'when'"),
        ({"kind": "pause", "mode": "member", "at_s": 1}, r"\[0\]: missing key 'duration_s'"),
        (
            {"kind": "partition", "mode": "leader", "target": "n1", "at_s": 1, "duration_s": 2},
            r"\[0\].target: a partition has no target",
        ),
        (
            {"kind": "clock", "mode": "rate", "at_s": 1, "duration_s": 2},
            r"\[0\].params: clock rate needs rate",
        ),
        (
            {"kind": "clock", "mode": "bump", "at_s": 1, "duration_s": 2, "params": {"x": 1}},
            r"\[0\].params: unknown key 'x'",
        ),
        ({**PAUSE, "at_s": 8.0}, r"\[0\]: the pause fault ends at 12.1 s, after the time limit"),
        ({**PAUSE, "pick": -3}, r"\[0\].pick: expected an integer >= 0"),
    ],
)
def test_bad_entries_name_the_entry_the_key_and_what_was_expected(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_run_config({"time_limit": 10, "nemesis": {"schedule": [entry]}}, "x.yaml")


def test_faults_must_name_every_kind_the_list_uses() -> None:
    with pytest.raises(ConfigError, match=r"'nemesis.faults': the explicit schedule uses pause"):
        parse_run_config({"nemesis": {"faults": ["kill"], "schedule": [PAUSE]}}, "x.yaml")
    cfg = parse_run_config({"nemesis": {"faults": ["kill", "pause"], "schedule": [PAUSE]}}, "x")
    assert cfg.nemeses == ("kill", "pause")


def test_command_line_changes_are_checked_against_the_list() -> None:
    cfg = parse_run_config({"nemesis": {"schedule": [{**PAUSE, "target": "n5"}]}}, "x.yaml")
    with pytest.raises(ValueError, match=r"target: n5, but the run has 3 nodes"):
        explicit_plans(cfg, ["pause"])
    cfg = parse_run_config({"nemesis": {"schedule": [PAUSE]}}, "x.yaml")
    with pytest.raises(ValueError, match=r"a pause fault, but the run's nemeses are kill"):
        explicit_plans(cfg, ["kill"])
    cfg.time_limit = 5
    with pytest.raises(ValueError, match=r"ends at 7.1 s, after the time limit \(5 s\)"):
        explicit_plans(cfg, ["pause"])


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name


class _Cluster:
    nodes = (_Node("n1"), _Node("n2"), _Node("n3"))

    def leader(self) -> None:
        return None

    def holder(self) -> None:
        return None


def test_a_node_name_target_chooses_that_node() -> None:
    nodes, note = choose_nodes(_Cluster(), "n2", 0)  # type: ignore[arg-type]
    assert [n.name for n in nodes] == ["n2"] and note is None
    with pytest.raises(ValueError, match=r"unknown node target 'n7'.*\(n1, n2, n3\)"):
        choose_nodes(_Cluster(), "n7", 0)  # type: ignore[arg-type]


def test_describe_says_what_when_and_how_long() -> None:
    plan = parse_fault_list([PAUSE], "s")[0]
    assert describe(plan) == "pause holder's candidate 4.1 s at 3.0 s"
    clock = FaultPlan("clock", "rate", 2.0, 5.0, 0, {"target": "leader", "rate": 0.7})
    assert describe(clock) == "clock rate x0.7 on leader 5.0 s at 2.0 s"
    assert plan_to_entry(clock)["params"] == {"rate": 0.7}
    kill = FaultPlan("kill", "member", 3.0, 2.1, 0, {"target": "all"})
    assert describe(kill) == "kill member on every node 2.1 s at 3.0 s"


def _fake_run_dir(tmp_path: Path, schedule: list[dict[str, Any]]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = parse_run_config({"time_limit": 20, "nemesis": {"faults": ["pause", "kill"]}}, "c")
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump({**cfg.to_dict(), "run_id": "ab12", "backend": "local"})
    )
    results = {
        "schedule": schedule,
        "wall_s": 31.0,
        "verdict": {"valid": False, "violations": [{"kind": "split-brain"}]},
    }
    (run_dir / "results.json").write_bytes(orjson.dumps(results))
    return run_dir


def test_a_run_directory_loads_with_its_schedule(tmp_path: Path) -> None:
    legacy = {"nemesis": "kill", "mode": "member", "at_s": 9.0, "duration_s": 2.0, "pick": 4,
              "params": {"target": "all"}}  # fmt: skip
    run = load_run(_fake_run_dir(tmp_path, [PAUSE, legacy]))
    assert run.cfg.backend == "local" and run.cfg.time_limit == 20
    assert run.cfg.plans == [
        FaultPlan("pause", "candidate", 3.0, 4.1, 0, {"target": "holder"}),
        FaultPlan("kill", "member", 9.0, 2.0, 4, {"target": "all"}),
    ]
    assert run.violation_kinds() == ["split-brain"]


def test_load_run_refuses_what_is_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"config.yaml: missing"):
        load_run(tmp_path)


def test_replay_refuses_conflicting_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = _fake_run_dir(tmp_path, [PAUSE])
    assert main(["run", "--replay", str(run_dir), "--nemesis", "kill"]) == 2
    assert "--replay carries out the run's own schedule" in capsys.readouterr().err
    assert main(["run", "--replay", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_shrink_refuses_a_run_without_the_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir = _fake_run_dir(tmp_path, [PAUSE])
    assert main(["shrink", str(run_dir), "--kind", "stale-write", "--store", str(tmp_path)]) == 2
    assert "found no stale-write violation (it found split-brain)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["shrink", str(run_dir), "--budget", "soon"])
    assert exit_info.value.code == 2


def test_shrink_budget_option() -> None:
    from harness.shrink.cli import parse_budget

    assert parse_budget("20m") == 1200
    assert parse_budget("1h30m") == 5400
    assert parse_budget("90") == 90
    with pytest.raises(Exception, match="expected a duration"):
        parse_budget("soon")


def test_a_run_read_back_keeps_the_targets_candidate_defaults() -> None:
    # config.yaml records only the workload keys the configuration set: reading it back
    # must not turn every generic default into an explicit setting that would override
    # the target's own (etcd's lease margin, Consul's campaign timeout).
    cfg = parse_run_config({"target": "consul", "workload": {"discipline": "naive"}}, "x.yaml")
    again = parse_run_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "config.yaml")
    assert again.workload_explicit == {"discipline": "naive"}
    assert again.workload == cfg.workload
