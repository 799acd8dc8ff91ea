"""A team's leader program on a third-party lock library: etcd3gw's `Lock` (etcd's JSON
gateway, a lease and a create-if-absent transaction), put under the harness as an
external candidate.

The lock holds while its lease is kept alive; the fencing token is the lock key's
create revision, which rises with every acquisition. Two ways to hold it:

    python3 leader.py            # naive: act until a keep-alive says the lease is gone
    python3 leader.py --guarded  # stop acting at grant + TTL - margin unless renewed in time
    python3 leader.py --resign   # also resign after holding 2 to 6 s (default: hold on)

Everything it needs comes from HARNESS_* variables; it records through
leader_harness_client (copied next to it by the harness). See docs/CANDIDATE.md.
"""

from __future__ import annotations

import random
import sys
import time
from urllib.parse import urlparse

import etcd3gw
from etcd3gw.lock import Lock
from leader_harness_client import Harness

TTL_S = 2
MARGIN_NS = 300_000_000
WRITE_EVERY_S = 0.05
RENEW_EVERY_S = 0.4


def main() -> int:
    guarded = "--guarded" in sys.argv
    h = Harness()
    rng = random.Random(h.seed * 1_000_003 + h.process)
    url = urlparse(h.endpoint)
    client = etcd3gw.client(host=url.hostname, port=url.port, timeout=1)
    lock = Lock(h.election, ttl=TTL_S, client=client)
    while True:
        h.campaigning()
        sent = time.monotonic_ns()
        try:
            got = lock.acquire()
            if got:
                _, meta = client.get(lock.key, metadata=True)[0]
                token = int(meta["create_revision"])
        except Exception as exc:  # the library raises its own and requests' errors
            h.acquire_unknown(repr(exc))
            time.sleep(rng.uniform(0.1, 0.3))
            continue
        if not got:
            h.not_acquired()
            time.sleep(rng.uniform(0.1, 0.3))
            continue
        deadline = sent + TTL_S * 1_000_000_000 - MARGIN_NS
        if guarded and time.monotonic_ns() >= deadline:
            h.acquire_unknown("granted after its lease deadline")
            continue
        h.acquired(token)
        until = time.monotonic() + (rng.uniform(2, 6) if "--resign" in sys.argv else 1e9)
        hold(h, lock, token, deadline, guarded, until)


def hold(h: Harness, lock: Lock, token: int, deadline: int, guarded: bool, until: float) -> None:
    last_renew = time.monotonic()
    while True:
        now = time.monotonic_ns()
        if guarded and now >= deadline:
            # Nothing done since the deadline passed (a pause): stopped being willing then.
            h.lost("lease deadline passed", at=h.now() - (now - deadline))
            return
        if time.monotonic() >= until:
            h.releasing(token)
            try:
                lock.release()
            except Exception as exc:
                h.record("info", "release", {"error": repr(exc)[:200]})
            else:
                h.released()
            time.sleep(1.0)
            return
        # Guarded: the helper checks the deadline before sending (on one reading of the
        # clocks) and again when the answer arrives, recording `lost` at the deadline.
        h.write(token, deadline=deadline if guarded else None)
        if h.deadline_passed:
            return
        if time.monotonic() - last_renew >= RENEW_EVERY_S:
            last_renew = time.monotonic()
            sent = time.monotonic_ns()
            try:
                ttl = lock.refresh()
            except Exception:
                continue  # no answer: no news (naive); the deadline stays (guarded)
            if ttl <= 0:
                h.lost("keep-alive: lease gone")
                return
            deadline = max(deadline, sent + ttl * 1_000_000_000 - MARGIN_NS)
        time.sleep(WRITE_EVERY_S)


if __name__ == "__main__":
    sys.exit(main())
