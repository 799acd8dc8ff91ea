"""harness/validation.py: the one Reader every configuration goes through, short echoes
of bad values, the one deep merge; and that it (with errors.py) stays standard-library
only, as the reference elector on a node needs."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.validation import ECHO_CHARS, Reader, deep_merge, echo, kind_of

ROOT = Path(__file__).resolve().parents[2]


class OtherError(ConfigError):
    pass


def message(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


# --- echo ------------------------------------------------------------------------------


def test_echo_keeps_small_values_and_cuts_big_ones() -> None:
    assert echo("abc") == "'abc'"
    assert echo([1, 2.5, True]) == "[1, 2.5, True]"
    assert echo(None) == "None"
    long = echo("x" * 10_000)
    assert len(long) <= ECHO_CHARS and "..." in long
    assert len(echo(10**5000)) <= ECHO_CHARS  # would raise for int -> str over 4300 digits
    deep: Any = []
    for _ in range(5000):  # repr() of this raises RecursionError; echo stops early
        deep = [deep]
    assert len(echo(deep)) <= ECHO_CHARS
    assert len(echo({i: "v" * 100 for i in range(10_000)})) <= ECHO_CHARS


def test_kind_of_never_shows_content() -> None:
    assert kind_of("root:x:0:0:root:/root:/bin/bash") == "a string"
    assert kind_of([1]) == "a list" and kind_of(None) == "nothing (empty)"


# --- Reader ----------------------------------------------------------------------------


def test_reader_reads_typed_values_with_defaults() -> None:
    r = Reader(
        {"n": 3, "x": 0.5, "b": False, "c": 3.5, "s": "name", "p": [1, 2], "m": ["b", "a"]},
        "f.yaml",
    )
    assert r.integer("n", 1, 0, 10) == 3 and r.integer("absent", 7, 0, 10) == 7
    assert r.number("x", 0, 0, 1) == 0.5 and r.boolean("b", True) is False
    assert r.choice("c", "3.4", ["3.4", "3.5"]) == "3.5"  # YAML read `3.5` as a number
    assert r.text("s", "d") == "name" and r.pair("p", None, 0, 10) == (1.0, 2.0)
    assert r.subset("m", ["a"], ["a", "b", "c"]) == ("a", "b")  # the allowed order
    assert r.subset("absent", "c", ["a", "b", "c"]) == ("c",)
    assert r.strings("absent") == [] and r.mapping("absent") == {}
    assert Reader(None, "f.yaml").data == {}


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda r: r.integer("n", 0, 0, 5), "f.yaml: key 'a.n': expected an integer from 0 to 5"),
        (lambda r: r.integer("t", 0, 0, 5), "key 'a.t': expected an integer from 0 to 5, got True"),
        (lambda r: r.number("f", 0, 0, 1, above_low=True), "expected a number in (0, 1], got 0"),
        (lambda r: r.number("s", 0, 0, 3_600_000), "expected a number from 0 to 3600000, got 'x'"),
        (lambda r: r.boolean("n", True), "key 'a.n': expected true or false, got 9"),
        (lambda r: r.choice("s", "a", ["a", "b"]), "key 'a.s': expected one of a, b, got 'x'"),
        (lambda r: r.text("sp", "a"), "key 'a.sp': expected a non-empty string without spaces"),
        (lambda r: r.pair("n", None, 0, 10), "key 'a.n': expected [min, max] seconds, got 9"),
        (lambda r: r.pair("p", None, 0, 10), "key 'a.p[1]': expected a number from 5 to 10, got 1"),
        (lambda r: r.subset("s", None, ["a"]), "'a.s': expected a non-empty list of a, got 'x'"),
        (lambda r: r.section("n"), "f.yaml: key 'a.n': expected a mapping, got 9"),
        (lambda r: r.strings("n"), "key 'a.n': expected a list of strings, got 9"),
        (lambda r: r.problem("", "contradicts itself"), "f.yaml: key 'a': contradicts itself"),
    ],
)
def test_reader_errors_name_source_key_expectation_and_value(call: Any, expected: str) -> None:
    r = Reader({"n": 9, "t": True, "f": 0, "s": "x", "sp": "a b", "p": [5, 1]}, "f.yaml", "a.")
    try:
        error = call(r)  # problem() returns the error for its caller to raise
    except ConfigError as exc:
        error = exc
    assert isinstance(error, ConfigError), error
    assert expected in str(error), str(error)


def test_reader_errors_raise(tmp_path: Path) -> None:
    r = Reader({"n": "x" * 5000}, "f.yaml", "a.")
    text = message(r.integer, "n", 0, 0, 5)
    assert text.startswith("f.yaml: key 'a.n': expected an integer from 0 to 5, got 'xxx")
    assert len(text) < 120  # the value is cut short


def test_unknown_keys_list_what_is_expected() -> None:
    r = Reader({"nodez": 3}, "f.yaml", "server.")
    text = message(r.only, ["version", "nodes"])
    assert text == (
        "f.yaml: unknown key 'server.nodez'; expected one of server.nodes, server.version"
    )
    described = message(r.only, {"modes": "a list", "targets": "a list of one, all"})
    assert "expected one of server.modes (a list); server.targets (a list of one, all)" in described
    Reader({"nodes": 1}, "f.yaml").only(["nodes"])  # known keys pass


def test_a_whole_document_that_is_not_a_mapping_is_described_by_type_only() -> None:
    secret = "root:x:0:0:root:/root:/bin/bash\nsecret-line"
    text = message(Reader, secret, "/etc/passwd", expected="a mapping of run keys")
    assert text == "/etc/passwd: expected a mapping of run keys at the top level, got a string"


def test_the_error_class_is_chosen_by_the_caller_and_kept_by_sections() -> None:
    r = Reader({"lock": {"ttl": "x"}}, "f.yaml", error=OtherError)
    with pytest.raises(OtherError, match=r"key 'lock.ttl': expected an integer"):
        r.section("lock").integer("ttl", 1, 1, 9)
    with pytest.raises(OtherError):
        Reader([1], "f.yaml", error=OtherError)


def test_value_checks_a_list_item_under_its_own_key() -> None:
    r = Reader({"seeds": [1, -1]}, "f.yaml")
    assert r.integer("seeds[0]", None, 0, 9, value=1) == 1
    assert "key 'seeds[1]': expected an integer from 0 to 9, got -1" in message(
        r.integer, "seeds[1]", None, 0, 9, value=-1
    )


# --- deep_merge ------------------------------------------------------------------------


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": {"z": 1}}, "b": [1], "c": 1}
    over = {"a": {"y": {"w": 2}}, "b": [2], "d": 4}
    assert deep_merge(base, over) == {
        "a": {"x": 1, "y": {"z": 1, "w": 2}}, "b": [2], "c": 1, "d": 4
    }  # fmt: skip
    assert base == {"a": {"x": 1, "y": {"z": 1}}, "b": [1], "c": 1}  # unchanged
    assert deep_merge({"a": "file.yaml"}, {"a": {"k": 1}}) == {"a": {"k": 1}}


def test_one_merge_for_suites_and_consul() -> None:
    from harness.suite import model
    from harness.targets import consul

    assert model.merge is deep_merge
    assert not hasattr(consul, "_merge")


# --- standard library only --------------------------------------------------------------


@pytest.mark.parametrize("module", ["harness/validation.py", "harness/errors.py"])
def test_stdlib_only(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name == "harness.errors", (module, name)
