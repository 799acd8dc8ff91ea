"""The candidate workload (workloads/candidate.py) without a network.

A fake ElectionClient, a fake resource (httpx.MockTransport), a real Recorder writing a
history file, a real SkewClock, and a fake monotonic clock and sleep so that time passes
only when the test says (and a pause can be put between any two clock readings).
"""

from __future__ import annotations

import json
import random
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.checker import check
from harness.history import read_history
from harness.history.writer import HistoryWriter
from harness.recorder import Recorder, RefClock
from harness.skewclock import Skew, SkewClock, write_skew
from harness.workloads.candidate import MS, Candidate
from harness.workloads.clients.base import ClientError, Grant, LeaseState
from harness.workloads.settings import CandidateSettings

S = 1_000_000_000
ORIGIN = 1_000 * S  # the fake monotonic clock's reading when the run began


class FakeTime:
    """Monotonic ns that advance only on sleep, or by `pause_ns` at reading number `pause_at`."""

    def __init__(self, start: int = ORIGIN + S) -> None:
        self.now = start
        self.calls = 0
        self.pause_at: int | None = None
        self.pause_ns = 0

    def monotonic_ns(self) -> int:
        if self.calls == self.pause_at:
            self.now += self.pause_ns
        self.calls += 1
        self.now += 1_000  # every reading takes a microsecond
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += int(seconds * S)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    ft = FakeTime()
    clock_ns = types.SimpleNamespace(monotonic_ns=ft.monotonic_ns)
    monkeypatch.setattr("harness.skewclock.time", clock_ns)
    monkeypatch.setattr("harness.recorder.time", clock_ns)
    monkeypatch.setattr(
        "harness.workloads.candidate.time",
        types.SimpleNamespace(sleep=ft.sleep, monotonic_ns=ft.monotonic_ns),
    )
    return ft


@dataclass
class FakeClient:
    """Scripted answers: each list is consumed in order; the last answer repeats."""

    grants: list[Grant | Exception | None] = field(default_factory=list)
    states: list[LeaseState | Exception] = field(default_factory=list)
    resign_error: Exception | None = None
    calls: list[str] = field(default_factory=list)
    on_check: Callable[[], None] | None = None

    @staticmethod
    def _next(items: list[Any]) -> Any:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    def campaign(self, timeout_s: float) -> Grant | None:
        self.calls.append("campaign")
        return self._next(self.grants)  # type: ignore[no-any-return]

    def check(self) -> LeaseState:
        self.calls.append("check")
        if self.on_check is not None:
            self.on_check()
        return self._next(self.states)  # type: ignore[no-any-return]

    def resign(self) -> None:
        self.calls.append("resign")
        if self.resign_error is not None:
            raise self.resign_error

    def close(self) -> None:
        pass


Handler = Callable[[httpx.Request], httpx.Response]


class Rig:
    """One candidate, its history file and the requests its resource received."""

    def __init__(
        self,
        tmp_path: Path,
        client: FakeClient,
        settings: CandidateSettings,
        handler: Handler | None = None,
        clock_file: Path | None = None,
    ) -> None:
        self.path = tmp_path / f"p1-{id(self)}.jsonl"
        self.ref = RefClock(ORIGIN)
        self.recorder = Recorder(HistoryWriter(self.path), self.ref)
        self.requests: list[dict[str, Any]] = []
        self.handler = handler or self.apply

        def transport(request: httpx.Request) -> httpx.Response:
            self.requests.append(json.loads(request.content))
            return self.handler(request)

        self.resource = httpx.Client(
            base_url="http://resource.test", transport=httpx.MockTransport(transport)
        )
        self.candidate = Candidate(
            process=1,
            node="n1",
            client=client,
            resource=self.resource,
            recorder=self.recorder,
            clock=SkewClock(clock_file),
            settings=settings,
            rng=random.Random(1),
        )

    def apply(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"applied_at": self.ref.now()})

    def events(self) -> list[dict[str, Any]]:
        self.recorder.writer.flush()
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def close(self) -> None:
        self.recorder.close()
        self.resource.close()


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(client: FakeClient, settings: CandidateSettings | None = None, **kw: Any) -> Rig:
        rig = Rig(tmp_path, client, settings or CandidateSettings(hold_s=(100.0, 100.0)), **kw)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def shape(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["f"]) for e in events]


def assert_checks_valid(rig: Rig) -> None:
    rig.recorder.writer.flush()
    verdict = check(read_history(rig.path))
    assert verdict["valid"] is True, verdict["violations"]


LEADER = LeaseState(leader=True, token=7, remaining_ns=None)


# --- campaign ------------------------------------------------------------------------


def test_campaign_ok_records_the_token_and_deadline(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    rig = rigs(FakeClient(grants=[Grant(token=7, lease_ns=2 * S)]))
    before = fake_time.now
    token, deadline = rig.candidate.campaign()
    assert token == 7
    assert deadline is not None
    margin = rig.candidate.s.lease_margin_ms * MS
    # Timed from when the request was sent: after `before`, before the ok event.
    assert before + 2 * S - margin < deadline < fake_time.now + 2 * S - margin
    events = rig.events()
    assert shape(events) == [("invoke", "acquire"), ("ok", "acquire")]
    assert events[1]["value"] == {"token": 7}
    assert all(e["process"] == 1 and e["node"] == "n1" for e in events)
    assert events[0]["time"] < events[1]["time"]


def test_campaign_without_a_lease_bound(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeClient(grants=[Grant(token=3, lease_ns=None)]))
    assert rig.candidate.campaign() == (3, None)


def test_campaign_lost_records_fail(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeClient(grants=[None]))
    assert rig.candidate.campaign() == (None, None)
    assert shape(rig.events()) == [("invoke", "acquire"), ("fail", "acquire")]


def test_campaign_error_records_info(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeClient(grants=[ClientError("timed out after 2 s")]))
    assert rig.candidate.campaign() == (None, None)
    events = rig.events()
    assert shape(events) == [("invoke", "acquire"), ("info", "acquire")]
    assert "timed out" in events[1]["value"]["error"]


class _Stop(Exception):
    """Ends run_forever in a test (not a ClientError, so campaign() lets it through)."""


@pytest.mark.parametrize(("wait_s", "pauses"), [(2.0, False), (1.5, True), (0.0, True)])
def test_a_campaign_that_waited_out_its_timeout_asks_again_at_once(
    fake_time: FakeTime,
    rigs: Callable[..., Rig],
    monkeypatch: pytest.MonkeyPatch,
    wait_s: float,
    pauses: bool,
) -> None:
    """A long poll that found the place taken re-campaigns with no pause (a pause would
    leave a vacancy unclaimed); a quick refusal backs off 50-200 ms."""
    slept: list[float] = []
    asked: list[int] = []

    class Waiting(FakeClient):
        def campaign(self, timeout_s: float) -> Grant | None:
            asked.append(fake_time.now)
            if len(asked) > 3:
                raise _Stop
            fake_time.now += int(wait_s * S)  # the member kept the call this long
            return None

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake_time.sleep(seconds)

    monkeypatch.setattr(
        "harness.workloads.candidate.time",
        types.SimpleNamespace(sleep=sleep, monotonic_ns=fake_time.monotonic_ns),
    )
    rig = rigs(Waiting(), CandidateSettings(campaign_timeout_s=2.0))
    with pytest.raises(_Stop):
        rig.candidate.run_forever()
    assert [e["type"] for e in rig.events() if e["f"] == "acquire"] == ["invoke", "fail"] * 3 + [
        "invoke"
    ]
    if pauses:
        assert len(slept) == 3 and all(0.05 <= x <= 0.2 for x in slept)
    else:
        assert slept == []


# --- the guarded deadline ------------------------------------------------------------


def test_guarded_lost_at_the_deadline_after_a_pause(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    """Frozen right after winning, it wakes long past its deadline with the member
    unreachable: it records `lost` at the deadline and writes nothing."""
    client = FakeClient(grants=[Grant(7, S)], states=[ClientError("unreachable")])
    rig = rigs(client)
    token, deadline = rig.candidate.campaign()
    assert token == 7 and deadline is not None
    fake_time.now += 10 * S  # SIGSTOP ... SIGCONT
    rig.candidate.hold(7, deadline)
    events = rig.events()
    assert shape(events) == [("invoke", "acquire"), ("ok", "acquire"), ("info", "lost")]
    assert events[2]["time"] == deadline - ORIGIN
    assert rig.requests == []
    assert_checks_valid(rig)


@pytest.mark.parametrize(
    "answer",
    [
        LeaseState(leader=False, token=None, remaining_ns=None),  # the member knows
        LeaseState(leader=True, token=7, remaining_ns=S),  # the member was paused too
    ],
)
def test_guarded_woken_past_its_deadline_is_lost_at_the_deadline(
    fake_time: FakeTime, rigs: Callable[..., Rig], answer: LeaseState
) -> None:
    """Member and candidate frozen together: on waking, whatever the member answers,
    the candidate stopped being leader at its deadline, not when it asked."""
    rig = rigs(FakeClient(grants=[Grant(7, S)], states=[answer]))
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    fake_time.now += 10 * S
    rig.candidate.hold(7, deadline)
    events = rig.events()
    assert shape(events) == [("invoke", "acquire"), ("ok", "acquire"), ("info", "lost")]
    assert events[2]["time"] == deadline - ORIGIN
    assert rig.requests == []


def test_deadline_passing_during_the_check_is_lost_at_the_deadline(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    """Frozen while asking the member: the answer "not leader" arrives after the
    deadline, so `lost` is stamped at the deadline."""
    client = FakeClient(
        grants=[Grant(7, S)], states=[LeaseState(leader=False, token=None, remaining_ns=None)]
    )
    rig = rigs(client)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None

    def pause() -> None:
        fake_time.now += 10 * S

    client.on_check = pause
    rig.candidate.hold(7, deadline)
    events = rig.events()
    assert shape(events)[-1] == ("info", "lost")
    assert events[-1]["time"] == deadline - ORIGIN
    assert rig.requests == []


def test_lost_is_recorded_at_the_deadline_while_the_check_is_still_in_flight(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    """A member that does not answer (paused, cut off) past the lease: `lost` is in the
    history before the call returns, so a candidate killed in the call never seems to
    have believed on until its crash. Recorded once, at the deadline."""
    client = FakeClient(grants=[Grant(7, S)], states=[LEADER])
    rig = rigs(client)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    in_call, answer = threading.Event(), threading.Event()
    lost_seen: list[list[tuple[str, str]]] = []

    def stuck() -> None:
        in_call.set()
        fake_time.now = deadline + S  # the lease runs out while the member is silent
        for _ in range(400):  # up to 2 s for the watcher to notice
            if ("info", "lost") in shape(rig.events()):
                break
            time.sleep(0.005)
        lost_seen.append(shape(rig.events()))
        answer.wait(5)

    client.on_check = stuck
    holder = threading.Thread(target=rig.candidate.hold, args=(7, deadline))
    holder.start()
    assert in_call.wait(5)
    answer.set()
    holder.join(5)
    assert not holder.is_alive()
    assert lost_seen and lost_seen[0][-1] == ("info", "lost"), lost_seen
    events = rig.events()
    assert shape(events).count(("info", "lost")) == 1
    assert events[-1]["f"] == "lost" and events[-1]["time"] == deadline - ORIGIN
    assert rig.requests == []


def test_lost_is_never_before_the_last_recorded_event(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    rig = rigs(FakeClient(grants=[Grant(7, S)]))
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.write(7, rig.ref.now())  # its ok comes after ...
    fake_time.now += 5 * S
    last = rig.recorder.last_time(1)
    assert last is not None and last < deadline - ORIGIN
    rig.recorder.record(1, "info", "note", node="n1")  # ... something recorded later
    last = rig.recorder.last_time(1)
    assert last is not None and last > deadline - ORIGIN
    rig.candidate.lost_at_deadline(deadline)
    lost = rig.events()[-1]
    assert (lost["type"], lost["f"]) == ("info", "lost")
    assert lost["time"] == last + 1


def test_lost_at_deadline_on_a_skewed_clock(
    fake_time: FakeTime, rigs: Callable[..., Rig], tmp_path: Path
) -> None:
    """The deadline is on the candidate's (skewed) clock; `lost` is stamped on the
    reference clock at the real moment the skewed clock read the deadline."""
    control = tmp_path / "clock.json"
    write_skew(control, Skew(offset_ns=3 * S))
    rig = rigs(FakeClient(grants=[Grant(7, S)]), clock_file=control)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    fake_time.now += 10 * S
    rig.candidate.lost_at_deadline(deadline)
    lost = rig.events()[-1]
    assert lost["time"] == deadline - 3 * S - ORIGIN


def test_guarded_writes_until_the_deadline_then_lost(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    client = FakeClient(grants=[Grant(7, S)], states=[LEADER])
    rig = rigs(client)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.hold(7, deadline)
    events = rig.events()
    writes = [e for e in events if e["f"] == "write" and e["type"] == "invoke"]
    # ~ (1 s - 50 ms margin) / 50 ms write interval
    assert 15 <= len(writes) <= 20
    assert [w["value"]["seq"] for w in writes] == list(range(len(writes)))
    assert all(w["time"] < deadline - ORIGIN for w in writes)
    assert events[-1]["f"] == "lost"
    assert events[-1]["value"]["reason"] == "lease deadline passed"
    assert_checks_valid(rig)


def test_refresh_extends_the_deadline(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    renewed = LeaseState(leader=True, token=7, remaining_ns=S)
    client = FakeClient(grants=[Grant(7, S)], states=[renewed] * 40 + [ClientError("gone")])
    rig = rigs(client)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.hold(7, deadline)
    writes = [e for e in rig.events() if e["f"] == "write" and e["type"] == "invoke"]
    # 40 renewals, every 100 ms, each good for 1 s: about 5 s of writes.
    assert writes[-1]["time"] > deadline - ORIGIN + 3 * S
    assert_checks_valid(rig)


@pytest.mark.parametrize("pause_at", range(0, 140, 1))
def test_guarded_never_invokes_a_write_after_its_deadline(
    fake_time: FakeTime, rigs: Callable[..., Rig], pause_at: int
) -> None:
    """A 3 s pause between any two clock readings of the hold loop (while the member
    cannot be reached): no write is invoked after the deadline, and `lost` is stamped
    at the deadline, or right after the last event if that came later."""
    client = FakeClient(grants=[Grant(7, S)], states=[ClientError("unreachable")])
    rig = rigs(client)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    deadline_ref = deadline - ORIGIN
    fake_time.pause_at = fake_time.calls + pause_at
    fake_time.pause_ns = 3 * S
    rig.candidate.hold(7, deadline)
    events = rig.events()
    invokes = [e for e in events if e["f"] == "write" and e["type"] == "invoke"]
    assert all(w["time"] < deadline_ref for w in invokes), (deadline_ref, invokes[-1:])
    assert len(rig.requests) == len(invokes)
    at = next(i for i, e in enumerate(events) if e["f"] == "lost")
    lost, after = events[at], events[at + 1 :]
    # Only the completion of a write sent in time may follow: its answer came after the
    # pause, and `lost` was recorded (at the deadline) before it.
    assert len(after) <= 1 and all(e["f"] == "write" and e["type"] != "invoke" for e in after)
    assert lost["time"] == max(deadline_ref, events[at - 1]["time"] + 1)
    assert_checks_valid(rig)


def test_guarded_without_a_lease_bound_does_not_write(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    rig = rigs(FakeClient(grants=[Grant(7, None)], states=[LEADER]))
    rig.candidate.hold(7, None)
    assert rig.requests == []
    assert rig.events()[-1]["f"] == "lost"


def test_guarded_told_lost_stops_at_once(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    other = LeaseState(leader=False, token=9, remaining_ns=None)
    rig = rigs(FakeClient(grants=[Grant(7, S)], states=[other]))
    _, deadline = rig.candidate.campaign()
    rig.candidate.hold(7, deadline)
    events = rig.events()
    assert shape(events)[-1] == ("info", "lost")
    assert events[-1]["value"] == {"token": 7, "reason": "told"}
    assert rig.requests == []


# --- naive -----------------------------------------------------------------------------


def test_naive_keeps_writing_while_the_client_errors_and_loses_only_when_told(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    told = LeaseState(leader=True, token=9, remaining_ns=S)  # someone else leads
    states: list[LeaseState | Exception] = [ClientError("partitioned")] * 60 + [told]
    client = FakeClient(grants=[Grant(7, S)], states=states)
    rig = rigs(client, CandidateSettings(discipline="naive", hold_s=(100.0, 100.0)))
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.hold(7, deadline)
    events = rig.events()
    writes = [e for e in events if e["f"] == "write" and e["type"] == "invoke"]
    lost = [e for e in events if e["f"] == "lost"]
    # It wrote well past its lease (60 checks, 100 ms apart, ~6 s).
    assert writes[-1]["time"] > deadline - ORIGIN + 4 * S
    assert len(lost) == 1 and lost[0] is events[-1]
    assert lost[0]["value"] == {"token": 7, "reason": "told"}
    assert client.calls.count("check") == 61
    assert_checks_valid(rig)


def test_told_lost(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    client = FakeClient(
        states=[
            LEADER,
            ClientError("timeout"),
            LeaseState(leader=True, token=8, remaining_ns=None),
        ]
    )
    rig = rigs(client)
    assert rig.candidate.told_lost(7) is False  # still leader with our token
    assert rig.candidate.told_lost(7) is False  # no answer is no news
    assert rig.events() == []
    assert rig.candidate.told_lost(7) is True  # a leader with another token
    assert shape(rig.events()) == [("info", "lost")]


def test_refresh(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    client = FakeClient(
        states=[
            LeaseState(leader=True, token=7, remaining_ns=2 * S),
            LeaseState(leader=True, token=7, remaining_ns=None),
            ClientError("timeout"),
            LeaseState(leader=False, token=None, remaining_ns=None),
        ]
    )
    rig = rigs(client)
    before = fake_time.now
    renewed = rig.candidate.refresh(7)
    assert isinstance(renewed, int) and renewed is not True
    margin = rig.candidate.s.lease_margin_ms * MS
    assert before + 2 * S - margin < renewed <= fake_time.now + 2 * S - margin
    assert rig.candidate.refresh(7) is None
    assert rig.candidate.refresh(7) is None
    assert rig.events() == []
    assert rig.candidate.refresh(7) is False
    assert shape(rig.events()) == [("info", "lost")]


# --- writes ------------------------------------------------------------------------------


def respond(status: int, body: dict[str, Any] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=body or {})


def test_write_200_is_ok_with_applied_at(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    rig = rigs(FakeClient(), handler=respond(200, {"applied_at": 123_456}))
    at = rig.ref.now()
    rig.candidate.write(7, at)
    rig.candidate.write(7, rig.ref.now())
    events = rig.events()
    assert shape(events) == [("invoke", "write"), ("ok", "write")] * 2
    assert events[0]["time"] == at
    assert events[0]["value"] == {"token": 7, "seq": 0}
    assert events[1]["value"] == {"applied_at": 123_456}
    assert events[2]["value"] == {"token": 7, "seq": 1}
    assert rig.requests == [
        {"token": 7, "seq": 0, "process": 1},
        {"token": 7, "seq": 1, "process": 1},
    ]


def test_write_409_is_fail(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    body = {"error": "fenced", "token": 7, "highest": 9}
    rig = rigs(FakeClient(), handler=respond(409, body))
    rig.candidate.write(7, rig.ref.now())
    events = rig.events()
    assert shape(events) == [("invoke", "write"), ("fail", "write")]
    assert events[1]["value"] == body


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_write_other_status_is_info(
    fake_time: FakeTime, rigs: Callable[..., Rig], status: int
) -> None:
    rig = rigs(FakeClient(), handler=respond(status, {"error": "x"}))
    rig.candidate.write(7, rig.ref.now())
    events = rig.events()
    assert shape(events) == [("invoke", "write"), ("info", "write")]
    assert events[1]["value"] == {"error": f"HTTP {status}"}


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadTimeout])
def test_write_exception_is_info(
    fake_time: FakeTime, rigs: Callable[..., Rig], exc: type[httpx.HTTPError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    rig = rigs(FakeClient(), handler=handler)
    rig.candidate.write(7, rig.ref.now())
    events = rig.events()
    assert shape(events) == [("invoke", "write"), ("info", "write")]
    assert events[1]["value"] == {"error": exc.__name__}


def test_write_invoke_is_stamped_at_the_check(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    rig = rigs(FakeClient())
    at = rig.ref.now()
    fake_time.now += S
    rig.candidate.write(7, at)
    invoke, ok = rig.events()
    assert invoke["time"] == at
    assert ok["time"] >= at + S


# --- release and a whole history ------------------------------------------------------


def test_release(fake_time: FakeTime, rigs: Callable[..., Rig]) -> None:
    client = FakeClient()
    rig = rigs(client)
    before = fake_time.now
    rig.candidate.release(7)
    assert shape(rig.events()) == [("invoke", "release"), ("ok", "release")]
    assert rig.events()[0]["value"] == {"token": 7}
    assert fake_time.now - before >= rig.candidate.s.resign_backoff_s * S
    client.resign_error = ClientError("timeout")
    rig.candidate.release(7)
    assert shape(rig.events())[2:] == [("invoke", "release"), ("info", "release")]


@pytest.mark.parametrize("discipline", ["guarded", "naive"])
def test_many_rounds_give_a_valid_history(
    fake_time: FakeTime, rigs: Callable[..., Rig], discipline: str
) -> None:
    grants: list[Grant | Exception | None] = [
        Grant(1, S),
        None,
        ClientError("timeout"),
        Grant(2, 2 * S),
        Grant(3, S),
        Grant(4, S),
    ]
    states: list[LeaseState | Exception] = [
        LeaseState(leader=True, token=t, remaining_ns=S) for t in (1, 1, 1)
    ]
    client = FakeClient(grants=grants, states=states)
    settings = CandidateSettings(discipline=discipline, hold_s=(0.5, 1.5))
    rig = rigs(client, settings)

    def script() -> None:
        # After the first lease, the member answers "no longer leader" or not at all.
        if client.calls.count("check") > 5:
            client.states[:] = [ClientError("gone"), LeaseState(False, None, None)]

    client.on_check = script
    for _ in range(len(grants)):
        token, deadline = rig.candidate.campaign()
        if token is not None:
            rig.candidate.hold(token, deadline)
    events = rig.events()
    assert [e["value"]["token"] for e in events if e["type"] == "ok" and e["f"] == "acquire"] == [
        1, 2, 3, 4,
    ]  # fmt: skip
    times = [e["time"] for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert any(e["f"] == "write" and e["type"] == "ok" for e in events)
    assert_checks_valid(rig)


def test_naive_acts_once_after_a_pause_before_it_hears_that_it_lost(
    fake_time: FakeTime, rigs: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = LeaseState(leader=True, token=9, remaining_ns=S)  # someone else leads now
    client = FakeClient(grants=[Grant(7, S)], states=[LEADER, LEADER, other])
    rig = rigs(client, CandidateSettings(discipline="naive", hold_s=(100.0, 100.0)))
    paused_at: list[int] = []

    def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)
        if client.calls.count("check") == 2 and not paused_at:
            paused_at.append(rig.ref.now())
            fake_time.now += 5 * S  # frozen for 5 s in this sleep

    monkeypatch.setattr("harness.workloads.candidate.time", types.SimpleNamespace(sleep=sleep))
    token, deadline = rig.candidate.campaign()
    assert token == 7
    rig.candidate.hold(7, deadline)
    after = [e for e in rig.events() if e["time"] > paused_at[0] + 5 * S]
    # Woken, it writes first (the loss reaches it only through its next check).
    assert shape(after) == [("invoke", "write"), ("ok", "write"), ("info", "lost")]
    assert client.calls.count("check") == 3


def test_guarded_checks_its_deadline_before_acting_after_a_pause(
    fake_time: FakeTime, rigs: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = FakeClient(grants=[Grant(7, 2 * S)], states=[LeaseState(True, 7, 2 * S)])
    rig = rigs(client, CandidateSettings(discipline="guarded", hold_s=(100.0, 100.0)))
    paused_at: list[int] = []

    def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)
        if client.calls.count("check") == 2 and not paused_at:
            paused_at.append(rig.ref.now())
            fake_time.now += 5 * S

    monkeypatch.setattr("harness.workloads.candidate.time", types.SimpleNamespace(sleep=sleep))
    _, deadline = rig.candidate.campaign()
    rig.candidate.hold(7, deadline)
    after = [e for e in rig.events() if e["time"] > paused_at[0]]
    assert [e["f"] for e in after if e["f"] == "write"] == []
    assert shape(rig.events())[-1] == ("info", "lost")
    assert rig.events()[-1]["time"] <= paused_at[0] + 2 * S


def test_guarded_write_answered_after_its_deadline_records_lost_first(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    client = FakeClient(grants=[Grant(7, S)], states=[LeaseState(True, 7, S)])
    frozen = {"done": False}

    def slow(request: httpx.Request) -> httpx.Response:
        applied = rig.ref.now()
        if not frozen["done"]:
            frozen["done"] = True
            fake_time.now += 3 * S  # frozen while the answer was on its way
        return httpx.Response(200, json={"applied_at": applied})

    rig = rigs(client, CandidateSettings(hold_s=(100.0, 100.0)), handler=slow)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.hold(7, deadline)
    events = rig.events()
    assert shape(events)[-3:] == [("invoke", "write"), ("info", "lost"), ("ok", "write")]
    # Backdated to the deadline (within the fake clock's microsecond per reading), long
    # before the answer arrived 3 s later.
    assert abs(events[-2]["time"] - (deadline - ORIGIN)) < MS
    assert events[-1]["time"] - events[-2]["time"] > 2 * S
    assert len(rig.requests) == 1  # nothing more after waking
    assert_checks_valid(rig)


def freeze_before_recording(
    rig: Rig, fake_time: FakeTime, etype: str, f: str, pause_ns: int
) -> list[int]:
    """Freeze the candidate for `pause_ns` just before it records its first (etype, f):
    a SIGSTOP landing between a decision and the line that records it. Returns, once
    it happened, the reference time at which the freeze began."""
    real = rig.recorder.record
    began: list[int] = []

    def record(process: Any, et: str, fn: str, *args: Any, **kw: Any) -> int:
        if (et, fn) == (etype, f) and not began:
            began.append(rig.ref.now())
            fake_time.now += pause_ns
        return real(process, et, fn, *args, **kw)

    rig.recorder.record = record  # type: ignore[method-assign]
    return began


def test_guarded_write_completion_recorded_after_a_pause_keeps_lost_at_the_deadline(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    # Seen in CI: the answer came in time, the deadline check passed, and the process
    # froze before recording the `ok`. Stamped when recorded, the `ok` fell after the
    # deadline and dragged `lost` with it (split-brain in a safe configuration).
    client = FakeClient(grants=[Grant(7, S)], states=[LEADER])
    rig = rigs(client)
    began = freeze_before_recording(rig, fake_time, "ok", "write", 3 * S)
    _, deadline = rig.candidate.campaign()
    assert deadline is not None
    rig.candidate.hold(7, deadline)
    events = rig.events()
    ok = next(e for e in events if (e["type"], e["f"]) == ("ok", "write"))
    lost = events[-1]
    assert (lost["type"], lost["f"]) == ("info", "lost")
    assert ok["time"] <= began[0] < lost["time"]
    assert abs(lost["time"] - (deadline - ORIGIN)) < MS
    assert len(rig.requests) == 1  # woken past the deadline, it wrote no more
    assert_checks_valid(rig)


def test_told_lost_recorded_after_a_pause_is_stamped_when_the_answer_came(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    client = FakeClient(grants=[Grant(7, 10 * S)], states=[LeaseState(False, None, None)])
    rig = rigs(client)
    began = freeze_before_recording(rig, fake_time, "info", "lost", 3 * S)
    _, deadline = rig.candidate.campaign()
    rig.candidate.hold(7, deadline)
    acquired, lost = rig.events()[-2:]
    assert shape([acquired, lost]) == [("ok", "acquire"), ("info", "lost")]
    assert lost["value"]["reason"] == "told"
    assert acquired["time"] < lost["time"] <= began[0]


def test_guarded_grant_arriving_after_its_deadline_is_not_taken(
    fake_time: FakeTime, rigs: Callable[..., Rig]
) -> None:
    client = FakeClient(grants=[Grant(9, S)])
    real_campaign = client.campaign

    def frozen_campaign(timeout_s: float) -> Grant | None:
        fake_time.now += 2 * S  # the grant's lease ran out before its answer was read
        return real_campaign(timeout_s)

    client.campaign = frozen_campaign  # type: ignore[method-assign]
    rig = rigs(client)
    assert rig.candidate.campaign() == (None, None)
    events = rig.events()
    assert shape(events) == [("invoke", "acquire"), ("info", "acquire")]
    assert events[-1]["value"] == {"token": 9, "error": "granted after its lease deadline"}
    assert client.calls == ["campaign"]  # not resigned: the next campaign drops it
    # Naive takes it: it acts until told.
    naive = rigs(FakeClient(grants=[Grant(9, S)]), CandidateSettings(discipline="naive"))
    naive.candidate.client.campaign = frozen_campaign  # type: ignore[method-assign]
    assert naive.candidate.campaign()[0] == 9
