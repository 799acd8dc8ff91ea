"""Hardening (issue 15) without clusters: the top-level error rule, writes that never follow
a planted link, what a docker node may write, the guard route beside wider routes, and
owner labels across PID namespaces. Seconds."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness import cli
from harness.backends import docker as docker_backend
from harness.backends import netns as nx
from harness.backends.base import BackendError, RunResult
from harness.history import HistoryError, HistoryWriter, merge_histories
from harness.run.store import write_config, write_results
from harness.safefile import UnsafePath, open_read, write_atomic
from harness.skewclock import Skew, write_skew

EVENT = {"time": 1, "process": 1, "type": "invoke", "f": "acquire", "node": "n1"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_text("precious\n")
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    (path / "history").mkdir(parents=True)
    return path


# --------------------------------------------------------------------- the top-level rule


def test_an_unexpected_exception_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire\nsecond line \x1b[31m")

    monkeypatch.setattr(cli, "check_file", boom)
    (tmp_path / "h.jsonl").write_text("")
    assert cli.main(["check", str(tmp_path / "h.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "harness check: internal error: RuntimeError: disk on fire\\nsecond line \\x1b[31m "
        "(--verbose for the traceback)"
    ]
    assert cli.main(["check", "--verbose", str(tmp_path / "h.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness check: internal error: RuntimeError")
    assert "Traceback (most recent call last)" in err


def test_memory_and_recursion_errors_are_not_violations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for error in (MemoryError(), RecursionError("maximum recursion depth exceeded")):

        def boom(*args: Any, error: BaseException = error, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(cli, "check_file", boom)
        assert cli.main(["check", str(tmp_path / "h.jsonl")]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1


def test_ctrl_c_outside_a_run_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "check_file", interrupted)
    assert cli.main(["check", str(tmp_path / "h.jsonl")]) == 2
    assert capsys.readouterr().err == "harness check: interrupted\n"


def test_every_command_takes_verbose() -> None:
    parser = cli.build_parser()
    for argv in (["check", "f"], ["report", "d"], ["run"], ["suite", "f"], ["image", "show"]):
        assert parser.parse_args([*argv, "--verbose"]).verbose is True


def test_a_crash_inside_a_run_goes_to_the_run_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from harness.run import runner

    class Backend:
        name = "local"

    monkeypatch.setattr(runner, "create_backend", lambda *a, **k: Backend())
    monkeypatch.setattr(runner, "clean_local_leftovers", lambda: [])

    def crash(self: Any, *args: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runner.Runner, "_run", crash)
    store = tmp_path / "store"
    code = cli.main(["run", "--backend", "local", "--store", str(store), "--time-limit", "1"])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[-1]
        == "harness run: internal error: ZeroDivisionError: a bug (--verbose for the traceback)"
    )
    (log,) = store.glob("2*/harness.log")  # not store/latest
    text = log.read_text()
    assert "internal error" in text and "Traceback" in text and "ZeroDivisionError: a bug" in text


def test_the_store_is_checked_before_the_backend_exists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from harness.run import runner

    def no_backend(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("backend created before the store was checked")

    monkeypatch.setattr(runner, "create_backend", no_backend)
    monkeypatch.setattr(runner, "clean_local_leftovers", no_backend)
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    assert cli.main(["run", "--backend", "local", "--store", str(tmp_path / "passwd")]) == 2
    assert capsys.readouterr().err.endswith("passwd: not a directory\n")
    assert (tmp_path / "passwd").read_text() == "root:x:0:0\n"


# --------------------------------------------------------------------- links in run dirs


def test_write_atomic_never_follows_a_link_at_the_path(tmp_path: Path, outside: Path) -> None:
    target = tmp_path / "results.json"
    target.symlink_to(outside)
    write_atomic(target, b"{}")
    assert outside.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_bytes() == b"{}"


def test_every_old_temp_name_planted_as_a_link_is_harmless(run_dir: Path, outside: Path) -> None:
    # The names the harness used to write through, by path: each made a link to outside.
    for name in (
        "results.json.tmp", ".results.json.tmp", "history.jsonl.tmp", ".report.html.tmp",
        ".config.yaml.tmp", "config.yaml.tmp",
    ):  # fmt: skip
        (run_dir / name).symlink_to(outside)
    write_results(run_dir, {"verdict": None})
    write_config(run_dir, {"target": "reference"})
    (run_dir / "history" / "p1.jsonl").write_text(json.dumps(EVENT) + "\n")
    merge_histories([run_dir / "history" / "p1.jsonl"], run_dir / "history.jsonl")
    from harness.reports import write_run_report

    write_run_report(run_dir)
    assert outside.read_text() == "precious\n"
    for name in ("results.json", "config.yaml", "history.jsonl", "report.html"):
        assert (run_dir / name).is_file() and not (run_dir / name).is_symlink()


def test_a_link_in_a_directory_path_is_refused(tmp_path: Path, outside: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    with pytest.raises(UnsafePath, match="symbolic link"):
        write_atomic(tmp_path / "linked" / "x.json", b"1")
    assert list(real.iterdir()) == []


def test_history_writer_refuses_a_planted_link(run_dir: Path, outside: Path) -> None:
    (run_dir / "history" / "runner.jsonl").symlink_to(outside)
    with pytest.raises(UnsafePath):
        HistoryWriter(run_dir / "history" / "runner.jsonl")
    assert outside.read_text() == "precious\n"


def test_merge_refuses_a_node_part_that_is_a_link_or_a_fifo(run_dir: Path, outside: Path) -> None:
    (run_dir / "history" / "p1.jsonl").symlink_to(outside)
    with pytest.raises(HistoryError, match="symbolic link"):
        merge_histories([run_dir / "history" / "p1.jsonl"], run_dir / "history.jsonl")
    os.mkfifo(run_dir / "history" / "p2.jsonl")  # would hang a plain open() forever
    with pytest.raises(HistoryError, match="not a regular file"):
        merge_histories([run_dir / "history" / "p2.jsonl"], run_dir / "history.jsonl")


def test_open_read_refuses_links_and_fifos(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "l").symlink_to(outside)
    os.mkfifo(tmp_path / "f")
    for name in ("l", "f"):
        with pytest.raises(UnsafePath):
            open_read(tmp_path / name)


def test_clock_files_are_replaced_not_written_through(tmp_path: Path, outside: Path) -> None:
    clock = tmp_path / "candidate-clock.json"
    clock.symlink_to(outside)
    write_skew(clock, Skew(offset_ns=5))
    assert outside.read_text() == "precious\n"
    assert json.loads(clock.read_text())["offset_ns"] == 5


def test_the_node_side_clock_write_uses_a_fresh_temp_file(tmp_path: Path, outside: Path) -> None:
    import subprocess

    from harness.nemesis.clock import WRITE_SH

    path = tmp_path / "member-clock.json"
    # Every name the old script would have used, planted as a link to outside.
    for pid in range(1, 64):
        (tmp_path / f"member-clock.json.tmp.{pid}").symlink_to(outside)
    subprocess.run(["sh", "-c", WRITE_SH, "sh", '{"offset_ns": 1}', str(path)], check=True)
    assert outside.read_text() == "precious\n"
    assert path.read_text() == '{"offset_ns": 1}' and oct(path.stat().st_mode)[-3:] == "644"


# --------------------------------------------------------------------- docker nodes


def test_docker_nodes_get_the_run_dir_read_only_and_only_their_own_dirs_writable(
    tmp_path: Path,
) -> None:
    backend = object.__new__(docker_backend.DockerBackend)
    backend._shared = tmp_path
    binds = backend._node_binds("n2")
    assert binds[str(tmp_path)] == {"bind": str(tmp_path), "mode": "ro"}
    writable = sorted(k for k, v in binds.items() if v["mode"] == "rw")
    assert writable == sorted(str(tmp_path / d) for d in ("logs", "history", "nodes/n2"))
    assert all(v["bind"] == k for k, v in binds.items())  # same paths inside


def test_hand_over_never_follows_a_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        os, "fchown", lambda fd, uid, gid: changed.append((os.fstat(fd).st_ino, uid, gid))
    )
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: None)
    node_dir = tmp_path / "nodes" / "n1"
    (node_dir / "etcd-data").mkdir(parents=True)
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (node_dir / "planted").symlink_to(elsewhere)
    (tmp_path / "logs").mkdir()
    (tmp_path / "history").symlink_to(elsewhere)
    docker_backend._chown_dir(node_dir, subdirs=True)
    assert [c[0] for c in changed] == [(node_dir / "etcd-data").stat().st_ino]
    assert changed[0][1:] == (65534, 65534)
    changed.clear()
    docker_backend._chown_dir(tmp_path / "logs", subdirs=False)
    assert [c[1:] for c in changed] == [(-1, 65534)]  # group only: root keeps the directory
    with pytest.raises(BackendError, match="cannot hand"):
        docker_backend._chown_dir(tmp_path / "history", subdirs=False)


def test_docker_daemons_run_unprivileged() -> None:
    import inspect

    source = inspect.getsource(docker_backend.DockerBackend.spawn)
    assert "user=NODE_USER" in source and docker_backend.NODE_USER == "65534:65534"


# --------------------------------------------------------------------- the guard route


def fake_routes(monkeypatch: pytest.MonkeyPatch, routes: list[dict[str, Any]]) -> list[list[str]]:
    calls: list[list[str]] = []

    def sh(argv: list[str], *, check: bool = True, timeout: float = 30.0) -> RunResult:
        calls.append(list(argv))
        if argv[:4] == ["ip", "-j", "-4", "route"]:
            if "exact" in argv:
                exact = [r for r in routes if r.get("dst") == str(nx.TEST_NETWORK)]
                return RunResult(0, json.dumps(exact), "")
            return RunResult(0, json.dumps(routes), "")
        return RunResult(0, "", "")

    monkeypatch.setattr(nx, "sh", sh)
    monkeypatch.setattr(nx, "GUARD_MARKER", Path(os.devnull + ".nonexistent") / "x")
    return calls


@pytest.mark.parametrize(
    "wider",
    [
        {"dst": "10.0.0.0/8", "dev": "tun0"},
        {"dst": "10.192.0.0/10", "gateway": "192.0.2.7", "dev": "eth0"},
        {"dst": "10.0.0.0/8", "dev": "wg0", "table": "51820"},
    ],
)
def test_a_wider_route_over_the_test_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, wider: dict[str, Any]
) -> None:
    calls = fake_routes(monkeypatch, [{"dst": "default", "gateway": "192.0.2.1"}, wider])
    with pytest.raises(BackendError, match=f"inside the route {wider['dst']}.*shadow"):
        nx.ensure_guard_route()
    assert not any(c[:3] == ["ip", "route", "add"] for c in calls)


@pytest.mark.parametrize(
    "route",
    [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"type": "unreachable", "dst": "10.0.0.0/8"},
        {"type": "blackhole", "dst": "10.0.0.0/8"},
        {"dst": "10.213.7.0/24", "dev": "lhb123456"},
        {"dst": "10.214.0.0/16", "dev": "tun0"},
        {"type": "local", "dst": "10.0.0.0/8", "table": "local", "dev": "lo"},
    ],
)
def test_routes_that_shadow_nothing_are_not_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route: dict[str, Any]
) -> None:
    calls = fake_routes(monkeypatch, [route])
    monkeypatch.setattr(nx, "GUARD_MARKER", tmp_path / "marker")
    nx.ensure_guard_route()
    assert ["ip", "route", "add", "unreachable", str(nx.TEST_NETWORK)] in calls


# --------------------------------------------------------------------- owner labels


def test_owner_label_names_the_pid_namespace_and_boot() -> None:
    label = docker_backend._owner_label()
    host, pid, _start, pidns, boot = label.split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert pidns == str(os.stat("/proc/self/ns/pid").st_ino) and len(boot) == 36
    assert docker_backend._owner_alive(label)


def test_a_dead_owner_in_our_namespace_is_judged_dead() -> None:
    host, _, _, pidns, boot = docker_backend._owner_label().split(":")
    assert not docker_backend._owner_alive(f"{host}:{2**22 + 7}:12345:{pidns}:{boot}")
    assert not docker_backend._owner_alive(f"{host}:{2**22 + 7}:12345")  # older labels too


@pytest.mark.parametrize(
    "make",
    [
        # The same host name, pid and start time in another PID namespace: not ours.
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:{s}:{int(ns) + 1}:{b}",
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:{s}:{ns}:another-boot",
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:None",
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:soon",
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:{s}:{ns}",
        lambda h, p, s, ns, b: f"{h}:seven:{s}",
        lambda h, p, s, ns, b: f"{h}:{2**22 + 7}:١٢",  # non-ASCII digits
        lambda h, p, s, ns, b: "",
        lambda h, p, s, ns, b: f"other-host:{2**22 + 7}:{s}:{ns}:{b}",
    ],
)
def test_unreadable_or_foreign_labels_are_never_judged_dead(make: Any) -> None:
    label = make(*docker_backend._owner_label().split(":"))
    assert docker_backend._owner_alive(label) is True


def test_results_written_by_the_runner_are_valid_json(run_dir: Path) -> None:
    write_results(run_dir, {"seed": 2**63 - 1})
    assert orjson.loads((run_dir / "results.json").read_bytes())["seed"] == 2**63 - 1
