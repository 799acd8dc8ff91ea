"""Suite figures across runs, expectations, baselines and the index HTML: no clusters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.runconfig import RunConfig
from harness.suite.compare import (
    BaselineError,
    Figures,
    aggregate,
    check_expectations,
    compare_baseline,
    judge,
    load_baseline,
    save_baseline,
)
from harness.suite.index import render_index
from harness.suite.model import Case, Expect, Suite, Tolerance
from harness.suite.runner import RunRecord, history_figures

VALID_HISTORY = Path(__file__).resolve().parents[2] / "examples" / "valid.jsonl"  # one failover

MS = 1_000_000


def rec(seed: int = 1, kinds: tuple[str, ...] = (), **kw: object) -> RunRecord:
    values: dict[str, object] = {
        "exit_code": 1 if kinds else 0,
        "valid": not kinds,
        "violation_kinds": list(kinds),
        "acquisitions": 4,
        "leaderless_ns": 1_000 * MS,
        "span_ns": 10_000 * MS,
        "failover_p50_ns": 100 * MS,
        "failover_p99_ns": 300 * MS,
    }
    values.update(kw)
    return RunRecord(seed=seed, **values)  # type: ignore[arg-type]


def case(name: str = "c", expect: Expect | None = None) -> Case:
    return Case(name, 1, RunConfig(), (1, 2, 3), expect or Expect(valid=True))


def test_pooled_latencies_beat_per_run_summaries() -> None:
    records = [
        rec(1, failover_latencies_ns=[10 * MS, 20 * MS]),
        rec(2, ("split-brain", "stale-write"), failover_latencies_ns=[30 * MS]),
        rec(3, ("split-brain",), failover_latencies_ns=[]),
    ]
    f = aggregate(records)
    assert (f.runs, f.runs_caught, f.runs_error) == (3, 2, 0)
    assert f.kinds == {"split-brain": 2, "stale-write": 1}
    assert f.failover_pooled and f.failover_count == 3
    assert (f.failover_p50_ns, f.failover_p99_ns) == (20 * MS, 30 * MS)
    assert f.leaderless_pct == pytest.approx(10.0)
    assert f.acquisitions_min == 4


def test_summaries_when_a_history_is_missing() -> None:
    records = [
        rec(1, failover_latencies_ns=[1 * MS]),
        rec(2, failover_p50_ns=50 * MS, failover_p99_ns=900 * MS),
        rec(3, failover_p50_ns=70 * MS, failover_p99_ns=400 * MS, leaderless_ns=4_000 * MS),
    ]
    f = aggregate(records)
    assert not f.failover_pooled
    assert f.failover_p99_ns == 900 * MS  # the worst run's
    assert f.failover_p50_ns == 70 * MS  # the median run's
    assert f.leaderless_pct == pytest.approx(100 * 6_000 / 30_000)


def test_errored_runs_are_not_judged_but_fail_the_case() -> None:
    records = [rec(1), rec(2, exit_code=2, error="no leader", valid=None, acquisitions=None)]
    f = aggregate(records)
    assert (f.runs, f.runs_error, f.runs_judged) == (2, 1, 1)
    failures = check_expectations(Expect(valid=True), f, records)
    assert failures == ["1/2 run(s) could not be judged: seed 2: no leader"]
    unknown = [rec(1, valid="unknown")]
    assert (
        "nothing to judge" in check_expectations(Expect(valid=True), aggregate(unknown), unknown)[0]
    )


@pytest.mark.parametrize(
    ("expect", "kinds_per_run", "failed"),
    [
        (Expect(valid=True), [(), (), ()], None),
        (Expect(valid=True), [(), ("split-brain",), ()], "expected valid: violations in 1/3"),
        (Expect(valid=False), [("split-brain",), ()], "expected invalid in every run"),
        (Expect(caught_at_least=1.0), [("split-brain",), ("stale-write",)], None),
        (Expect(caught_at_least=1.0), [("split-brain",), ()], "expected caught in every run"),
        (Expect(caught_at_least=0.5), [("split-brain",), ()], None),
        (Expect(caught_at_least=0.9), [("split-brain",), ()], "caught in >= 90% of runs"),
        (Expect(violations="none"), [("stale-leader",)], "expected no violations: found"),
        (Expect(violations="any"), [(), ()], "expected violations: none found"),
        (Expect(violations="any"), [(), ("stale-leader",)], None),
        (Expect(violations=("split-brain",)), [("split-brain",), ()], None),
        (Expect(violations=("split-brain",)), [(), ()], "expected violations of split-brain"),
        (
            Expect(violations=("split-brain",)),
            [("split-brain", "duplicate-token")],
            "unexpected violation kinds duplicate-token",
        ),
        (Expect(allow=("split-brain",)), [(), ()], None),
        (Expect(allow=("split-brain",)), [("split-brain",), ()], None),
        (
            Expect(allow=("split-brain",)),
            [("split-brain",), ("stale-write",)],
            "violations of kinds stale-write (allowed only split-brain)",
        ),
    ],
)
def test_safety_expectations(
    expect: Expect, kinds_per_run: list[tuple[str, ...]], failed: str | None
) -> None:
    records = [rec(i + 1, kinds) for i, kinds in enumerate(kinds_per_run)]
    failures = check_expectations(expect, aggregate(records), records)
    if failed is None:
        assert failures == []
    else:
        assert len(failures) == 1 and failed in failures[0], failures


def test_figure_expectations() -> None:
    records = [rec(1, failover_latencies_ns=[100 * MS, 2_500 * MS])]
    f = aggregate(records)
    assert (
        check_expectations(
            Expect(
                failover_p99_s=2.5, failover_p50_s=0.1, leaderless_pct_max=10, acquisitions_min=4
            ),
            f,
            records,
        )
        == []
    )
    failures = check_expectations(
        Expect(failover_p99_s=2.4, failover_p50_s=0.09, leaderless_pct_max=9.9, acquisitions_min=5),
        f,
        records,
    )
    assert failures == [
        "failover p50 0.100 s > 0.09 s",
        "failover p99 2.500 s > 2.4 s",
        "leaderless 10.0 % > 9.9 %",
        "acquisitions 4 in a run < 5",
    ]
    # No failover at all is not a slow failover.
    none = [rec(1, failover_latencies_ns=[])]
    assert check_expectations(Expect(failover_p99_s=0.001), aggregate(none), none) == []


def figures(**kw: object) -> Figures:
    base: dict[str, object] = {
        "runs": 3, "runs_caught": 0, "failover_p99_ns": 1_000 * MS, "leaderless_pct": 10.0,
    }  # fmt: skip
    base.update(kw)
    return Figures(**base)  # type: ignore[arg-type]


def test_baseline_regressions() -> None:
    tol = Tolerance(failover_p99_pct=20, failover_p99_ms=0, leaderless_pct_points=5)
    base = figures()
    assert (
        compare_baseline(figures(failover_p99_ns=1_200 * MS, leaderless_pct=15.0), base, tol) == []
    )
    slower = compare_baseline(figures(failover_p99_ns=1_201 * MS), base, tol)
    assert len(slower) == 1 and slower[0].startswith("failover p99 1.000 s -> 1.201 s (+20%")
    assert compare_baseline(figures(failover_p99_ns=1_250 * MS), base, Tolerance(20, 50, 5)) == []
    more = compare_baseline(figures(leaderless_pct=15.5), base, tol)
    assert more == ["leaderless 10.0 % -> 15.5 % (tolerance 5 points)"]
    unsafe = compare_baseline(figures(runs_caught=1, kinds={"split-brain": 1}), base, tol)
    assert unsafe == [
        "safety: valid in the baseline (3 run(s)), violations now in 1/3 (split-brain)"
    ]
    # Allowed kinds are no regression; any other kind still is.
    assert (
        compare_baseline(
            unsafe_figures := figures(runs_caught=1, kinds={"split-brain": 1}),
            base,
            tol,
            ("split-brain",),
        )
        == []
    )
    assert compare_baseline(unsafe_figures, base, tol, ("stale-write",)) == unsafe
    # Caught before and caught now: the expectation judges it, not the baseline.
    assert compare_baseline(figures(runs_caught=3), figures(runs_caught=2), tol) == []
    # From zero: any growth beyond the absolute slack regresses.
    assert compare_baseline(figures(failover_p99_ns=5 * MS), figures(failover_p99_ns=0), tol)
    assert not compare_baseline(
        figures(failover_p99_ns=5 * MS), figures(failover_p99_ns=0), Tolerance(20, 10, 5)
    )


def test_baseline_round_trip(tmp_path: Path) -> None:
    suite = Suite(str(tmp_path / "my suite.yaml"), "s", [case("a/b")])
    v = judge(suite.cases[0], [rec(1, failover_latencies_ns=[5 * MS])], suite.tolerance, None)
    path = save_baseline(tmp_path / "base", suite, v)
    assert path == tmp_path / "base" / "my-suite" / "a-b.json"
    assert load_baseline(tmp_path / "base", suite, suite.cases[0]) == v.figures
    assert load_baseline(tmp_path / "base", suite, case("other")) is None
    path.write_text("{not json")
    with pytest.raises(BaselineError, match="not a readable baseline"):
        load_baseline(tmp_path / "base", suite, suite.cases[0])


def test_history_figures(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_bytes(VALID_HISTORY.read_bytes())
    assert history_figures(tmp_path) == ([700 * MS], 1)  # n1 led term 4, n2 term 7
    status = [
        {"time": 10**10 + i, "process": "probe-n1", "type": "ok", "f": "status",
         "value": {"node": "n1", "leader": leader, "term": term}}
        for i, (leader, term) in enumerate([("n1", 2), (None, 3), ("n2", 3), ("n2", 3), ("n3", 5)])
    ]  # fmt: skip
    with open(tmp_path / "history.jsonl", "a") as f:
        f.writelines(json.dumps(e) + "\n" for e in status)
    # Terms 2, 3, 4, 5 and 7 had a leader (a null leader counts for nothing, a term
    # named twice once): four elections after the first.
    assert history_figures(tmp_path) == ([700 * MS], 4)
    (tmp_path / "history.jsonl").write_text('{"time": "x"}\n')
    assert history_figures(tmp_path) is None
    assert history_figures(tmp_path / "absent") is None


def test_elections_expectation() -> None:
    records = [RunRecord(seed=s, exit_code=0, valid=True, elections=e) for s, e in ((1, 0), (2, 3))]
    f = aggregate(records)
    assert f.elections_max == 3
    assert check_expectations(Expect(elections_max=3), f, records) == []
    assert check_expectations(Expect(elections_max=2), f, records) == ["elections 3 in a run > 2"]


def test_elections_min_expects_flapping_in_every_run() -> None:
    records = [
        RunRecord(seed=s, exit_code=1, valid=False, elections=e) for s, e in ((1, 9), (2, 4))
    ]
    f = aggregate(records)
    assert (f.elections_min, f.elections_max) == (4, 9)
    assert check_expectations(Expect(elections_min=4), f, records) == []
    assert check_expectations(Expect(elections_min=5), f, records) == [
        "elections 4 in a run < 5 (the flapping it expects was not seen)"
    ]
    # A bug expected to show must be seen: no count at all fails, unlike elections_max.
    blind = [RunRecord(seed=1, exit_code=0, valid=True, elections=None)]
    g = aggregate(blind)
    assert check_expectations(Expect(elections_min=1), g, blind) == [
        "elections could not be counted (no readable history)"
    ]
    assert check_expectations(Expect(elections_max=1), g, blind) == []
    assert Figures.from_dict(f.to_dict()) == f  # baselines carry it


def test_index_escapes_and_links(tmp_path: Path) -> None:
    with_report = tmp_path / "runs" / "r1"
    with_report.mkdir(parents=True)
    (with_report / "report.html").write_text("x")
    without = tmp_path / "runs" / "r2"
    without.mkdir()
    evil = '<script>alert("x")</script>'
    c = case(evil, Expect(valid=True))
    suite = Suite(str(tmp_path / "s.yaml"), f"suite {evil}", [c], description=evil)
    records = [
        rec(1, run_dir=str(with_report)),
        rec(2, ("split-brain",), run_dir=str(without), error=None),
    ]
    base = figures(failover_p99_ns=100 * MS)
    v = judge(c, records, suite.tolerance, base)
    out = tmp_path / "out"
    out.mkdir()
    page = render_index(suite, [v], out, baseline_dir=f"dir{evil}")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert 'href="../runs/r1/report.html"' in page
    assert 'href="../runs/r2/results.json"' in page  # no report: the results instead
    assert "FAIL, REGRESSED" in page and "baseline p99" in page
    assert "expected valid: violations in 1/2" in page
    assert "<title>suite" in page and "FAIL</title>" in page
    # Without a baseline there are no baseline columns.
    assert "baseline p99" not in render_index(
        suite, [judge(c, records[:1], suite.tolerance, None)], out
    )
