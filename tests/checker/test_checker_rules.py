"""Each rule of docs/HISTORY.md on small hand-written histories, both sides of each line."""

from __future__ import annotations

from harness.testing.histories import acquired, info, inv, kinds, ok, status, verdict


def test_one_leader_then_release_is_valid() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "release"),
        ok(30, "a", "release"),
        *acquired(25, 40, "b", 2),
    )
    assert v["valid"] is True
    assert v["violations"] == []


def test_nothing_to_judge_is_unknown() -> None:
    v = verdict(info(0, "nemesis", "start-partition"), inv(5, "c", "read"), ok(6, "c", "read"))
    assert v["valid"] == "unknown"


def test_empty_history_is_unknown() -> None:
    assert verdict()["valid"] == "unknown"


def test_a_lone_acquire_invoke_is_something_to_judge() -> None:
    assert verdict(inv(0, "a", "acquire"))["valid"] is True


# --- split-brain ------------------------------------------------------------------


def test_overlapping_beliefs_are_split_brain_with_span() -> None:
    v = verdict(*acquired(0, 10, "a", 1), *acquired(5, 20, "b", 2), info(50, "a", "lost"))
    assert kinds(v) == ["split-brain"]
    (sb,) = v["violations"]
    assert sb["processes"] == ["a", "b"]
    assert (sb["start"], sb["end"]) == (20, 50)
    assert sb["election"] == "leader"


def test_belief_runs_to_end_of_history() -> None:
    # a never says it stopped; b's acquisition at 100 overlaps a's belief until 200.
    v = verdict(*acquired(0, 10, "a", 1), *acquired(90, 100, "b", 2), info(200, "x", "noop"))
    assert kinds(v) == ["split-brain"]
    assert v["violations"][0]["end"] == 200


def test_touching_beliefs_are_not_split_brain() -> None:
    v = verdict(*acquired(0, 10, "a", 1), info(20, "a", "lost"), *acquired(15, 20, "b", 2))
    assert "split-brain" not in kinds(v)


def test_tolerance_allows_short_overlap_only() -> None:
    history = [*acquired(0, 10, "a", 1), *acquired(5, 20, "b", 2), info(25, "a", "lost")]
    assert "split-brain" in kinds(verdict(*history, tolerance_ns=4))
    assert "split-brain" not in kinds(verdict(*history, tolerance_ns=5))


def test_each_way_of_ending_a_belief() -> None:
    for ending in (
        [inv(20, "a", "release")],
        [info(20, "a", "lost")],
        [info(20, "a", "crash")],
        [inv(20, "a", "acquire")],
    ):
        v = verdict(*acquired(0, 10, "a", 1), *ending, *acquired(21, 30, "b", 2))
        assert v["valid"] is True, ending
        with_overlap = verdict(*acquired(0, 10, "a", 1), *ending, *acquired(15, 19, "b", 2))
        assert kinds(with_overlap) == ["split-brain"], ending


def test_release_completion_does_not_end_belief_twice_or_late() -> None:
    # The belief ends at the release invoke (20), not its ok (40).
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "release"),
        ok(40, "a", "release"),
        *acquired(25, 30, "b", 2),
    )
    assert v["valid"] is True


def test_failed_and_indeterminate_acquisitions_give_no_belief() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(11, "b", "acquire"),
        {"time": 12, "process": "b", "type": "fail", "f": "acquire"},
        inv(13, "c", "acquire"),
        info(14, "c", "acquire"),
    )
    assert v["valid"] is True


def test_same_process_cannot_split_brain_with_itself() -> None:
    v = verdict(*acquired(0, 10, "a", 1), *acquired(20, 30, "a", 2))
    assert v["valid"] is True


def test_elections_are_judged_separately() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1, election="x"),
        *acquired(0 + 1, 11, "b", 1, election="y"),
    )
    assert v["valid"] is True
    same = verdict(*acquired(0, 10, "a", 1), *acquired(1, 11, "b", 2), info(20, "a", "lost"))
    assert kinds(same) == ["split-brain"]


def test_lost_in_another_election_does_not_end_belief() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1, election="x"),
        info(20, "a", "lost", election="y"),
        *acquired(30, 40, "b", 2, election="x"),
        info(50, "b", "lost", election="x"),
    )
    assert kinds(v) == ["split-brain"]


def test_crash_ends_beliefs_in_every_election() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1, election="x"),
        info(20, "a", "crash"),
        *acquired(30, 40, "b", 2, election="x"),
    )
    assert v["valid"] is True


# --- duplicate-token -----------------------------------------------------------------


def test_same_token_to_two_processes() -> None:
    v = verdict(*acquired(0, 10, "a", 7), info(15, "a", "lost"), *acquired(20, 30, "b", 7))
    assert kinds(v) == ["duplicate-token"]
    assert v["violations"][0]["processes"] == ["a", "b"]


def test_same_token_to_same_process_is_fine() -> None:
    v = verdict(*acquired(0, 10, "a", 7), info(15, "a", "lost"), *acquired(20, 30, "a", 7))
    assert v["valid"] is True


def test_same_token_in_different_elections_is_fine() -> None:
    v = verdict(*acquired(0, 10, "a", 7, election="x"), *acquired(20, 30, "b", 7, election="y"))
    assert v["valid"] is True


# --- token-regression ----------------------------------------------------------------


def test_smaller_token_after_an_ok_regresses() -> None:
    v = verdict(*acquired(0, 10, "a", 5), info(15, "a", "lost"), *acquired(20, 30, "b", 4))
    assert kinds(v) == ["token-regression"]
    assert v["violations"][0]["processes"] == ["b", "a"]
    assert (v["violations"][0]["start"], v["violations"][0]["end"]) == (10, 30)


def test_concurrent_acquisitions_may_end_in_any_token_order() -> None:
    # b invoked before a's ok: not a regression even though 4 < 5.
    v = verdict(
        inv(0, "a", "acquire"),
        inv(5, "b", "acquire"),
        ok(10, "a", "acquire", {"token": 5}),
        info(15, "a", "lost"),
        ok(30, "b", "acquire", {"token": 4}),
    )
    assert "token-regression" not in kinds(v)


def test_regression_by_the_same_process_counts() -> None:
    v = verdict(*acquired(0, 10, "a", 5), info(15, "a", "lost"), *acquired(20, 30, "a", 3))
    assert kinds(v) == ["token-regression"]
    assert v["violations"][0]["processes"] == ["a"]


def test_equal_time_invoke_after_ok_in_file_order() -> None:
    # Same time: order is (time, index, file line), so b's invoke comes after a's ok.
    v = verdict(
        inv(0, "a", "acquire"),
        ok(10, "a", "acquire", {"token": 5}),
        inv(10, "b", "acquire"),
        info(12, "a", "lost"),
        ok(20, "b", "acquire", {"token": 4}),
    )
    assert "token-regression" in kinds(v)
    before = verdict(
        inv(0, "a", "acquire"),
        inv(10, "b", "acquire"),
        ok(10, "a", "acquire", {"token": 5}),
        info(12, "a", "lost"),
        ok(20, "b", "acquire", {"token": 4}),
    )
    assert "token-regression" not in kinds(before)


# --- stale-write ---------------------------------------------------------------------


def test_write_applied_after_a_greater_token_was_granted() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "write", {"token": 1, "seq": 0}),
        *acquired(21, 30, "b", 2),
        ok(50, "a", "write", {"applied_at": 40}),
    )
    assert "stale-write" in kinds(v)
    (sw,) = [x for x in v["violations"] if x["kind"] == "stale-write"]
    assert sw["processes"] == ["a", "b"]


def test_write_applied_before_the_grant_is_not_stale() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "write", {"token": 1, "seq": 0}),
        *acquired(21, 30, "b", 2),
        ok(50, "a", "write", {"applied_at": 25}),
    )
    assert "stale-write" not in kinds(v)
    at_the_same_time = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "write", {"token": 1, "seq": 0}),
        *acquired(21, 30, "b", 2),
        ok(50, "a", "write", {"applied_at": 30}),
    )
    assert "stale-write" not in kinds(at_the_same_time)


def test_without_applied_at_the_invoke_time_decides() -> None:
    late = verdict(
        *acquired(0, 10, "a", 1),
        *acquired(11, 20, "b", 2),
        inv(30, "a", "write", {"token": 1, "seq": 0}),
        ok(40, "a", "write"),
    )
    assert "stale-write" in kinds(late)
    early = verdict(
        *acquired(0, 10, "a", 1),
        inv(15, "a", "write", {"token": 1, "seq": 0}),
        *acquired(11, 20, "b", 2),
        ok(40, "a", "write"),
    )
    assert "stale-write" not in kinds(early)


def test_failed_and_unknown_writes_are_never_stale() -> None:
    for etype in ("fail", "info"):
        v = verdict(
            *acquired(0, 10, "a", 1),
            *acquired(11, 20, "b", 2),
            inv(30, "a", "write", {"token": 1, "seq": 0}),
            {"time": 40, "process": "a", "type": etype, "f": "write"},
        )
        assert "stale-write" not in kinds(v)
    v = verdict(
        *acquired(0, 10, "a", 1),
        *acquired(11, 20, "b", 2),
        inv(30, "a", "write", {"token": 1, "seq": 0}),
        info(40, "a", "write"),
    )
    assert v["stats"]["writes_indeterminate"] == 1


def test_greater_token_of_the_same_process_does_not_make_a_write_stale() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        info(11, "a", "lost"),
        *acquired(12, 20, "a", 2),
        inv(30, "a", "write", {"token": 1, "seq": 0}),
        ok(40, "a", "write"),
    )
    assert "stale-write" not in kinds(v)


def test_stale_write_by_a_process_that_never_led() -> None:
    v = verdict(
        *acquired(0, 10, "a", 5),
        inv(30, "z", "write", {"token": 2, "seq": 0}),
        ok(40, "z", "write", {"applied_at": 35}),
    )
    assert kinds(v) == ["stale-write"]


def test_write_with_a_greater_token_than_the_grant_is_fine() -> None:
    v = verdict(
        *acquired(0, 10, "a", 5),
        inv(30, "z", "write", {"token": 5, "seq": 0}),
        ok(40, "z", "write"),
    )
    assert v["valid"] is True


# --- term-split-brain ------------------------------------------------------------------


def test_two_leaders_named_for_one_term() -> None:
    v = verdict(status(0, "n1", "n1", 3), status(1, "n2", "n2", 3, p="probe2"))
    assert kinds(v) == ["term-split-brain"]
    assert v["violations"][0]["election"] is None
    assert sorted(v["violations"][0]["processes"]) == ["n1", "n2"]


def test_null_leaders_and_different_terms_are_fine() -> None:
    v = verdict(
        status(0, "n1", "n1", 3),
        status(1, "n2", None, 3),
        status(2, "n3", "n2", 4),
    )
    assert v["valid"] is True


# --- stale-leader --------------------------------------------------------------------


def test_member_calls_itself_leader_after_a_higher_term_was_seen() -> None:
    v = verdict(status(0, "n2", "n2", 5), status(10, "n1", "n1", 4))
    assert kinds(v) == ["stale-leader"]
    sl = v["violations"][0]
    assert sl["processes"] == ["n1", "n2"]
    assert sl["start"] == 10


def test_stale_leader_grace_is_strict() -> None:
    history = [status(0, "n2", "n2", 5), status(10, "n1", "n1", 4)]
    assert kinds(verdict(*history, stale_grace_ns=9)) == ["stale-leader"]
    assert verdict(*history, stale_grace_ns=10)["valid"] is True


def test_higher_term_seen_later_is_not_stale() -> None:
    v = verdict(status(0, "n1", "n1", 4), status(10, "n2", "n2", 5))
    assert v["valid"] is True


def test_report_about_another_member_is_not_a_self_report() -> None:
    # n3 still names n1 for term 4 after term 5 was seen: not n1 reporting itself.
    v = verdict(status(0, "n2", "n2", 5), status(10, "n3", "n1", 4))
    assert v["valid"] is True


def test_same_leader_in_higher_term_is_not_another_leader() -> None:
    v = verdict(status(0, "n2", "n1", 5), status(10, "n1", "n1", 4))
    assert v["valid"] is True


def test_repeated_stale_reports_are_one_violation_spanning_them() -> None:
    v = verdict(
        status(0, "n2", "n2", 5),
        status(10, "n1", "n1", 4),
        status(20, "n1", "n1", 4),
        status(30, "n1", "n1", 4),
    )
    assert kinds(v) == ["stale-leader"]
    assert (v["violations"][0]["start"], v["violations"][0]["end"]) == (10, 30)


# --- stats ---------------------------------------------------------------------------


def test_stats_leaderless_and_failover() -> None:
    v = verdict(
        *acquired(0, 100, "a", 1),
        info(300, "a", "lost"),
        *acquired(250, 400, "b", 2),
        inv(500, "b", "release"),
        *acquired(600, 700, "c", 3),
        inv(1000, "c", "release"),
        info(1100, "nemesis", "stop-partition"),
    )
    s = v["stats"]
    assert s["acquisitions"] == 3
    # span 0..1100; beliefs [100,300) [400,500) [700,1000) cover 600.
    assert s["span_ns"] == 1100
    assert s["leaderless_ns"] == 500
    fo = s["failover_ns"]
    assert fo["count"] == 2 and fo["unrecovered"] == 1
    assert (fo["p50"], fo["p99"], fo["max"]) == (100, 200, 200)


def test_handover_before_end_counts_zero_failover() -> None:
    v = verdict(*acquired(0, 10, "a", 1), *acquired(5, 20, "b", 2), info(30, "a", "lost"))
    assert v["stats"]["failover_ns"]["max"] == 0


def test_violations_have_the_contract_fields() -> None:
    v = verdict(*acquired(0, 10, "a", 1), *acquired(5, 20, "b", 2))
    for violation in v["violations"]:
        assert set(violation) >= {"kind", "election", "processes", "start", "end", "detail"}
        assert isinstance(violation["detail"], str) and violation["detail"]


# --- the events that prove each violation ----------------------------------------------


def _cited(v: dict) -> list[tuple]:
    return [(e["line"], e["process"], e["type"], e["f"]) for e in v["events"]]


def test_split_brain_cites_both_beliefs_bounds() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),  # lines 1, 2
        *acquired(5, 20, "b", 2),  # lines 3, 4
        info(50, "a", "lost"),  # line 5
        inv(60, "b", "release"),  # line 6
    )
    (sb,) = v["violations"]
    assert _cited(sb) == [
        (2, "a", "ok", "acquire"),
        (4, "b", "ok", "acquire"),
        (5, "a", "info", "lost"),
        (6, "b", "invoke", "release"),
    ]
    assert sb["events"][0]["value"] == {"token": 1}


def test_belief_open_at_the_end_cites_only_its_start() -> None:
    v = verdict(*acquired(0, 10, "a", 1), *acquired(90, 100, "b", 2), info(200, "x", "noop"))
    assert _cited(v["violations"][0]) == [(2, "a", "ok", "acquire"), (4, "b", "ok", "acquire")]


def test_token_regression_and_duplicate_cite_grants() -> None:
    v = verdict(*acquired(0, 10, "a", 5), info(15, "a", "lost"), *acquired(20, 30, "b", 4))
    assert _cited(v["violations"][0]) == [
        (2, "a", "ok", "acquire"),
        (4, "b", "invoke", "acquire"),
        (5, "b", "ok", "acquire"),
    ]
    v = verdict(*acquired(0, 10, "a", 5), info(15, "a", "lost"), *acquired(20, 30, "b", 5))
    (dup,) = [x for x in v["violations"] if x["kind"] == "duplicate-token"]
    assert _cited(dup) == [(2, "a", "ok", "acquire"), (5, "b", "ok", "acquire")]


def test_stale_write_cites_grant_and_write() -> None:
    v = verdict(
        *acquired(0, 10, "a", 1),
        inv(20, "a", "write", {"token": 1, "seq": 0}),
        *acquired(21, 30, "b", 2),
        ok(50, "a", "write", {"applied_at": 40}),
    )
    (sw,) = [x for x in v["violations"] if x["kind"] == "stale-write"]
    assert _cited(sw) == [
        (3, "a", "invoke", "write"),
        (5, "b", "ok", "acquire"),
        (6, "a", "ok", "write"),
    ]


def test_server_level_kinds_cite_status_observations() -> None:
    v = verdict(status(0, "n1", "n1", 3), status(1, "n2", "n2", 3, p="probe2"))
    assert [e["line"] for e in v["violations"][0]["events"]] == [1, 2]
    v = verdict(status(0, "n2", "n2", 5), status(10, "n1", "n1", 4), status(20, "n1", "n1", 4))
    assert [e["line"] for e in v["violations"][0]["events"]] == [1, 2, 3]
