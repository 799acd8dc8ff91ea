"""The candidate process: campaign, do leader-only writes, notice loss, resign, repeat.

One OS process per node, started by the runner inside the node (so a partition cuts it
off with its node and a pause freezes it), writing its own history file. Every step is
an event in format v1, stamped on the reference clock; decisions (the guarded deadline)
read the candidate's own skewable clock, which the clock nemesis may skew.

    python -m workloads.candidate --process 4 --node n1 --adapter reference \
        --endpoint http://10.213.4.11:7100 --resource http://10.213.4.1:41234 \
        --history run/history/p4.jsonl [--clock-file F] [--settings JSON]
        [--adapter-options JSON] [--seed N]

The run's clock origin comes from the environment (HARNESS_T0_NS). SIGTERM ends the
process at once; every event it recorded is already with the operating system.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from harness.history.writer import HistoryWriter
from harness.recorder import Recorder, RefClock
from harness.skewclock import SkewClock
from harness.workloads.clients import ClientError, ElectionClient, make_client
from harness.workloads.settings import CandidateSettings, SettingsError, parse_candidate_settings

MS = 1_000_000
WATCH_INTERVAL_S = 0.005  # how often a call in flight looks at the guarded deadline


class _Watch:
    """One call in flight under a guarded deadline (see Candidate.watching)."""

    def __init__(self) -> None:
        self.done = False  # the call returned: the watcher records nothing more
        self.fired = False  # the watcher recorded `lost` at the deadline


class Candidate:
    """The election workload for one process id."""

    def __init__(
        self,
        *,
        process: int,
        node: str,
        client: ElectionClient,
        resource: httpx.Client,
        recorder: Recorder,
        clock: SkewClock,
        settings: CandidateSettings,
        rng: random.Random,
    ) -> None:
        self.process = process
        self.node = node
        self.client = client
        self.resource = resource
        self.rec = recorder
        self.clock = clock
        self.s = settings
        self.rng = rng
        self.seq = 0
        self._watch_lock = threading.Lock()

    def record(self, etype: str, f: str, value: dict[str, Any] | None = None, **kw: Any) -> int:
        return self.rec.record(self.process, etype, f, value, node=self.node, **kw)

    def run_forever(self) -> None:
        while True:
            began = time.monotonic_ns()
            token, deadline = self.campaign()
            if token is None:
                # A campaign that waited out its whole timeout (a long poll that found
                # the place taken) has waited already: it asks again at once. Pausing
                # there left a vacancy unclaimed for up to 200 ms (measured: in 2 of 6
                # missed cuts of a slowed leader the next leader's candidate was in that
                # pause). One that came back early (an error, a quick refusal) backs off,
                # so that a failing member is not hammered.
                if time.monotonic_ns() - began < self.s.campaign_timeout_s * 1e9:
                    time.sleep(self.rng.uniform(0.05, 0.2))
                continue
            self.hold(token, deadline)

    # --- campaigning -----------------------------------------------------------------

    def campaign(self) -> tuple[int | None, int | None]:
        """(token, deadline on the candidate's clock or None) when leader, else (None, None)."""
        self.record("invoke", "acquire")
        sent = self.clock.now_ns()
        try:
            grant = self.client.campaign(self.s.campaign_timeout_s)
        except ClientError as exc:
            self.record("info", "acquire", {"error": str(exc)[:200]})
            return None, None
        if grant is None:
            self.record("fail", "acquire")
            return None, None
        deadline = None
        if grant.lease_ns is not None:
            deadline = sent + grant.lease_ns - self.s.lease_margin_ms * MS
        if self.s.discipline == "guarded" and deadline is not None:
            # The reference clock is read before the deadline check, as for writes: an
            # ok stamped at that reading was still inside the lease.
            at_ref = self.rec.clock.now()
            if self.clock.now_ns() >= deadline:
                # Granted, but the lease ran out before the answer arrived (a pause, a
                # slow network): a guarded candidate never acts on it, and whether the
                # system still counts it as leader is unknown. Its next campaign drops
                # whatever is left of the grant (a resign here could force an election).
                self.record(
                    "info",
                    "acquire",
                    {"token": grant.token, "error": "granted after its lease deadline"},
                )
                return None, None
            self.record("ok", "acquire", {"token": grant.token}, time_ns=at_ref)
        else:
            self.record("ok", "acquire", {"token": grant.token})
        return grant.token, deadline

    # --- holding leadership ------------------------------------------------------------

    def hold(self, token: int, deadline: int | None) -> None:
        guarded = self.s.discipline == "guarded"
        check_every = self.s.check_interval_ms * MS
        hold_until = self.clock.now_ns() + int(self.rng.uniform(*self.s.hold_s) * 1e9)
        # Check at once: a grant can arrive with little of its lease left.
        last_check = self.clock.now_ns() - check_every
        while True:
            # Woken (from a pause) past the deadline with nothing done since: it stopped
            # being willing to act at the deadline, whatever the member says now.
            if guarded and (deadline is None or self.clock.now_ns() >= deadline):
                self.lost_at_deadline(deadline)
                return
            if guarded and self.clock.now_ns() - last_check >= check_every:
                last_check = self.clock.now_ns()
                outcome = self.refresh(token, deadline)
                if outcome is False:
                    return
                if outcome is not None and deadline is not None:
                    deadline = max(deadline, outcome)
            # The deadline check and the write's invoke share one reading of the clocks,
            # so a pause between them cannot let a write start after the deadline: the
            # reference clock is read first, so the invoke is never stamped later than
            # the moment the candidate's clock was found short of the deadline.
            now_ref = self.rec.clock.now()
            now_c = self.clock.now_ns()
            if guarded and (deadline is None or now_c >= deadline):
                self.lost_at_deadline(deadline)
                return
            if now_c >= hold_until:
                if self.rng.random() < self.s.resign_probability:
                    self.release(token, now_ref)
                    return
                hold_until = now_c + int(self.rng.uniform(*self.s.hold_s) * 1e9)
            if not self.write(token, now_ref, deadline if guarded else None):
                return
            # Naive: the news of a loss arrives on its own schedule (a watch, a failed
            # keep-alive), never as a check before acting, so a process that wakes from a
            # pause acts once more before it hears that it lost.
            if not guarded and self.clock.now_ns() - last_check >= check_every:
                last_check = self.clock.now_ns()
                if self.told_lost(token):
                    return
            time.sleep(self.s.write_interval_ms / 1000)

    def told_lost(self, token: int) -> bool:
        """Naive: only an answer saying another leader or no leadership counts as loss;
        no answer at all is taken as no news."""
        try:
            state = self.client.check()
        except ClientError:
            return False
        answered_at = self.rec.clock.now()  # as in refresh: a pause must not stretch it
        if state.leader and state.token == token:
            return False
        self.record("info", "lost", {"token": token, "reason": "told"}, time_ns=answered_at)
        return True

    def refresh(self, token: int, deadline: int | None = None) -> int | bool | None:
        """Ask the member. A new deadline, None (no answer: keep the old one), or False
        (lost: recorded; at `deadline` if that passed while waiting for the answer)."""
        sent = self.clock.now_ns()
        with self.watching(deadline) as watch:
            try:
                state: Any = self.client.check()
            except ClientError:
                state = None
            answered_at = self.rec.clock.now()
        if watch.fired:
            return False  # `lost` is recorded, at the deadline
        if state is None:
            return None
        if not state.leader or state.token != token:
            if deadline is not None and self.clock.now_ns() >= deadline:
                self.lost_at_deadline(deadline)
            else:
                # Stamped when the answer came: a pause before this line must not stretch
                # the belief (the checker reads it until `lost`) past what was known.
                self.record("info", "lost", {"token": token, "reason": "told"}, time_ns=answered_at)
            return False
        if state.remaining_ns is None:
            return None
        return sent + state.remaining_ns - self.s.lease_margin_ms * MS

    @contextlib.contextmanager
    def watching(self, deadline: int | None) -> Iterator[_Watch]:
        """Guarded: while a call to the member or the resource is in flight, `lost` is
        recorded as the deadline passes, not when the call returns. A call can outlive
        the lease (its member paused or cut off) and the candidate be killed before it
        returns: its history must already say that it stopped believing at the deadline,
        which it did (it acts only after a deadline check), or the belief would run on
        to the crash. After the block, `fired` says whether `lost` was recorded."""
        watch = _Watch()
        if deadline is None:
            yield watch
            return
        stop = threading.Event()

        def watcher() -> None:
            while not stop.wait(WATCH_INTERVAL_S):
                if self.clock.now_ns() >= deadline:
                    with self._watch_lock:
                        if not watch.done:
                            self.lost_at_deadline(deadline)
                            watch.fired = True
                    return

        thread = threading.Thread(target=watcher, name="deadline-watch", daemon=True)
        thread.start()
        try:
            yield watch
        finally:
            with self._watch_lock:
                watch.done = True
            stop.set()
            thread.join()

    def lost_at_deadline(self, deadline: int | None) -> None:
        """Guarded: the deadline passed with nothing done since, so the candidate stopped
        being willing to act at the deadline: record `lost` then (never before an event
        it already recorded; the recorder enforces that)."""
        at = None
        if deadline is not None:
            at = self.rec.clock.from_monotonic(self.clock.monotonic_at(deadline))
        self.record("info", "lost", {"reason": "lease deadline passed"}, time_ns=at)

    def release(self, token: int, at_ref: int | None = None) -> None:
        """Resign; the invoke is stamped when the deadline check passed (`at_ref`), so a
        pause before it cannot stretch the leadership past the deadline."""
        self.record("invoke", "release", {"token": token}, time_ns=at_ref)
        try:
            self.client.resign()
        except ClientError as exc:
            self.record("info", "release", {"error": str(exc)[:200]})
        else:
            self.record("ok", "release")
        time.sleep(self.s.resign_backoff_s)

    def write(self, token: int, at_ref: int, deadline: int | None = None) -> bool:
        """One leader-only write, invoked at the moment the deadline check passed.

        Guarded (`deadline` given): if the deadline passed while the write was in flight
        (a pause), `lost` is recorded at the deadline before the write's completion, and
        False says to stop; the write itself was sent in time, so its outcome stands."""
        seq = self.seq
        self.seq += 1
        self.record("invoke", "write", {"token": token, "seq": seq}, time_ns=at_ref)
        response: httpx.Response | None = None
        with self.watching(deadline) as watch:
            try:
                response = self.resource.post(
                    "/write", json={"token": token, "seq": seq, "process": self.process}
                )
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            # The completion is stamped when the answer came, before the deadline check
            # below. Stamped when recorded, a pause between that check and the record
            # would date it after the deadline, and `lost` (never before the process's
            # last event) with it: the history would claim a belief the candidate never
            # acted on, seen as split-brain under pauses in safe configurations.
            done_at = self.rec.clock.now()
        still = not watch.fired and self._within(deadline)
        value: dict[str, Any]
        if response is None:
            etype, value = "info", {"error": error}
        elif response.status_code == 200:
            etype, value = "ok", {"applied_at": int(response.json()["applied_at"])}
        elif response.status_code == 409:
            etype, value = "fail", response.json()
        else:
            etype, value = "info", {"error": f"HTTP {response.status_code}"}
        self.record(etype, "write", value, time_ns=done_at)
        return still

    def _within(self, deadline: int | None) -> bool:
        """Guarded: False, with `lost` recorded at the deadline, once it has passed."""
        if deadline is not None and self.clock.now_ns() >= deadline:
            self.lost_at_deadline(deadline)
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.candidate")
    parser.add_argument("--process", type=int, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--resource", required=True)
    parser.add_argument("--history", required=True)
    parser.add_argument("--clock-file")
    parser.add_argument("--settings", default="{}", help="JSON object of workload settings")
    parser.add_argument(
        "--adapter-options", default="{}", help="JSON object of the adapter client's options"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        settings = parse_candidate_settings(json.loads(args.settings), "--settings")
    except SettingsError as exc:  # it names --settings
        print(f"candidate: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # not JSON
        print(f"candidate: --settings: {exc}", file=sys.stderr)
        return 2
    try:
        adapter_options = json.loads(args.adapter_options)
        if not isinstance(adapter_options, dict):
            raise ValueError(f"expected a JSON object, got {args.adapter_options!r}")
    except ValueError as exc:
        print(f"candidate: --adapter-options: {exc}", file=sys.stderr)
        return 2
    try:
        client = make_client(
            args.adapter,
            args.endpoint,
            request_timeout_s=settings.request_timeout_s,
            client_id=f"p{args.process}",
            **adapter_options,
        )
    except (ValueError, TypeError) as exc:  # a team's own client that cannot be built
        print(f"candidate: --adapter {args.adapter}: {exc}", file=sys.stderr)
        return 2
    recorder = Recorder(HistoryWriter(args.history), RefClock.from_env())
    resource = httpx.Client(base_url=args.resource, timeout=settings.request_timeout_s)
    candidate = Candidate(
        process=args.process,
        node=args.node,
        client=client,
        resource=resource,
        recorder=recorder,
        clock=SkewClock(args.clock_file),
        settings=settings,
        rng=random.Random(args.seed * 1_000_003 + args.process),
    )
    try:
        candidate.run_forever()
    finally:
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
