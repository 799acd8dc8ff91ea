"""Configuration validation of the reference elector: defaults, shipped files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.elector.__main__ import main
from harness.elector.config import ConfigError, ElectorConfig, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "configs" / "reference"


def test_empty_file_gives_safe_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    config = load_config(path)
    assert config == ElectorConfig()
    assert config.election_timeout_ms == (300, 600)
    # 300 ms * 0.9 - 20 ms
    assert config.lease_duration_ns == 205_000_000  # 300 * (1 - 0.25) - 20 ms


def test_shipped_configs_load_and_differ_where_documented() -> None:
    safe = load_config(REFERENCE / "safe.yaml")
    assert safe == ElectorConfig()
    no_persist = load_config(REFERENCE / "unsafe-no-persist.yaml")
    assert not no_persist.persist_votes and not no_persist.pre_vote
    assert not no_persist.leader_stickiness
    no_cq = load_config(REFERENCE / "unsafe-no-check-quorum.yaml")
    assert not no_cq.check_quorum and not no_cq.lease.enforce
    zero = load_config(REFERENCE / "unsafe-zero-drift.yaml")
    assert zero.lease_duration_ns == zero.election_min_ns
    for name in ("unsafe-no-persist", "unsafe-no-check-quorum", "unsafe-zero-drift"):
        assert (REFERENCE / f"{name}.yaml").read_text().startswith("# UNSAFE")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("election_timeout_ms: abc", ["'election_timeout_ms'", "expected a list [min, max]"]),
        ("election_timeout_ms: [600, 300]", ["'election_timeout_ms'", "min <= max"]),
        ("election_timeout_ms: [60, 100]", ["'election_timeout_ms'", "2 * heartbeat"]),
        ("heartbeat_interval_ms: fast", ["'heartbeat_interval_ms'", "an integer", "'fast'"]),
        ("heartbeat_interval_ms: 0", ["'heartbeat_interval_ms'", "from 1"]),
        ("pre_vote: 1", ["'pre_vote'", "true or false"]),
        ("check_quorum: 'yes'", ["'check_quorum'", "true or false"]),
        ("elction_timeout_ms: [1, 2]", ["unknown key 'elction_timeout_ms'"]),
        ("lease: {enforce: true, drift: 0.1}", ["unknown key 'lease.drift'"]),
        ("lease: {max_clock_drift: 1.5}", ["'lease.max_clock_drift'", "1.5"]),
        ("lease: {margin_ms: 500}", ["'lease.margin_ms'", "smaller than"]),
        ("lease: 3", ["'lease'", "a mapping"]),
        ("tick_ms: 80", ["'tick_ms'", "at most heartbeat_interval_ms"]),
        ("- 1\n- 2\n", ["a mapping of keys at the top level"]),
    ],
)
def test_bad_values_name_file_key_and_expectation(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("pre_vote: true\ncheck_quorum: [true\nlease: {}\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_parse_config_accepts_partial_lease() -> None:
    config = parse_config({"lease": {"margin_ms": 0}})
    assert config.lease.margin_ms == 0 and config.lease.max_clock_drift == 0.25


def _run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_cli_exits_2_with_one_line_for_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("election_timeout_ms: abc\n")
    code, err = _run_main(
        [
            "--config",
            str(path),
            "--id",
            "n1",
            "--peers",
            "n1=127.0.0.1:1",
            "--api",
            "127.0.0.1:2",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capsys,
    )
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: {path}: key 'election_timeout_ms': expected")


@pytest.mark.parametrize(
    ("peers", "node_id", "api", "fragment"),
    [
        ("n1=127.0.0.1:1", "n9", "127.0.0.1:2", "--id: 'n9' is not one of --peers"),
        ("n1=127.0.0.1", "n1", "127.0.0.1:2", "--peers n1: expected HOST:PORT"),
        ("n1=127.0.0.1:1,n1=127.0.0.1:3", "n1", "127.0.0.1:2", "named twice"),
        ("n1=127.0.0.1:1", "n1", "127.0.0.1:99999", "--api: port must be"),
    ],
)
def test_cli_rejects_bad_arguments(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    peers: str,
    node_id: str,
    api: str,
    fragment: str,
) -> None:
    code, err = _run_main(
        ["--id", node_id, "--peers", peers, "--api", api, "--data-dir", str(tmp_path)], capsys
    )
    assert code == 2
    assert fragment in err
