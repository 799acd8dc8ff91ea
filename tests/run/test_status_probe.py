"""The status probe survives bad answers: it records them and keeps probing; the
reference target tells a malformed status answer from silence."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness.backends.base import Node
from harness.checker import check
from harness.history import HistoryWriter, merge_histories
from harness.recorder import Recorder, RefClock
from harness.run.probe import StatusProbe
from harness.targets.base import MemberView
from harness.targets.reference import ReferenceTarget
from harness.testing import FakeBackend, FakeTarget


def test_one_bad_answer_is_recorded_and_probing_goes_on(tmp_path: Path) -> None:
    backend = FakeBackend()
    nodes = backend.provision(["n1", "n2", "n3"])
    target = FakeTarget(backend)
    bad = {"n2": 1}

    def answer(node: str) -> MemberView | None:
        if bad.get(node, 0) > 0:
            bad[node] -= 1
            raise ValueError("bad status answer from n2: 'term' in b'{}'")
        return MemberView(node, "n1", 1)

    target.answer = answer
    history = tmp_path / "runner.jsonl"
    recorder = Recorder(HistoryWriter(history), RefClock())
    probe = StatusProbe(target, nodes, recorder, 0.01)  # type: ignore[arg-type]
    probe.start()
    time.sleep(0.3)
    probe.stop()
    recorder.close()
    events = [orjson.loads(line) for line in history.read_bytes().splitlines()]
    of_n2 = [e for e in events if e["process"] == "probe-n2"]
    assert of_n2[0]["f"] == "status-error" and of_n2[0]["type"] == "info"
    assert "bad status answer from n2" in of_n2[0]["value"]["error"]
    assert sum(e["f"] == "status" for e in of_n2) >= 3  # the thread lived on
    assert probe.errors == {"n1": 0, "n2": 1, "n3": 0}
    # The history stays well-formed: the rules ignore the error event.
    merged = merge_histories([history], tmp_path / "history.jsonl")
    assert check(merged)["valid"] is True


def reference_answering(status: int, body: bytes) -> ReferenceTarget:
    target = ReferenceTarget()
    target._http = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    )
    return target


NODE = Node("n1", "10.213.9.11", "h1")


def test_reference_probe_reads_a_good_answer() -> None:
    target = reference_answering(200, b'{"leader": "n2", "term": 4}')
    assert target.probe(NODE, 0.5) == MemberView("n1", "n2", 4)
    target = reference_answering(200, b'{"leader": null, "term": 5}')
    assert target.probe(NODE, 0.5) == MemberView("n1", None, 5)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"leader": "n2"}', b'{"leader": "n2", "term": "x"}',
     b'{"leader": 7, "term": 1}', b'{"leader": "n2", "term": true}'],
)  # fmt: skip
def test_reference_probe_raises_on_a_malformed_answer(body: bytes) -> None:
    target = reference_answering(200, body)
    with pytest.raises(ValueError, match="bad status answer from n1"):
        target.probe(NODE, 0.5)


def test_reference_probe_is_silent_on_no_answer_or_an_error_status() -> None:
    assert reference_answering(503, b"busy").probe(NODE, 0.5) is None

    def refuse(request: Any) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    target = ReferenceTarget()
    target._http = httpx.Client(transport=httpx.MockTransport(refuse))
    assert target.probe(NODE, 0.5) is None
