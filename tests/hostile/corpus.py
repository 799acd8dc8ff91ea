"""The hostile corpus: inputs a careless or hostile user gives the harness, each with the
exit status and the first line it must produce.

Every case runs the real command line in a fresh directory holding its files; `OUTSIDE`
is a file next to that directory that no case may change. A file's content is text or
bytes, or one of the markers below (a link, a directory, a FIFO). No case may start a
run: the tests make creating a backend and starting a suite run fail loudly.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "../outside.txt"  # relative to the case's directory; must stay "precious\n"
MAX_SEED = 2**63 - 1
HOUR_NS = 3_600 * 10**9


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Dir:
    pass


@dataclass(frozen=True)
class Fifo:
    pass


@dataclass
class Case:
    name: str
    argv: list[str]
    exit: int
    first: str  # a regular expression the first line must match (re.match)
    files: dict[str, Any] = field(default_factory=dict)


def line(**event: Any) -> str:
    return json.dumps(event) + "\n"


EXAMPLE_INVALID = (ROOT / "examples" / "split-brain.jsonl").read_text()
EXAMPLE_VALID = (ROOT / "examples" / "valid.jsonl").read_text()
ACQ = line(time=1, process=1, type="invoke", f="acquire", node="n1") + line(
    time=2, process=1, type="ok", f="acquire", node="n1", value={"token": 1}
)
SUITE_OK = f"""
name: demo
defaults: {{runs: 1, time_limit: 5}}
cases:
  - name: safe
    config: {ROOT}/configs/reference/safe.yaml
    expect: {{valid: true}}
"""


def baseline(figures: Any, fmt: Any = 1) -> str:
    return json.dumps({"format": fmt, "figures": figures})


def suite(text: str) -> dict[str, Any]:
    return {"s.yaml": text}


def run_config(text: str) -> dict[str, Any]:
    return {"c.yaml": text}


CHECK: list[Case] = [
    Case("check-empty-file", ["check", "h.jsonl"], 2, r"UNKNOWN", {"h.jsonl": ""}),
    Case("check-blank-lines", ["check", "h.jsonl"], 2, r"UNKNOWN", {"h.jsonl": "\n\n  \n"}),
    Case(
        "check-binary-garbage",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed history",
        {"h.jsonl": bytes(range(256)) * 4},
    ),
    Case(
        "check-array-line",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": "[1]\n"},
    ),
    Case(
        "check-null-line",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": "null\n"},
    ),
    Case(
        "check-missing-time",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(process=1, type="invoke", f="acquire")},
    ),
    Case(
        "check-time-string",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time="5", process=1, type="invoke", f="acquire")},
    ),
    Case(
        "check-time-negative-is-a-time",
        ["check", "h.jsonl"],
        0,
        r"VALID: 0 violation",
        {"h.jsonl": line(time=-5, process=1, type="invoke", f="acquire")},
    ),
    Case(
        "check-time-float",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time=1.5, process=1, type="invoke", f="acquire")},
    ),
    Case(
        "check-time-beyond-64-bits",
        ["check", "--json", "h.jsonl"],
        2,
        r"harness check: ",
        {"h.jsonl": f'{{"time": {2**70}, "process": 1, "type": "invoke", "f": "acquire"}}\n'},
    ),
    Case(
        "check-time-beyond-int64-json",
        ["check", "--json", "h.jsonl"],
        2,
        r"harness check: malformed history",
        {"h.jsonl": f'{{"time": {2**64 - 1}, "process": 1, "type": "invoke", "f": "acquire"}}\n'},
    ),
    Case(
        "check-bogus-type",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time=1, process=1, type="bogus", f="acquire")},
    ),
    Case(
        "check-missing-f",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time=1, process=1, type="invoke")},
    ),
    Case(
        "check-process-list",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time=1, process=[1], type="invoke", f="acquire")},
    ),
    Case(
        "check-acquire-value-not-object",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": line(time=1, process=1, type="ok", f="acquire", value=[1])},
    ),
    Case(
        "check-nan-literal",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": '{"time": NaN, "process": 1, "type": "invoke", "f": "acquire"}\n'},
    ),
    Case(
        "check-utf16",
        ["check", "h.jsonl"],
        2,
        r"harness check: malformed",
        {"h.jsonl": ACQ.encode("utf-16")},
    ),
    Case("check-a-directory", ["check", "d"], 2, r"harness check: d: cannot ", {"d": Dir()}),
    Case("check-missing-file", ["check", "nope.jsonl"], 2, r"harness check: nope.jsonl: cannot "),
    Case(
        "check-truncated-gzip",
        ["check", "h.jsonl.gz"],
        2,
        r"harness check: h.jsonl.gz: cannot read",
        {"h.jsonl.gz": gzip.compress(ACQ.encode() * 50)[:40]},
    ),
    Case(
        "check-gzip-of-garbage",
        ["check", "h.jsonl.gz"],
        2,
        r"harness check: malformed",
        {"h.jsonl.gz": gzip.compress(b"\x00\xff garbage \x1b[31m\n")},
    ),
    Case(
        "check-link-to-history-is-fine",
        ["check", "link.jsonl"],
        1,
        r"INVALID: 2 violation",
        {"real.jsonl": EXAMPLE_INVALID, "link.jsonl": Link("real.jsonl")},
    ),
    Case(
        "check-split-brain",
        ["check", "h.jsonl"],
        1,
        r"INVALID: 2 violation",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case("check-valid", ["check", "h.jsonl"], 0, r"VALID: 0 violation", {"h.jsonl": EXAMPLE_VALID}),
    Case(
        "check-valid-crlf",
        ["check", "h.jsonl"],
        0,
        r"VALID: 0 violation",
        {"h.jsonl": EXAMPLE_VALID.replace("\n", "\r\n")},
    ),
    Case(
        "check-json-split-brain",
        ["check", "--json", "h.jsonl"],
        1,
        r'\{"valid":false',
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-tolerance-negative",
        ["check", "--tolerance", "-1", "h.jsonl"],
        2,
        r"harness check: argument --tolerance: expected 0 <= nanoseconds",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-tolerance-huge",
        ["check", "--tolerance", str(10**26), "h.jsonl"],
        2,
        r"harness check: argument --tolerance: expected 0 <= nanoseconds <= 3600000000000",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-tolerance-one-hour-is-allowed",
        ["check", "--tolerance", str(HOUR_NS), "h.jsonl"],
        0,
        r"VALID",
        {"h.jsonl": EXAMPLE_INVALID.split('{"time": 2600000000')[0]},
    ),
    Case(
        "check-tolerance-word",
        ["check", "--tolerance", "lots", "h.jsonl"],
        2,
        r"harness check: argument --tolerance: expected nanoseconds as an integer",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-stale-grace-float",
        ["check", "--stale-grace", "1e9", "h.jsonl"],
        2,
        r"harness check: argument --stale-grace: expected nanoseconds as an integer",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-stale-grace-huge",
        ["check", "--stale-grace", str(2**80), "h.jsonl"],
        2,
        r"harness check: argument --stale-grace: expected 0 <= nanoseconds",
        {"h.jsonl": EXAMPLE_INVALID},
    ),
    Case(
        "check-html-into-missing-dir",
        ["check", "--html", "no/such/dir/r.html", "h.jsonl"],
        2,
        r"harness check: cannot write no/such/dir/r.html",
        {"h.jsonl": EXAMPLE_VALID},
    ),
    Case(
        "check-html-is-a-directory",
        ["check", "--html", "d", "h.jsonl"],
        2,
        r"harness check: cannot write d",
        {"h.jsonl": EXAMPLE_VALID, "d": Dir()},
    ),
    Case(
        "check-html-through-planted-link",
        ["check", "--html", "r.html", "h.jsonl"],
        1,
        r"INVALID",
        {"h.jsonl": EXAMPLE_INVALID, "r.html": Link(OUTSIDE), ".r.html.tmp": Link(OUTSIDE)},
    ),
    Case(
        "check-no-file-argument",
        ["check"],
        2,
        r"harness check: the following arguments are required",
    ),
]

ESC_PROCESS = line(time=1, process="\x1b[2J\x1b]0;pwned\x07", type="invoke", f="acquire")
SUPERSCRIPT_NODES = EXAMPLE_INVALID.replace('"node": "n2"', '"node": "n2\u00b2"')
ESCAPED_PROCESS = EXAMPLE_INVALID.replace('"process": 2,', '"process": "\\u001b[31mevil\\u0007",')
CHECKER_BOUNDS: list[Case] = [
    Case(
        "check-escapes-in-a-process-name",
        ["check", "h.jsonl"],
        1,
        r"INVALID: 2 violation",
        {"h.jsonl": ESCAPED_PROCESS},
    ),
    Case(
        "check-superscript-node-html",
        ["check", "--html", "r.html", "h.jsonl"],
        1,
        r"INVALID: 2 violation",
        {"h.jsonl": SUPERSCRIPT_NODES},
    ),
    Case(
        "check-escape-only-process-invoke",
        ["check", "h.jsonl"],
        0,
        r"VALID: 0 violation",
        {"h.jsonl": ESC_PROCESS},
    ),
    Case(
        "check-two-mebibyte-line-gzip",
        ["check", "h.jsonl.gz"],
        2,
        r"harness check: malformed history",
        {"h.jsonl.gz": gzip.compress(b'{"time": 1, "pad": "' + b"x" * 2**21 + b'"}\n')},
    ),
    Case(
        "check-integer-beyond-64-bits-html",
        ["check", "--html", "r.html", "h.jsonl"],
        2,
        r"harness check: malformed history",
        {
            "h.jsonl": '{"time": 1, "process": 1, "type": "ok", "f": "acquire", '
            f'"value": {{"token": {2**70}}}}}\n'
        },
    ),
]

REPORT: list[Case] = [
    Case(
        "report-no-such-dir", ["report", "nope"], 2, r"harness report: nope: no such run directory"
    ),
    Case(
        "report-no-history",
        ["report", "r"],
        2,
        r"harness report: r/history.jsonl: no history",
        {"r": Dir()},
    ),
    Case(
        "report-results-list",
        ["report", "r"],
        2,
        r"harness report: r/results.json: top level: expected an object, got \[1\]",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": "[1]"},
    ),
    Case(
        "report-verdict-string",
        ["report", "r"],
        2,
        r'harness report: r/results.json: verdict: expected an object or null, got "x"',
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": '{"verdict": "x"}'},
    ),
    Case(
        "report-tolerance-string",
        ["report", "r"],
        2,
        r"harness report: r/results.json: verdict.settings.tolerance_ns: expected an integer",
        {
            "r/history.jsonl": EXAMPLE_VALID,
            "r/results.json": '{"verdict": {"settings": {"tolerance_ns": "5"}}}',
        },
    ),
    Case(
        "report-grace-huge",
        ["report", "r"],
        2,
        r"harness report: r/results.json: verdict.settings.stale_grace_ns: expected an integer",
        {
            "r/history.jsonl": EXAMPLE_VALID,
            "r/results.json": json.dumps({"verdict": {"settings": {"stale_grace_ns": 10**30}}}),
        },
    ),
    Case(
        "report-tolerance-bool",
        ["report", "r"],
        2,
        r"harness report: r/results.json: verdict.settings.tolerance_ns: expected an integer",
        {
            "r/history.jsonl": EXAMPLE_VALID,
            "r/results.json": '{"verdict": {"settings": {"tolerance_ns": true}}}',
        },
    ),
    Case(
        "report-results-not-json",
        ["report", "r"],
        2,
        r"harness report: r/results.json: not valid JSON",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": "{oops"},
    ),
    Case(
        "report-nemeses-string",
        ["report", "r"],
        2,
        r"harness report: r/results.json: nemeses: expected a list of strings or null",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": '{"nemeses": "partition"}'},
    ),
    Case(
        "report-seed-string",
        ["report", "r"],
        2,
        r"harness report: r/results.json: seed: expected an integer or null",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": '{"seed": "1"}'},
    ),
    Case(
        "report-results-directory",
        ["report", "r"],
        2,
        r"harness report: r/results.json: cannot read",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": Dir()},
    ),
    Case(
        "report-results-fifo",
        ["report", "r"],
        2,
        r"harness report: r/results.json: .*not a regular file",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": Fifo()},
    ),
    Case(
        "report-results-link-outside",
        ["report", "r"],
        2,
        r"harness report: r/results.json: .*symbolic link",
        {"r/history.jsonl": EXAMPLE_VALID, "r/results.json": Link("../" + OUTSIDE)},
    ),
    Case(
        "report-planted-tmp-link",
        ["report", "r"],
        0,
        r"r/report.html$",
        {"r/history.jsonl": EXAMPLE_VALID, "r/.report.html.tmp": Link("../" + OUTSIDE)},
    ),
    Case(
        "report-planted-final-link",
        ["report", "r"],
        0,
        r"r/report.html$",
        {"r/history.jsonl": EXAMPLE_VALID, "r/report.html": Link("../" + OUTSIDE)},
    ),
    Case(
        "report-malformed-history",
        ["report", "r"],
        2,
        r"harness report: malformed history",
        {"r/history.jsonl": "[1]\n"},
    ),
]

RUN: list[Case] = [
    Case(
        "run-seed-beyond-64-bits",
        ["run", "--seed", str(2**64)],
        2,
        r"harness run: argument --seed: expected 0 <= seed <= 9223372036854775807",
    ),
    Case(
        "run-seed-2-63",
        ["run", "--seed", str(2**63)],
        2,
        r"harness run: argument --seed: expected 0 <= seed <= 9223372036854775807",
    ),
    Case(
        "run-seed-negative", ["run", "--seed", "-1"], 2, r"harness run: argument --seed: expected 0"
    ),
    Case(
        "run-seed-word",
        ["run", "--seed", "abc"],
        2,
        r"harness run: argument --seed: expected an integer",
    ),
    Case(
        "run-seed-thousands-of-digits",
        ["run", "--seed", "9" * 5000],
        2,
        r"harness run: argument --seed: expected 0 <= seed",
    ),
    Case(
        "run-store-is-a-file",
        ["run", "--backend", "local", "--store", "passwd"],
        2,
        r"harness run: --store passwd: not a directory",
        {"passwd": "root:x:0:0::/root:/bin/sh\n"},
    ),
    Case(
        "run-store-under-a-file",
        ["run", "--backend", "local", "--store", "passwd/store"],
        2,
        r"harness run: --store passwd/store: cannot create it",
        {"passwd": "root:x:0:0::/root:/bin/sh\n"},
    ),
    Case(
        "run-nodes-even",
        ["run", "--nodes", "4"],
        2,
        r"harness run: argument --nodes: 4 nodes is not supported",
    ),
    Case("run-nodes-zero", ["run", "--nodes", "0"], 2, r"harness run: argument --nodes: 0 nodes"),
    Case(
        "run-time-limit-zero",
        ["run", "--time-limit", "0"],
        2,
        r"harness run: argument --time-limit: expected 0 <",
    ),
    Case(
        "run-time-limit-nan",
        ["run", "--time-limit", "nan"],
        2,
        r"harness run: argument --time-limit: expected 0 <",
    ),
    Case(
        "run-time-limit-inf",
        ["run", "--time-limit", "inf"],
        2,
        r"harness run: argument --time-limit: expected 0 <",
    ),
    Case(
        "run-unknown-target",
        ["run", "--target", "zookeeper"],
        2,
        r"harness run: argument --target: unknown target",
    ),
    Case(
        "run-nemesis-twice",
        ["run", "--nemesis", "partition,partition"],
        2,
        r"harness run: argument --nemesis: a nemesis is named twice",
    ),
    Case(
        "run-nemesis-none-and-kill",
        ["run", "--nemesis", "none,kill"],
        2,
        r"harness run: argument --nemesis: 'none' cannot",
    ),
    Case(
        "run-nemesis-empty",
        ["run", "--nemesis", ""],
        2,
        r"harness run: argument --nemesis: empty name",
    ),
    Case(
        "run-nemesis-escape",
        ["run", "--nemesis", "\x1b[31mred"],
        2,
        r"harness run: argument --nemesis: unknown nemesis '\\x1b\[31mred'",
    ),
    Case(
        "run-unknown-backend",
        ["run", "--backend", "qemu"],
        2,
        r"harness run: argument --backend: unknown backend",
    ),
    Case(
        "run-config-missing",
        ["run", "--config", "nope.yaml"],
        2,
        r"harness run: nope.yaml: cannot read",
    ),
    Case(
        "run-config-directory",
        ["run", "--config", "d"],
        2,
        r"harness run: d: cannot read",
        {"d": Dir()},
    ),
    Case(
        "run-config-list",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: ",
        run_config("- 1\n- 2\n"),
    ),
    Case(
        "run-config-bad-yaml",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml:2: invalid YAML",
        run_config("a: [1, 2\n"),
    ),
    Case(
        "run-config-unknown-key",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: server: unknown key 'colour'",
        run_config("colour: red\n"),
    ),
    Case(
        "run-config-nodes-word",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: key 'nodes'",
        run_config("nodes: three\n"),
    ),
    Case(
        "run-config-seed-beyond-64-bits",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: key 'seed': expected 0 <= seed",
        run_config(f"seed: {2**64}\n"),
    ),
    Case(
        "run-config-seed-bool",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: key 'seed'",
        run_config("seed: true\n"),
    ),
    Case(
        "run-config-time-negative",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: key 'time_limit'",
        run_config("time_limit: -5\n"),
    ),
    Case(
        "run-config-gap-reversed",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: ",
        run_config("nemesis: {faults: [partition], schedule: {gap_s: [3, 1]}}\n"),
    ),
    Case(
        "run-config-tolerance-word",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: ",
        run_config("check: {tolerance_ns: lots}\n"),
    ),
    Case(
        "run-config-not-utf8",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: not UTF-8",
        run_config(b"seed: \xff\xfe\n"),
    ),
    Case(
        "run-config-discipline",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: ",
        run_config("workload: {discipline: reckless}\n"),
    ),
    Case(
        "run-config-fencing-word",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: ",
        run_config("resource: {fencing: 'yes'}\n"),
    ),
    Case(
        "run-config-tabs",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml:2: invalid YAML",
        run_config("nemesis:\n\tfaults: [kill]\n"),
    ),
    Case(
        "run-valid-config-bad-store",
        ["run", "--config", "c.yaml", "--backend", "local", "--store", "s"],
        2,
        r"harness run: --store s: not a directory",
        {"c.yaml": "target: reference\n", "s": "a file\n"},
    ),
    Case(
        "run-config-server-not-mapping",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: ",
        run_config("target: etcd\nserver: 42\n"),
    ),
]

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n"
    for i in range(8)
)  # 9**9 strings from under 500 bytes
DEEP_YAML = "[" * 20_000 + "]" * 20_000 + "\n"
HOST_FILE = "secret-host-content-line\n" * 50

YAML_BOUNDS: list[Case] = [
    Case(
        "run-config-alias-bomb",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml:6: refused: its aliases expand it beyond",
        run_config(ALIAS_BOMB),
    ),
    Case(
        "run-config-nested-20000",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml:1: invalid YAML: exceeded maximum nesting depth",
        run_config(DEEP_YAML),
    ),
    Case(
        "run-config-dev-zero",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: cannot read: not a regular file",
        {"c.yaml": Link("/dev/zero")},
    ),
    Case(
        "run-config-fifo",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: cannot read: not a regular file",
        {"c.yaml": Fifo()},
    ),
    Case(
        "run-config-server-is-a-host-file",
        ["run", "--config", "c.yaml"],
        2,
        r"harness run: c.yaml: key 'server': host.txt holds a string",
        {"c.yaml": "target: reference\nserver: host.txt\n", "host.txt": HOST_FILE},
    ),
    Case(
        "suite-alias-bomb",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml:6: refused: its aliases expand it beyond",
        suite(ALIAS_BOMB),
    ),
    Case(
        "suite-nested-20000",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml:1: invalid YAML: exceeded maximum nesting depth",
        suite(DEEP_YAML),
    ),
    Case(
        "suite-config-is-a-host-file",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: case 1 \('a'\): key 'config': host.txt: expected a mapping",
        {"s.yaml": "name: x\ncases:\n  - {name: a, config: host.txt}\n", "host.txt": HOST_FILE},
    ),
]

SUITE: list[Case] = [
    Case("suite-missing", ["suite", "nope.yaml"], 2, r"harness suite: nope.yaml: "),
    Case("suite-a-list", ["suite", "s.yaml"], 2, r"harness suite: s.yaml: ", suite("- 1\n")),
    Case(
        "suite-no-cases",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ncases: []\n"),
    ),
    Case(
        "suite-case-not-a-mapping",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ncases:\n  - 5\n"),
    ),
    Case(
        "suite-duplicate-names",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite(
            "name: x\ncases:\n  - {name: a, target: reference}\n  - {name: a, target: reference}\n"
        ),
    ),
    Case(
        "suite-unknown-expectation",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ncases:\n  - {name: a, target: reference, expect: {fast: true}}\n"),
    ),
    Case(
        "suite-runs-zero",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ncases:\n  - {name: a, target: reference, runs: 0}\n"),
    ),
    Case(
        "suite-seeds-words",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ncases:\n  - {name: a, target: reference, seeds: [a]}\n"),
    ),
    Case(
        "suite-tolerance-word",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite(
            "name: x\ntolerance: {failover_p99_pct: lots}\n"
            "cases:\n  - {name: a, target: reference}\n"
        ),
    ),
    Case(
        "suite-defaults-runs-negative",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite("name: x\ndefaults: {runs: -1}\ncases:\n  - {name: a, target: reference}\n"),
    ),
    Case(
        "suite-case-seed-beyond-64-bits",
        ["suite", "s.yaml"],
        2,
        r"harness suite: s.yaml: ",
        suite(f"name: x\ncases:\n  - {{name: a, target: reference, seeds: [{2**64}]}}\n"),
    ),
    Case(
        "suite-config-not-a-run-config",
        ["suite", "s.yaml"],
        2,
        r"harness suite: ",
        {
            "s.yaml": "name: x\ncases:\n  - {name: a, config: p.txt}\n",
            "p.txt": "root:x:0:0::/root:/bin/sh\n",
        },
    ),
    Case(
        "suite-runs-option-zero",
        ["suite", "s.yaml", "--runs", "0"],
        2,
        r"harness suite: argument --runs: expected 1 to 1000",
        suite(SUITE_OK),
    ),
    Case(
        "suite-runs-option-huge",
        ["suite", "s.yaml", "--runs", "5000"],
        2,
        r"harness suite: argument --runs: expected 1 to 1000",
        suite(SUITE_OK),
    ),
    Case(
        "suite-baseline-missing",
        ["suite", "s.yaml", "--baseline", "nope"],
        2,
        r"harness suite: --baseline nope: no such directory",
        suite(SUITE_OK),
    ),
    Case(
        "suite-baseline-wrong-types",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: 'figures.failover_p99_ns': expected nanoseconds or null",
        {"s.yaml": SUITE_OK, "b/s/safe.json": baseline({"runs": 3, "failover_p99_ns": "fast"})},
    ),
    Case(
        "suite-baseline-pct-string",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: 'figures.leaderless_pct': expected a percentage",
        {"s.yaml": SUITE_OK, "b/s/safe.json": baseline({"leaderless_pct": "5"})},
    ),
    Case(
        "suite-baseline-pct-500",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: 'figures.leaderless_pct': expected a percentage",
        {"s.yaml": SUITE_OK, "b/s/safe.json": baseline({"leaderless_pct": 500})},
    ),
    Case(
        "suite-baseline-kinds-list",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: 'figures.kinds': expected an object of counts",
        {"s.yaml": SUITE_OK, "b/s/safe.json": baseline({"kinds": ["split-brain"]})},
    ),
    Case(
        "suite-baseline-not-json",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: ",
        {"s.yaml": SUITE_OK, "b/s/safe.json": "{oops"},
    ),
    Case(
        "suite-baseline-list",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: expected an object, got \[1\]",
        {"s.yaml": SUITE_OK, "b/s/safe.json": "[1]"},
    ),
    Case(
        "suite-baseline-format-99",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: unknown baseline format 99",
        {"s.yaml": SUITE_OK, "b/s/safe.json": baseline({}, fmt=99)},
    ),
    Case(
        "suite-baseline-figures-string",
        ["suite", "s.yaml", "--baseline", "b"],
        2,
        r"harness suite: b/s/safe.json: 'figures': expected an object",
        {"s.yaml": SUITE_OK, "b/s/safe.json": json.dumps({"format": 1, "figures": "x"})},
    ),
    Case(
        "suite-store-is-a-file",
        ["suite", "s.yaml", "--store", "f"],
        2,
        r"harness suite: --store f: not a directory",
        {"s.yaml": SUITE_OK, "f": "x"},
    ),
]

OTHER: list[Case] = [
    Case("no-command", [], 2, r"harness: the following arguments are required: COMMAND"),
    Case("unknown-command", ["frobnicate"], 2, r"harness: argument COMMAND: invalid choice"),
    Case(
        "image-without-action", ["image"], 2, r"harness image: the following arguments are required"
    ),
    Case(
        "unknown-option",
        ["check", "--colour", "h.jsonl"],
        2,
        r"harness: unrecognized arguments: --colour",
    ),
]

CASES: list[Case] = CHECK + CHECKER_BOUNDS + REPORT + RUN + YAML_BOUNDS + SUITE + OTHER
