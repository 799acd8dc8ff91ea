"""harness/yamlio.py: the one YAML loader, and its bounds (issue 15): non-regular files,
size, nesting depth, alias expansion. Each refusal is a ConfigError naming the file and
the reason; and no error prints the content of a file named by mistake."""

from __future__ import annotations

import os
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ConfigError
from harness.runconfig import load_run_config
from harness.suite.model import SuiteError, load_suite
from harness.yamlio import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    BoundedLoader,
    PureBoundedLoader,
    load_yaml,
    parse_yaml,
)

ROOT = Path(__file__).resolve().parents[2]
LOADERS = [pytest.param(BoundedLoader, id="default"), pytest.param(PureBoundedLoader, id="pure")]

# The 478-byte document of issue 15: nine levels of nine aliases, 9**9 strings expanded.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
SECRET = "root:x:0:0:SECRET-CONTENT:/root:/bin/bash\nsecond-SECRET-line\n"


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert "\n" not in text
    return text


def refusal_of_text(text: str, loader: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "doc.yaml", loader)
    return str(info.value)


def test_every_config_and_suite_in_the_repository_loads_as_before() -> None:
    files = sorted([*ROOT.glob("configs/**/*.yaml"), *ROOT.glob("suites/*.yaml")])
    assert len(files) >= 10
    for path in files:
        assert load_yaml(path) == yaml.safe_load(path.read_text()), path


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_within_bounds_load(loader: Any) -> None:
    text = "base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: {<<: *b, y: 3}\n"
    assert parse_yaml(text, "doc.yaml", loader) == {
        "base": {"x": 1, "y": [1, 2]}, "one": {"x": 1, "y": [1, 2]}, "two": {"x": 1, "y": 3}
    }  # fmt: skip


@pytest.mark.parametrize("loader", LOADERS)
def test_alias_bomb_is_refused_early_and_small(loader: Any) -> None:
    assert len(BILLION_LAUGHS) < 480
    tracemalloc.start()
    try:
        message = refusal_of_text(BILLION_LAUGHS, loader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith("doc.yaml:")
    assert f"refused: its aliases expand it beyond {MAX_NODES} values" in message
    # Refused while composing nodes: nothing near the 1.3 GB of expanding it.
    assert peak < 20 * 1024 * 1024, peak


@pytest.mark.parametrize("loader", LOADERS)
def test_recursive_alias_is_refused(loader: Any) -> None:
    assert "recursive" in refusal_of_text("a: &a [1, *a]\n", loader)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    "text",
    [
        "[" * 20_000 + "]" * 20_000,  # was a RecursionError
        "{a: " * 500 + "1" + "}" * 500,
        "".join(f"{'  ' * i}k:\n" for i in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v\n",
    ],
    ids=["flow-20000", "flow-mappings", "block"],
)
def test_deep_nesting_is_refused(loader: Any, text: str) -> None:
    message = refusal_of_text(text, loader)
    assert message.startswith("doc.yaml:")
    assert "nest" in message  # "nested deeper than 100 levels" (libyaml: "nesting depth")


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_that_nest_deeper_than_the_bound_are_refused(loader: Any) -> None:
    lines = ["l0: &l0 [1]"]
    lines += [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    assert "its aliases nest it deeper" in refusal_of_text("\n".join(lines), loader)


def test_nesting_within_the_bound_loads() -> None:
    depth = MAX_DEPTH - 2
    assert parse_yaml("[" * depth + "]" * depth, "doc.yaml") is not None


def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "run.yaml"
    link.symlink_to("/dev/zero")
    assert "not a regular file" in refusal(link)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in refusal(fifo)  # would block forever on open()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "not a regular file (a directory)" in refusal(tmp_path)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("nodes: 5\n")
    (tmp_path / "run.yaml").symlink_to(tmp_path / "real.yaml")
    assert load_yaml(tmp_path / "run.yaml") == {"nodes": 5}


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: no need to write 4 MiB
    assert f"a file may have at most {MAX_BYTES} bytes" in refusal(path)


def test_too_many_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text("[" + "1," * MAX_NODES + "1]")
    assert f"it has more than {MAX_NODES} values" in refusal(path)


def test_an_integer_python_cannot_convert_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: " + "9" * 5000 + "\n")
    message = refusal(path)
    assert "invalid YAML" in message and len(message) < len(str(path)) + 120


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("nodes: 3\nnemesis: {faults: [partition\n")
    assert refusal(path).startswith(f"{path}:3: invalid YAML")


# --- no error prints a file's content ----------------------------------------------------


def test_server_naming_a_file_that_is_not_settings_does_not_print_it(tmp_path: Path) -> None:
    (tmp_path / "hostname").write_text("SECRET-CONTENT\n")
    (tmp_path / "passwd").write_text(SECRET)
    for name in ("hostname", "passwd"):
        path = tmp_path / f"run-{name}.yaml"
        path.write_text(f"target: etcd\nserver: {tmp_path / name}\n")
        with pytest.raises(ConfigError) as info:
            load_run_config(path)
        message = str(info.value)
        assert "SECRET" not in message, message
        assert message.startswith(f"{path}: key 'server': {tmp_path / name} holds a string")


def test_suite_config_naming_a_file_that_is_not_a_configuration_does_not_print_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "passwd").write_text(SECRET)
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"cases:\n  - name: a\n    config: {tmp_path / 'passwd'}\n")
    with pytest.raises(SuiteError) as info:
        load_suite(suite)
    message = str(info.value)
    assert "SECRET" not in message, message
    assert message.startswith(f"{suite}: case 1 ('a'): key 'config': ")
    assert "got a string" in message


def test_values_echoed_in_errors_are_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            quiet_s: "{"SECRET" * 2000}"
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key 'quiet_s': expected a number from 0 to 3600, got ")
    assert len(message) < len(str(path)) + 140, message
