"""Bring-your-own code: program settings, the events protocol, the SDK, own clients."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.image.servers import ServerPackage
from harness.recorder import RefClock
from harness.resource import ProtectedResource
from harness.runconfig import ConfigError, parse_run_config
from harness.workloads.clients import make_client
from harness.workloads.leader_harness_client import Harness
from harness.workloads.program import (
    ProgramError,
    ProgramHistoryError,
    normalize_program_history,
    parse_program,
    prepare_program_dir,
    program_env,
)


def _config(tmp_path: Path, workload: dict) -> Path:
    (tmp_path / "leader.py").write_text("print('hi')\n")
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps({"target": "etcd", "workload": workload}))
    return path


def test_program_keys_are_read_relative_to_the_file(tmp_path: Path) -> None:
    path = _config(tmp_path, {"command": ["python3", "leader.py"], "files": ["leader.py"],
                              "discipline": "naive"})  # fmt: skip
    cfg = parse_run_config(json.loads(path.read_text()), str(path))
    assert cfg.program.command == ("python3", "leader.py")
    assert cfg.program.files == ((tmp_path / "leader.py").resolve(),)
    assert cfg.workload.discipline == "naive"
    assert cfg.to_dict()["workload"]["command"] == ["python3", "leader.py"]


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"command": "python3 leader.py"}, "key 'workload.command': expected a list"),
        ({"command": ["x"], "files": ["missing.py"]}, "'missing.py' does not exist"),
        ({"command": ["x"], "client": "a.b:C"}, "exclude each other"),
        ({"client": "not a path"}, "expected 'module.path:ClassName'"),
        ({"options": {"a": 1}}, "only used with workload.client"),
        ({"command": ["x"], "requirements": ["--index-url=http://evil"]}, "requirement"),
        ({"command": ["x"], "start_timeout_s": 0}, "key 'workload.start_timeout_s': expected"),
        ({"command": ["x"], "options": []}, "key 'workload.options': expected a mapping"),
    ],
)
def test_bad_program_keys_name_file_and_key(tmp_path: Path, workload: dict, message: str) -> None:
    path = _config(tmp_path, workload)
    with pytest.raises(ConfigError, match=message) as info:
        parse_run_config(json.loads(path.read_text()), str(path))
    assert str(path) in str(info.value)


def _normalize(tmp_path: Path, lines: list[str], wall_t0: int = 0) -> list[dict]:
    raw = tmp_path / "p4.program-events"
    raw.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "p4.jsonl"
    normalize_program_history(raw, out, process=4, node="n1", wall_t0_ns=wall_t0)
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_events_get_process_and_node_and_wall_stamps_become_reference_time(
    tmp_path: Path,
) -> None:
    events = _normalize(
        tmp_path,
        [
            '{"time": 10, "type": "invoke", "f": "acquire"}',
            '{"wall_ns": 1000000050, "type": "ok", "f": "acquire", "value": {"token": 3}}',
            "",
            '{"time": 60, "type": "invoke", "f": "write", "value": {"token": 3, "seq": 0}}',
        ],
        wall_t0=1_000_000_000,
    )
    assert [e["time"] for e in events] == [10, 50, 60]
    assert all(e["process"] == 4 and e["node"] == "n1" for e in events)
    assert events[1]["value"] == {"token": 3}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "ok", "f": "acquire", "value": {"token": 1}}', "exactly one of 'time'"),
        ('{"time": 5, "type": "done", "f": "acquire"}', "'type' must be one of"),
        ('{"time": 5, "type": "ok", "f": "acquire"}', "needs value.token"),
        ('{"time": 5, "type": "ok", "f": "lost"}', "type must be info"),
        ('{"time": 5, "type": "info", "f": "lost", "process": 9}', "unknown field"),
    ],
)
def test_malformed_events_name_node_line_and_problem(
    tmp_path: Path, line: str, problem: str
) -> None:
    with pytest.raises(ProgramHistoryError, match=problem) as info:
        _normalize(tmp_path, ['{"time": 1, "type": "invoke", "f": "acquire"}', line])
    assert "on n1 (process 4" in str(info.value) and "line 2" in str(info.value)


def test_events_out_of_order_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgramHistoryError, match="line 2: time 5 is not after"):
        _normalize(tmp_path, ['{"time": 9, "type": "invoke", "f": "acquire"}',
                              '{"time": 5, "type": "fail", "f": "acquire"}'])  # fmt: skip


def test_a_line_cut_by_a_kill_is_not_an_event(tmp_path: Path) -> None:
    raw = tmp_path / "p4.program-events"
    raw.write_text('{"time": 1, "type": "invoke", "f": "acquire"}\n{"time": 2, "ty')
    n = normalize_program_history(raw, tmp_path / "p4.jsonl", process=4, node="n1", wall_t0_ns=0)
    assert n == 1


def test_sdk_records_what_the_protocol_accepts_and_writes_to_the_resource(
    tmp_path: Path,
) -> None:
    clock = RefClock()
    resource = ProtectedResource(clock, host="127.0.0.1", fencing=True).start()
    try:
        raw = tmp_path / "p1.program-events"
        env = {
            "HARNESS_PROCESS": "1", "HARNESS_NODE": "n1", "HARNESS_ENDPOINT": "http://x:1",
            "HARNESS_RESOURCE": resource.url, "HARNESS_T0_NS": str(clock.origin_ns),
            "HARNESS_HISTORY": str(raw),
        }  # fmt: skip
        h = Harness(env)
        h.campaigning()
        h.acquired(7)
        assert h.write(7) is True
        h.campaigning()
        h.acquired(5)
        assert h.write(5) is False  # fenced: below the highest token applied
        h.lost("told")
        h.close()
    finally:
        resource.stop()
    out = tmp_path / "p1.jsonl"
    n = normalize_program_history(raw, out, process=1, node="n1", wall_t0_ns=0)
    kinds = [(e["type"], e["f"]) for e in map(json.loads, out.read_text().splitlines())]
    assert n == 9
    assert kinds[3] == ("ok", "write") and kinds[7] == ("fail", "write")


def test_prepare_copies_files_and_the_sdk_and_checks_local_requirements(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.py").write_text("X = 1\n")
    spec = parse_program({"command": ["true"], "files": ["lib"]}, str(tmp_path / "c.yaml"))
    dest = prepare_program_dir(spec, tmp_path / "run", "local")
    assert (dest / "lib" / "x.py").read_text() == "X = 1\n"
    assert (dest / "leader_harness_client.py").is_file()
    missing = parse_program({"command": ["true"], "requirements": ["no-such-dist-xyz==1"]}, "c")
    with pytest.raises(ProgramError, match="must be installed here first: no-such-dist-xyz"):
        prepare_program_dir(missing, tmp_path / "run2", "local")
    # On docker they go into the run image's requirements layer (the backend builds it):
    # nothing is checked on the host and nothing lands in the program folder but the code.
    dest = prepare_program_dir(missing, tmp_path / "run3", "docker")
    assert sorted(p.name for p in dest.iterdir()) == ["leader_harness_client.py"]


def test_program_env_puts_the_folder_then_the_backends_requirements_path() -> None:
    assert program_env(Path("/run/program")) == {"PYTHONPATH": "/run/program"}
    env = program_env(Path("/run/program"), ["/opt/program-requirements"])
    assert env == {"PYTHONPATH": "/run/program:/opt/program-requirements"}


def test_own_client_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myclient.py").write_text(
        textwrap.dedent(
            """
            from harness.workloads.clients import Grant, LeaseState

            class Mine:
                def __init__(self, endpoint, *, request_timeout_s, client_id, ttl_s=1):
                    self.endpoint, self.ttl_s = endpoint, ttl_s
                def campaign(self, timeout_s): return Grant(1, self.ttl_s * 10**9)
                def check(self): return LeaseState(True, 1, None)
                def resign(self): pass
                def close(self): pass

            class Half:
                def __init__(self, endpoint, **kw): pass
                def campaign(self, timeout_s): return None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    client = make_client("myclient:Mine", "http://e", request_timeout_s=1, client_id="p1", ttl_s=3)
    grant = client.campaign(1.0)
    assert grant is not None and (grant.token, grant.lease_ns) == (1, 3 * 10**9)
    with pytest.raises(ValueError, match="missing check, resign, close"):
        make_client("myclient:Half", "http://e")
    with pytest.raises(ValueError, match="cannot import 'nosuchmodule'"):
        make_client("nosuchmodule:X", "http://e")


def test_init_writes_starters_that_load_and_never_overwrites(tmp_path: Path) -> None:
    from harness.init import InitError, init
    from harness.runconfig import load_run_config
    from harness.suite.model import load_suite

    written = init(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        "leader-harness/run.yaml", "leader-harness/suite.yaml", "tests/test_leader_harness.py",
    }  # fmt: skip
    assert load_run_config(tmp_path / "leader-harness/run.yaml").target == "etcd"
    load_suite(tmp_path / "leader-harness/suite.yaml")
    compile((tmp_path / "tests/test_leader_harness.py").read_text(), "t", "exec")
    (tmp_path / "leader-harness/suite.yaml").write_text("mine\n")
    with pytest.raises(InitError, match=r"would overwrite .*suite\.yaml"):
        init(tmp_path)
    assert (tmp_path / "leader-harness/suite.yaml").read_text() == "mine\n"


def test_own_server_binary_is_validated_copied_and_its_version_logged(tmp_path: Path) -> None:
    from harness.targets import TargetError
    from harness.targets.etcd import EtcdTarget

    with pytest.raises(TargetError, match=r"key 'server.binary': expected an absolute path"):
        EtcdTarget({"binary": "bin/etcd"}, "run.yaml")
    with pytest.raises(TargetError, match="an executable file that exists"):
        EtcdTarget({"binary": str(tmp_path / "nope")}, "run.yaml")
    binary = tmp_path / "etcd"
    binary.write_text("#!/bin/sh\necho 'etcd Version: 9.9.9-team'\n")
    binary.chmod(0o755)
    target = EtcdTarget({"binary": str(binary)}, "run.yaml")

    class Backend:  # what ServerTarget.setup needs of a ServerPackages backend
        name = "fake"

        def server_root(self, package: ServerPackage) -> str:
            return f"/opt/servers/{package.name}"

    run_dir = tmp_path / "run"
    target.setup(Backend(), [], run_dir)  # type: ignore[arg-type]
    assert target._program_path == str((run_dir / "bin" / "etcd").resolve())
    assert "9.9.9-team" in (run_dir / "logs" / "server-binary.txt").read_text()
    assert target.server_bin == "/opt/servers/etcd-3.5.16/usr/bin"
    target.close()


def test_sdk_guarded_write_past_its_deadline_records_lost_at_the_deadline(
    tmp_path: Path,
) -> None:
    import time

    clock = RefClock()
    raw = tmp_path / "p1.program-events"
    env = {
        "HARNESS_PROCESS": "1", "HARNESS_NODE": "n1", "HARNESS_ENDPOINT": "http://x:1",
        "HARNESS_RESOURCE": "http://127.0.0.1:9", "HARNESS_T0_NS": str(clock.origin_ns),
        "HARNESS_HISTORY": str(raw),
    }  # fmt: skip
    h = Harness(env)
    h.campaigning()
    h.acquired(3)
    deadline = time.monotonic_ns() - 1_000_000  # a pause took it past its lease
    assert h.write(3, deadline=deadline) is None and h.deadline_passed
    h.close()
    events = [json.loads(line) for line in raw.read_text().splitlines()]
    assert [e["f"] for e in events] == ["acquire", "acquire", "lost"]  # nothing was sent
    assert events[2]["time"] == max(deadline - clock.origin_ns, events[1]["time"] + 1)


def test_sdk_write_outcome_recorded_after_a_pause_keeps_lost_at_the_deadline(
    tmp_path: Path,
) -> None:
    import http.server
    import threading
    import time

    class Applied(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"applied_at": 1}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Applied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clock = RefClock()
    raw = tmp_path / "p1.program-events"
    env = {
        "HARNESS_PROCESS": "1", "HARNESS_NODE": "n1", "HARNESS_ENDPOINT": "http://x:1",
        "HARNESS_RESOURCE": f"http://127.0.0.1:{server.server_port}",
        "HARNESS_T0_NS": str(clock.origin_ns), "HARNESS_HISTORY": str(raw),
    }  # fmt: skip
    h = Harness(env)
    real = h.record

    def record(etype: str, f: str, *args: Any, **kw: Any) -> int:
        if (etype, f) == ("ok", "write"):
            time.sleep(0.4)  # frozen after the deadline check, before the record
        return real(etype, f, *args, **kw)

    h.record = record  # type: ignore[method-assign]
    try:
        h.campaigning()
        h.acquired(3)
        deadline = time.monotonic_ns() + 200_000_000
        assert h.write(3, deadline=deadline) is True and h.deadline_passed
    finally:
        h.close()
        server.shutdown()
        server.server_close()
    events = [json.loads(line) for line in raw.read_text().splitlines()]
    assert [(e["type"], e["f"]) for e in events][2:] == [
        ("invoke", "write"), ("ok", "write"), ("info", "lost"),
    ]  # fmt: skip
    ok, lost = events[3], events[4]
    assert ok["time"] < lost["time"] == deadline - clock.origin_ns
