"""Fuzzing the command line's parsers with Hypothesis: random bytes and random JSON lines to
`harness check`, random YAML to `harness run --config` and to `harness suite`.

The only outcomes allowed: exit 0 or 1 with a verdict; exit 2 with the "nothing to judge"
verdict; or exit 2 with one error line (a malformed history adds one line per problem,
each naming its file and line). Never a traceback, never an "internal error". Runs and
suites that get past their parsers stop at `--store`, which names a file: no input here
ever starts a run (conftest.py makes that fail loudly too).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.invoke import Result, invoke
from tests.hostile.test_corpus import assert_one_error

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
FIELD_NAMES = ["time", "process", "type", "f", "node", "value", "index", "election", "token"]
WORDS = ["invoke", "ok", "fail", "info", "acquire", "release", "lost", "write", "status", "n1"]
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
json_values = st.recursive(
    scalars | st.sampled_from(WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
# Events that are nearly right: the right keys, values of any type, so the checker's
# rules (not only its JSON validation) get reached.
near_events = st.fixed_dictionaries(
    {
        "time": st.integers(min_value=-5, max_value=10**10) | json_values,
        "process": st.integers(min_value=0, max_value=3) | st.sampled_from(["nemesis", "probe"]),
        "type": st.sampled_from(["invoke", "ok", "fail", "info"]),
        "f": st.sampled_from(["acquire", "release", "lost", "write", "status", "crash"]),
    },
    optional={
        "node": st.sampled_from(["n1", "n2", "n3"]) | json_values,
        "value": st.fixed_dictionaries(
            {}, optional={"token": json_values, "seq": json_values, "leader": json_values}
        )
        | json_values,
    },
)


def assert_allowed(result: Result) -> None:
    shown = f"exit {result.code}\nstdout: {result.out[:1500]}\nstderr: {result.err[:1500]}"
    assert "internal error" not in result.err, shown
    assert "Traceback" not in result.out + result.err, shown
    if result.code in (0, 1):
        first = result.out.splitlines()[0] if result.out else ""
        word = "VALID" if result.code == 0 else "INVALID"
        assert first.startswith(f"{word}:") or first.startswith('{"valid":'), shown
    else:
        assert result.code == 2, shown
        if result.err.strip():
            assert_one_error(result.err)
        else:
            assert result.out.startswith(("UNKNOWN", '{"valid":"unknown"')), shown


def _in_temp(files: dict[str, bytes], argv: list[str]) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        return invoke(argv, directory)


@FUZZ
@given(data=st.binary(max_size=2048), as_json=st.booleans())
def test_check_random_bytes(data: bytes, as_json: bool) -> None:
    argv = ["check", *(["--json"] if as_json else []), "h.jsonl"]
    assert_allowed(_in_temp({"h.jsonl": data}, argv))


@FUZZ
@given(events=st.lists(json_values | near_events, max_size=20), as_json=st.booleans())
def test_check_random_json(events: list[Any], as_json: bool) -> None:
    text = "".join(json.dumps(e) + "\n" for e in events)
    argv = ["check", *(["--json"] if as_json else []), "h.jsonl"]
    assert_allowed(_in_temp({"h.jsonl": text.encode()}, argv))


RUN_KEYS = [
    "target", "nodes", "time_limit", "seed", "nemesis", "server", "workload", "resource",
    "check", "backend", "faults", "schedule", "gap_s", "duration_s", "warmup_s", "modes",
    "discipline", "fencing", "tolerance_ns", "quiet_s", "config", "name", "cases", "runs",
    "seeds", "expect", "defaults", "tolerance", "valid", "caught_at_least", "violations",
]  # fmt: skip
yaml_keys = st.sampled_from(RUN_KEYS) | st.text(max_size=8)
yaml_values = st.recursive(
    scalars | st.sampled_from(["reference", "etcd", "consul", "partition", "kill", "none"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(yaml_keys, inner, max_size=5),
    max_leaves=25,
)
yaml_documents = st.dictionaries(yaml_keys, yaml_values, max_size=6) | yaml_values


def _yaml(document: Any) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True).encode()


@FUZZ
@given(document=yaml_documents)
def test_run_config_random_yaml(document: Any) -> None:
    files = {"c.yaml": _yaml(document), "s": b"a file, not a store\n"}
    argv = ["run", "--config", "c.yaml", "--backend", "local", "--store", "s"]
    assert_allowed(_in_temp(files, argv))


@FUZZ
@given(text=st.text(max_size=300))
def test_run_config_random_text(text: str) -> None:
    files = {"c.yaml": text.encode("utf-8", "surrogatepass"), "s": b"x\n"}
    argv = ["run", "--config", "c.yaml", "--backend", "local", "--store", "s"]
    assert_allowed(_in_temp(files, argv))


suites = st.fixed_dictionaries(
    {"cases": st.lists(st.dictionaries(yaml_keys, yaml_values, max_size=5), max_size=3)},
    optional={"name": yaml_values, "defaults": yaml_values, "tolerance": yaml_values},
)


@FUZZ
@given(document=suites | yaml_documents)
def test_suite_random_yaml(document: Any) -> None:
    files = {"s.yaml": _yaml(document), "f": b"a file, not a store\n"}
    assert_allowed(_in_temp(files, ["suite", "s.yaml", "--store", "f"]))
