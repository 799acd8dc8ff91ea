"""`harness report RUN_DIR`, `harness check FILE --html OUT`, and the pytest plugin's links."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "split-brain.jsonl"


def data_of(page: Path) -> dict:
    text = page.read_text()
    start = text.index('id="report-data">') + len('id="report-data">')
    return json.loads(text[start : text.index("</script>", start)])


def test_check_html_writes_the_report_and_keeps_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["check", str(EXAMPLE), "--json", "--html", str(out)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["valid"] is False  # stdout is still only the verdict
    assert f"report: {out}" in captured.err
    data = data_of(out)
    assert [v["kind"] for v in data["violations"]] == ["split-brain", "stale-write"]
    assert len(data["intervals"]) == 2


def run_dir_with(tmp_path: Path, history: Path, results: dict | None = None) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(history, run_dir / "history.jsonl")
    if results is not None:
        (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def test_report_writes_run_dir_report_with_the_runs_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tolerance larger than the example's 0.5 s overlap: only the stale write remains.
    settings = {"tolerance_ns": 600_000_000, "stale_grace_ns": 0}
    results = {"target": "reference", "nemeses": ["partition"], "seed": 4, "error": None}
    run_dir = run_dir_with(tmp_path, EXAMPLE, {**results, "verdict": {"settings": settings}})
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    data = data_of(run_dir / "report.html")
    assert [v["kind"] for v in data["violations"]] == ["stale-write"]
    assert data["settings"] == settings
    assert data["run"]["target"] == "reference" and data["run"]["seed"] == 4
    assert (
        "reference &middot; nemesis partition &middot; seed 4"
        in (run_dir / "report.html").read_text()
    )


def test_report_without_results_uses_default_settings(tmp_path: Path) -> None:
    run_dir = run_dir_with(tmp_path, EXAMPLE)
    assert main(["report", str(run_dir)]) == 0
    assert len(data_of(run_dir / "report.html")["violations"]) == 2


def test_report_of_a_missing_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "history.jsonl: no history in this run directory" in capsys.readouterr().err


def test_report_of_a_malformed_history_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = EXAMPLE.read_text().splitlines()
    lines[2] = '{"time": "soon", "process": 1, "type": "ok", "f": "acquire"}'
    bad.write_text("\n".join(lines) + "\n")
    run_dir = run_dir_with(tmp_path, bad)
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / 'history.jsonl'}:3: field 'time' must be an integer" in err
    assert not (run_dir / "report.html").exists()


# --- the pytest plugin ----------------------------------------------------------------------

FAKE_RUNNER = f"""
import shutil
from pathlib import Path

import pytest

import harness.run.runner as runner_module
from harness.reports import write_run_report


class Outcome:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.verdict = None
        self.exit_code = 1
        self.error = None


class FakeRunner:
    # Stands in for a real run: a run directory with a history and its report.
    def __init__(self, cfg, *, store):
        self.store = Path(store)

    def execute(self):
        run_dir = self.store / "run-1"
        run_dir.mkdir(parents=True)
        shutil.copy({str(EXAMPLE)!r}, run_dir / "history.jsonl")
        write_run_report(run_dir)
        return Outcome(run_dir)


@pytest.fixture(autouse=True)
def fake_runner(monkeypatch):
    monkeypatch.setattr(runner_module, "Runner", FakeRunner)
"""

SCENARIO_TEST = """
import pytest


@pytest.mark.scenario
def test_scenario(harness_run):
    outcome = harness_run()
    assert outcome.exit_code == 0
"""


def test_terminal_summary_gives_each_runs_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_RUNNER)
    pytester.makepyfile(test_scenario=SCENARIO_TEST)
    result = pytester.runpytest_subprocess("--target=reference", "-p", "no:html")
    result.assert_outcomes(failed=1)
    report = pytester.path / "store" / "pytest" / "run-1" / "report.html"
    assert report.is_file()
    result.stdout.fnmatch_lines(
        [
            "*harness runs*",
            "*test_scenario*[[]kept[]]",
            "    report: store/pytest/run-1/report.html",
        ]
    )


PYTEST_HTML_STUB = """
def url(content, name=None):
    return {"format_type": "url", "content": content, "name": name}
"""

SHOW_EXTRAS = """
def pytest_runtest_logreport(report):
    if report.when == "call":
        print("EXTRAS", getattr(report, "extras", None))
"""


def test_pytest_html_entry_links_to_the_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_RUNNER + SHOW_EXTRAS)
    pytester.makepyfile(test_scenario=SCENARIO_TEST)
    # A stand-in for pytest-html's `extras` module: the plugin only calls extras.url.
    (pytester.path / "pytest_html").mkdir()
    (pytester.path / "pytest_html" / "__init__.py").write_text("")
    (pytester.path / "pytest_html" / "extras.py").write_text(PYTEST_HTML_STUB)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("--target=reference", "-s")
    report = (pytester.path / "store" / "pytest" / "run-1" / "report.html").resolve()
    result.stdout.fnmatch_lines([f"*EXTRAS*'content': '{report.as_uri()}'*leadership report*"])


def test_report_shows_a_shrunk_runs_origin_and_schedule(tmp_path: Path) -> None:
    results = {
        "target": "reference", "nemeses": ["pause"], "seed": 4, "error": None,
        "time_limit": 4.6, "schedule_source": "explicit",
        "schedule": [{"kind": "pause", "mode": "candidate", "target": "holder",
                      "at_s": 0.5, "duration_s": 4.1, "pick": 0}],
        "origin": {"shrunk_from": "/store/run-<b>", "candidate": "step 3 try 1"},
    }  # fmt: skip
    run_dir = run_dir_with(tmp_path, EXAMPLE, results)
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "shrunk from <code>/store/run-&lt;b&gt;</code>" in html  # escaped
    assert "schedule (explicit list, time limit 4.6 s)" in html
    assert "<li>pause candidate on holder: 4.1 s at 0.5 s</li>" in html


def test_report_of_a_seeded_run_lists_its_schedule_without_origin(tmp_path: Path) -> None:
    results = {"target": "reference", "nemeses": ["kill"], "seed": 1, "error": None,
               "schedule": [], "schedule_source": "seed", "origin": None}  # fmt: skip
    run_dir = run_dir_with(tmp_path, EXAMPLE, results)
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert 'id="origin"' not in html
    assert "schedule (from the seed)" in html and "no faults" in html
