"""`--nemesis all` and the runner's default durations and time limit: every registered
nemesis the cluster supports, a refused one listed once; explicit settings win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import options
from harness.nemesis import all_nemeses, make_nemeses
from harness.nemesis.base import NemesisRefused
from harness.plugins import NEMESIS_GROUP, register, unregister
from harness.run.progress import RunStatus
from harness.run.runner import Runner, _Prepared
from harness.runconfig import RunConfig, Schedule, load_run_config
from harness.targets.consul import ConsulTarget
from harness.targets.reference import ReferenceTarget
from harness.testing.nemesis import FakeBackend, FakeCluster


class Notes:
    """A Progress that keeps what the runner said."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase(self, status: RunStatus, name: str) -> None:
        pass

    def fault(self, status: RunStatus, text: str) -> None:
        self.lines.append(text)


def test_all_is_an_option_alone() -> None:
    assert options.parse_nemeses("all") == ("all",)
    assert "all" in options.nemesis_names()
    with pytest.raises(options.OptionError, match="'all' cannot be combined"):
        options.parse_nemeses("all,pause")


def test_all_in_a_run_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("nemesis: {faults: [all], kill: {weights: {all: 5}}}\n")
    cfg = load_run_config(path)
    assert cfg.nemeses == ("all",)
    path.write_text("nemesis: {all: {}}\n")  # "all" is no nemesis to carry settings
    with pytest.raises(ValueError, match=r"nemesis\.all"):
        load_run_config(path)


def _prepared(names: list[str], settings: dict[str, Any], every: bool) -> _Prepared:
    nemeses = make_nemeses(names, settings)
    from harness.nemesis.schedule import make_schedule

    plans = make_schedule(nemeses, 5020, 120.0)
    return _Prepared("local", "test", ReferenceTarget(), nemeses, plans, FakeBackend(), every)


def test_all_keeps_what_the_cluster_supports_and_lists_the_rest(tmp_path: Path) -> None:
    notes = Notes()
    runner = Runner(RunConfig(nemeses=("all",)), store=tmp_path, progress=notes)
    prepared = _prepared(list(all_nemeses()), {"clock": {"processes": "both"}}, every=True)
    # One node without a member clock: partition (needs 3) and clock (members) refuse.
    runner._admit_nemeses(FakeCluster(n=1, member_clock=False), prepared)  # type: ignore[arg-type]
    assert runner.nemesis_names == ["pause", "kill"]
    assert {n.name for n in prepared.nemeses} == {"pause", "kill"}
    assert {p.nemesis for p in prepared.plans} == {"pause", "kill"}
    assert runner.plans == prepared.plans
    # Every other registered nemesis (lossy needs links between nodes too) is left out.
    assert set(runner.refused) == set(all_nemeses()) - {"pause", "kill"}
    assert {"partition", "clock"} <= set(runner.refused)
    left_out = [line for line in notes.lines if line.startswith("nemesis all: left out")]
    assert len(left_out) == len(runner.refused)
    assert any("needs at least 3 nodes" in x for x in left_out)
    results = runner._results(_outcome(), None)
    assert results["nemeses"] == ["pause", "kill"]  # the real fault kinds
    assert results["nemesis_choice"] == "all"
    assert set(results["nemeses_left_out"]) == set(runner.refused)


def test_a_named_nemesis_that_refuses_stops_the_run(tmp_path: Path) -> None:
    runner = Runner(RunConfig(nemeses=("partition",)), store=tmp_path, progress=Notes())
    with pytest.raises(NemesisRefused, match="needs at least 3 nodes"):
        runner._admit_nemeses(FakeCluster(n=1), _prepared(["partition"], {}, every=False))  # type: ignore[arg-type]


def test_all_picks_up_a_plugin_nemesis(tmp_path: Path) -> None:
    from harness.nemesis.pause import PauseNemesis

    class Freeze(PauseNemesis):
        name = "freeze"

    register(NEMESIS_GROUP, "freeze", Freeze)
    try:
        cfg = RunConfig(nemeses=("all",), backend="local", time_limit=60.0, time_limit_set=True)
        runner = Runner(cfg, store=tmp_path, progress=Notes())
        runner_prepare = runner._prepare()
        assert "freeze" in [n.name for n in runner_prepare.nemeses]
        assert {p.nemesis for p in runner_prepare.plans} >= {"freeze", "partition", "kill"}
    finally:
        unregister(NEMESIS_GROUP, "freeze")


def _outcome() -> Any:
    from harness.run.runner import RunOutcome

    return RunOutcome(None, None, 0)


def test_durations_and_time_limit_follow_the_target(tmp_path: Path) -> None:
    cfg = RunConfig(target="consul", nemeses=("pause",))
    runner = Runner(cfg, store=tmp_path, progress=Notes())
    durations, notes = runner._durations(ConsulTarget(), make_nemeses(["pause"], {}))
    assert durations["pause"].long[0] > 20.0
    assert runner.cfg.time_limit > 100.0  # lengthened to fit three 32 s pauses
    assert notes[0].startswith("fault durations: pause: 2-32 s (consul session TTL 10 s, ")
    assert notes[1].startswith("time limit: ")


def test_under_all_the_clock_brackets_and_its_bands_still_set_the_time_limit(
    tmp_path: Path,
) -> None:
    runner = Runner(RunConfig(nemeses=("all",)), store=tmp_path, progress=Notes())
    nemeses = make_nemeses(list(all_nemeses()), {"clock": {"processes": "both"}})
    durations, notes = runner._durations(ReferenceTarget(), nemeses)
    assert notes[0].startswith("fault durations: partition, pause, kill, lossy: 0.3-2.9 s")
    assert notes[1] == (
        "fault durations: clock: each brackets a node fault "
        "(from 0.2-0.5 s before it to 0.2-0.5 s after it)"
    )
    # Four node faults of 2.9 s, or the clock's 6.5 s bands: 2 + 3 + 4 x (6.5 + 3) s.
    assert durations["clock"].longest_s == 6.5
    assert runner.cfg.time_limit == 43.0
    assert notes[2] == "time limit: 43 s (the default, lengthened to fit 4 of the longest faults)"
    _, alone_notes = Runner(RunConfig(), store=tmp_path, progress=Notes())._durations(
        ReferenceTarget(), make_nemeses(["clock"], {})
    )
    assert alone_notes[0].startswith("fault durations: clock: 1.5-6.5 s (5 election timeouts")


def test_explicit_durations_and_time_limit_win(tmp_path: Path) -> None:
    cfg = RunConfig(
        target="consul", time_limit=40.0, time_limit_set=True,
        schedule=Schedule(duration_s=(3.0, 4.0)),
    )  # fmt: skip
    runner = Runner(cfg, store=tmp_path, progress=Notes())
    durations, notes = runner._durations(ConsulTarget(), make_nemeses(["pause"], {}))
    assert durations == {}
    assert notes == ["fault durations: 3-4 s (nemesis.schedule.duration_s)"]
    cfg = RunConfig(target="consul", time_limit=40.0, time_limit_set=True)
    runner = Runner(cfg, store=tmp_path, progress=Notes())
    durations, _ = runner._durations(ConsulTarget(), make_nemeses(["pause"], {}))
    assert durations and runner.cfg.time_limit == 40.0


def test_a_target_without_timing_keeps_the_fixed_durations(tmp_path: Path) -> None:
    class Plain:
        name = "plain"

    runner = Runner(RunConfig(), store=tmp_path, progress=Notes())
    durations, notes = runner._durations(Plain(), make_nemeses(["kill"], {}))  # type: ignore[arg-type]
    assert durations == {} and runner.cfg.time_limit == 30.0
    assert notes == ["fault durations: 2-5 s (target reference states no timing: the "
                     "schedule's fixed defaults)"]  # fmt: skip


def test_a_time_limit_in_the_file_or_on_the_command_line_counts_as_set(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("time_limit: 20\n")
    assert load_run_config(path).time_limit_set
    assert load_run_config(None, {"time_limit": 20.0}).time_limit_set
    assert not load_run_config(None).time_limit_set


def test_make_nemeses_expands_all() -> None:
    assert [n.name for n in make_nemeses(["all"], {})] == list(all_nemeses())


def test_a_suite_case_may_name_all(tmp_path: Path) -> None:
    from harness.suite.model import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: s\ncases:\n  - name: every\n    nemesis: {faults: [all]}\n"
        "    expect: {valid: true}\n"
    )
    loaded = load_suite(suite)
    assert loaded.cases[0].run.nemeses == ("all",)


def test_a_replayed_all_run_uses_the_kinds_it_carried_out(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "backend: local\ntime_limit: 20\nnemesis:\n  faults: [all]\n  schedule:\n"
        "    - {kind: pause, mode: candidate, target: holder, at_s: 3, duration_s: 4}\n"
        "    - {kind: kill, mode: member, target: all, at_s: 9, duration_s: 2}\n"
    )
    cfg = load_run_config(path)
    prepared = Runner(cfg, store=tmp_path / "store", progress=Notes())._prepare()
    assert [n.name for n in prepared.nemeses] == ["pause", "kill"]
    assert [(p.nemesis, p.at_s) for p in prepared.plans] == [("pause", 3.0), ("kill", 9.0)]
    assert prepared.notes == []  # an explicit schedule: no durations chosen
