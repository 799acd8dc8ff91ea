"""Malformed input: every case is refused with its file line and what is wrong."""

from __future__ import annotations

import pytest

from harness.checker import check
from harness.history import MalformedHistory, parse_lines

GOOD_INVOKE = b'{"time": 1, "process": "a", "type": "invoke", "f": "acquire"}'


def problems_of(*lines: bytes | str) -> list[tuple[int | None, str]]:
    with pytest.raises(MalformedHistory) as err:
        check(parse_lines(list(lines)))
    return [(p.line, p.message) for p in err.value.problems]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b'{"time": 1, "process": "a", "type": "ok"', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "expected a JSON object"),
        (b'{"process": "a", "type": "ok", "f": "x"}', "missing required field 'time'"),
        (b'{"time": 1, "type": "ok", "f": "x"}', "missing required field 'process'"),
        (b'{"time": 1, "process": "a", "f": "x"}', "missing required field 'type'"),
        (b'{"time": 1, "process": "a", "type": "ok"}', "missing required field 'f'"),
        (b'{"time": 1.5, "process": "a", "type": "info", "f": "x"}', "field 'time' must be"),
        (b'{"time": 1.0, "process": "a", "type": "info", "f": "x"}', "field 'time' must be"),
        (b'{"time": "1", "process": "a", "type": "info", "f": "x"}', "field 'time' must be"),
        (b'{"time": true, "process": "a", "type": "info", "f": "x"}', "got a boolean"),
        (b'{"time": 1, "process": [1], "type": "info", "f": "x"}', "field 'process' must be"),
        (b'{"time": 1, "process": null, "type": "info", "f": "x"}', "field 'process' must be"),
        (b'{"time": 1, "process": true, "type": "info", "f": "x"}', "field 'process' must be"),
        (b'{"time": 1, "process": "a", "type": "done", "f": "x"}', "field 'type' must be"),
        (b'{"time": 1, "process": "a", "type": "info", "f": 3}', "field 'f' must be"),
        (b'{"time": 1, "process": "a", "type": "info", "f": "x", "value": [1]}', "'value'"),
        (b'{"time": 1, "process": "a", "type": "info", "f": "x", "node": 1}', "'node'"),
        (b'{"time": 1, "process": "a", "type": "info", "f": "x", "index": "1"}', "'index'"),
        (b'{"time": 1, "process": "a", "type": "info", "f": "x", "election": 2}', "'election'"),
    ],
)
def test_bad_fields_are_reported_with_line(line: bytes, expected: str) -> None:
    found = problems_of(GOOD_INVOKE, b"", line)
    assert found[0][0] == 3  # the blank line still counts as a file line
    assert expected in found[0][1]


def test_every_bad_line_is_reported() -> None:
    found = problems_of(b"x", GOOD_INVOKE, b"y", b"{}")
    assert [line for line, _ in found] == [1, 3, 4]


@pytest.mark.parametrize(
    ("lines", "bad_line", "expected"),
    [
        (
            [b'{"time": 1, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}}'],
            1,
            "completes no open invoke",
        ),
        (
            [b'{"time": 1, "process": "a", "type": "info", "f": "write"}'],
            1,
            "completes no open invoke",
        ),
        (
            [
                GOOD_INVOKE,
                b'{"time": 2, "process": "a", "type": "invoke", "f": "write", '
                b'"value": {"token": 1}}',
            ],
            2,
            "second invoke",
        ),
        (
            [GOOD_INVOKE, b'{"time": 2, "process": "a", "type": "ok", "f": "release"}'],
            2,
            "does not match its open 'acquire' invoke at line 1",
        ),
        (
            [GOOD_INVOKE, b'{"time": 2, "process": "a", "type": "ok", "f": "acquire"}'],
            2,
            "needs value.token",
        ),
        (
            [
                GOOD_INVOKE,
                b'{"time": 2, "process": "a", "type": "ok", "f": "acquire", '
                b'"value": {"token": "7"}}',
            ],
            2,
            "needs value.token",
        ),
        (
            [b'{"time": 1, "process": "a", "type": "invoke", "f": "write", "value": {"seq": 1}}'],
            1,
            "write invoke needs value.token",
        ),
        (
            [
                b'{"time": 1, "process": "a", "type": "invoke", "f": "write", '
                b'"value": {"token": 1}}',
                b'{"time": 2, "process": "a", "type": "ok", "f": "write", '
                b'"value": {"applied_at": 1.5}}',
            ],
            2,
            "applied_at",
        ),
        (
            [b'{"time": 1, "process": "p", "type": "ok", "f": "status", "value": {"node": "n1"}}'],
            1,
            "status needs value",
        ),
        (
            [
                b'{"time": 1, "process": "p", "type": "ok", "f": "status", '
                b'"value": {"node": "n1", "term": 1}}'
            ],
            1,
            "value.leader",
        ),
        (
            [
                b'{"time": 1, "process": "p", "type": "info", "f": "status", '
                b'"value": {"node": "n1", "leader": null, "term": 1}}'
            ],
            1,
            'must have type "ok"',
        ),
        (
            [b'{"time": 1, "process": "a", "type": "ok", "f": "lost"}'],
            1,
            'must have type "info"',
        ),
        (
            [b'{"time": 1, "process": "a", "type": "invoke", "f": "crash"}'],
            1,
            'must have type "info"',
        ),
        (
            [GOOD_INVOKE, b'{"time": 1, "process": "a", "type": "info", "f": "lost"}'],
            2,
            "strictly ordered in time",
        ),
        (
            [
                b'{"time": 1, "process": "a", "type": "info", "f": "x", "index": 5}',
                b'{"time": 2, "process": "a", "type": "info", "f": "x"}',
                b'{"time": 3, "process": "a", "type": "info", "f": "x", "index": 5}',
            ],
            3,
            "index 5 does not increase",
        ),
        (
            [
                b'{"time": 1, "process": "a", "type": "invoke", "f": "acquire", "election": "x"}',
                b'{"time": 2, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}}',
            ],
            2,
            "election",
        ),
    ],
)
def test_structural_problems_are_reported_with_line(
    lines: list[bytes], bad_line: int, expected: str
) -> None:
    found = problems_of(*lines)
    assert any(line == bad_line and expected in msg for line, msg in found), found


def test_events_out_of_file_order_are_paired_by_time() -> None:
    # The ok comes first in the file but later in time: well-formed.
    verdict = check(
        parse_lines(
            [
                b'{"time": 9, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}}',
                GOOD_INVOKE,
            ]
        )
    )
    assert verdict["valid"] is True


def test_unknown_operations_are_kept_and_ignored_but_paired() -> None:
    verdict = check(
        parse_lines(
            [
                b'{"time": 1, "process": "a", "type": "invoke", "f": "read"}',
                b'{"time": 2, "process": "a", "type": "ok", "f": "read", "value": {"x": 1}}',
                b'{"time": 3, "process": "a", "type": "info", "f": "heartbeat"}',
                GOOD_INVOKE.replace(b'"time": 1', b'"time": 4'),
            ]
        )
    )
    assert verdict["valid"] is True
    with pytest.raises(MalformedHistory):
        check(parse_lines([b'{"time": 1, "process": "a", "type": "ok", "f": "read"}']))


def test_crash_closes_the_operation_in_flight() -> None:
    verdict = check(
        parse_lines(
            [
                GOOD_INVOKE,
                b'{"time": 2, "process": "a", "type": "info", "f": "crash"}',
                b'{"time": 3, "process": "a", "type": "invoke", "f": "acquire"}',
            ]
        )
    )
    assert verdict["valid"] is True


def test_nemesis_events_are_never_paired() -> None:
    verdict = check(
        parse_lines(
            [
                b'{"time": 1, "process": "nemesis", "type": "info", "f": "start-partition",'
                b' "value": {"groups": [["n1"], ["n2", "n3"]]}}',
                b'{"time": 2, "process": "nemesis", "type": "info", "f": "stop-partition"}',
                GOOD_INVOKE.replace(b'"time": 1', b'"time": 3'),
            ]
        )
    )
    assert verdict["valid"] is True
    assert verdict["stats"]["nemesis_events"] == 2
