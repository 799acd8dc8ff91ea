"""Bring your own leader code: an external candidate program, or your own election client.

A run's `workload:` section may name, besides the discipline settings of the built-in
candidate,

    command: [python3, my_leader.py]   # an external candidate, any language (docs/CANDIDATE.md)
    files: [my_leader.py, lib/]        # copied into <run dir>/program/ (the command's cwd)
    requirements: [etcd3gw==2.4.2]     # Python packages the program needs on the nodes
    client: "mypkg.election:MyClient"  # or: your ElectionClient under the built-in disciplines
    options: {ttl_s: 2}                # keyword options for that client

`command` and `client` exclude each other. Files are resolved relative to the run's
configuration file. Requirements: on the docker backend they are downloaded as wheels on
the host and installed into a layer of the run's own image (harness.image.build, cached
by their hash: a second run builds nothing), which the backend puts on the program's
PYTHONPATH; on the local and ssh backends the program (or, on ssh, the candidate) runs
on this machine, so they must already be importable here (checked before the run).

An external program appends its events (format v1 without `process` and `node`, with
`time` on the run's reference clock or `wall_ns` on the wall clock) to `$HARNESS_HISTORY`;
`normalize_program_history` turns that file into the process's part of the history,
naming the node, the line and the problem when something is wrong.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.errors import ConfigError, HarnessError
from harness.validation import Reader

PROGRAM_KEYS = ("command", "files", "requirements", "client", "options", "start_timeout_s")
# How long every candidate may take to record its first event before the run gives up
# (a program on a loaded machine, or a JVM, starts slowly: `start_timeout_s` raises it).
DEFAULT_START_TIMEOUT_S = 60.0
PROGRAM_DIR = "program"
SDK_MODULE = "leader_harness_client.py"
EVENT_TYPES = ("invoke", "ok", "fail", "info")
PROGRAM_FS = ("acquire", "release", "lost", "write")
# Env vars every external candidate gets (docs/CANDIDATE.md lists them with meanings).
ENV_NAMES = (
    "HARNESS_PROCESS", "HARNESS_NODE", "HARNESS_NODES", "HARNESS_ENDPOINT",
    "HARNESS_ENDPOINTS", "HARNESS_RESOURCE", "HARNESS_ELECTION", "HARNESS_TARGET",
    "HARNESS_TARGET_OPTIONS", "HARNESS_HISTORY", "HARNESS_T0_NS", "HARNESS_WALL_T0_NS",
    "HARNESS_CLOCK_FILE", "HARNESS_SETTINGS", "HARNESS_SEED", "HARNESS_SERVER_BIN",
)  # fmt: skip


class ProgramError(ConfigError):
    """A bad `workload` program setting, or a program that cannot be prepared."""


class ProgramHistoryError(HarnessError, ValueError):
    """An external candidate recorded nothing, or something malformed: names node and line."""


@dataclass(frozen=True)
class ProgramSpec:
    """The `workload:` keys that bring the team's own code."""

    command: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()  # absolute host paths
    requirements: tuple[str, ...] = ()
    client: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    @property
    def external(self) -> bool:
        return bool(self.command)

    @property
    def needs_program_dir(self) -> bool:
        return bool(self.command or self.files or self.requirements or self.client)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.command:
            out["command"] = list(self.command)
        if self.files:
            out["files"] = [str(p) for p in self.files]
        if self.requirements:
            out["requirements"] = list(self.requirements)
        if self.client:
            out["client"] = self.client
            out["options"] = dict(self.options)
        if self.start_timeout_s != DEFAULT_START_TIMEOUT_S:
            out["start_timeout_s"] = self.start_timeout_s
        return out


_CLIENT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]*$")


def parse_program(data: Mapping[str, Any], source: str) -> ProgramSpec:
    """Read the program keys of a `workload:` mapping; paths relative to `source`'s folder."""
    r = Reader(data, source, "workload.", error=ProgramError)
    base = Path(source).parent if source and Path(source).suffix else Path(".")
    command = _strings(r, "command")
    files = []
    for name in _strings(r, "files"):
        path = (base / name).resolve()
        if not path.exists():
            raise r.problem("files", f"{name!r} does not exist (looked for {path})")
        files.append(path)
    requirements = _strings(r, "requirements")
    for req in requirements:
        if not _REQUIREMENT_RE.match(req) or req.startswith("-"):
            raise r.fail("requirements", "requirement specifiers like 'name==1.2'", req)
    client = r.get("client")
    if client is not None and (not isinstance(client, str) or not _CLIENT_RE.match(client)):
        raise r.fail("client", "'module.path:ClassName'", client)
    options = r.mapping("options")
    if "options" in r and client is None:
        raise r.problem("options", "only used with workload.client")
    if command and client:
        raise r.error(
            f"{source}: keys 'workload.command' and 'workload.client' exclude each other: "
            "an external program brings its own client"
        )
    timeout = r.number("start_timeout_s", DEFAULT_START_TIMEOUT_S, 0, 3600, above_low=True)
    return ProgramSpec(
        tuple(command), tuple(files), tuple(requirements), client, dict(options), timeout
    )


def _strings(r: Reader, key: str) -> list[str]:
    value = r.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise r.fail(key, "a list of non-empty strings", value)
    return list(value)


# --- preparing the program directory -------------------------------------------------


def prepare_program_dir(spec: ProgramSpec, run_dir: Path, backend: str) -> Path:
    """Copy the files and the SDK into <run dir>/program/ and make requirements
    available; returns the directory (the command's working directory on every node)."""
    dest = run_dir / PROGRAM_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for path in spec.files:
        target = dest / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
    shutil.copy2(Path(__file__).with_name(SDK_MODULE), dest / SDK_MODULE)
    if spec.requirements and backend != "docker":
        # The docker backend builds them into the run image's requirements layer.
        check_importable_on_host(spec.requirements)
    return dest


def check_importable_on_host(requirements: Sequence[str]) -> None:
    """Local backend: the program runs on this machine, so its requirements must be
    installed here (in the Python that runs the program); say which are missing."""
    missing = []
    for req in requirements:
        name = re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(req)
    if missing:
        raise ProgramError(
            "workload.requirements: on the local backend the program runs on this machine, "
            f"so these must be installed here first: {', '.join(missing)} "
            f"(e.g. {sys.executable} -m pip install {' '.join(missing)})"
        )


def program_env(program_dir: Path, python_path: Sequence[str] = ()) -> dict[str, str]:
    """PYTHONPATH for the program: its own folder, then where the backend put its
    requirements (`python_path`, the docker run image's requirements layer)."""
    return {"PYTHONPATH": os.pathsep.join([str(program_dir), *python_path])}


# --- reading back what a program recorded --------------------------------------------


def raw_history_path(run_dir: Path, process: int) -> Path:
    # Not *.jsonl: only the normalized file is part of the merged history.
    return run_dir / "history" / f"p{process}.program-events"


def normalize_program_history(
    raw: Path, out: Path, *, process: int, node: str, wall_t0_ns: int
) -> int:
    """Validate the program's own event file and write it as format v1 (process and node
    filled in, `wall_ns` turned into `time`); returns the number of events.

    Raises ProgramHistoryError naming the node, process, file line and the problem."""
    where = f"external candidate on {node} (process {process}, {raw.name})"
    try:
        lines = raw.read_bytes().splitlines()
    except FileNotFoundError:
        lines = []
    events: list[dict[str, Any]] = []
    last = -1
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if lineno == len(lines) and not raw.read_bytes().endswith(b"\n"):
            break  # a line cut by the stop (SIGKILL mid-write): not an event yet
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ProgramHistoryError(f"{where} line {lineno}: not valid JSON: {exc}") from None
        event = _program_event(obj, where, lineno, wall_t0_ns)
        if event["time"] <= last:
            raise ProgramHistoryError(
                f"{where} line {lineno}: time {event['time']} is not after the previous "
                f"event's {last}: a process's events must be strictly ordered in time"
            )
        last = event["time"]
        event["process"] = process
        event["node"] = node
        events.append(event)
    out.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return len(events)


def _program_event(obj: Any, where: str, lineno: int, wall_t0_ns: int) -> dict[str, Any]:
    def bad(problem: str) -> ProgramHistoryError:
        return ProgramHistoryError(f"{where} line {lineno}: {problem}")

    if not isinstance(obj, dict):
        raise bad(f"expected a JSON object, got {obj!r}"[:200])
    unknown = set(obj) - {"time", "wall_ns", "type", "f", "value", "election"}
    if unknown:
        raise bad(
            f"unknown field(s) {', '.join(sorted(unknown))}; expected time or wall_ns, type, "
            "f, value, election (the harness adds process and node)"
        )
    has_time, has_wall = "time" in obj, "wall_ns" in obj
    if has_time == has_wall:
        raise bad("expected exactly one of 'time' (reference clock ns) or 'wall_ns'")
    stamp = obj["time"] if has_time else obj["wall_ns"]
    if isinstance(stamp, bool) or not isinstance(stamp, int):
        raise bad(f"'{'time' if has_time else 'wall_ns'}' must be an integer, got {stamp!r}")
    etype, f = obj.get("type"), obj.get("f")
    if etype not in EVENT_TYPES:
        raise bad(f"'type' must be one of {', '.join(EVENT_TYPES)}, got {etype!r}")
    if f not in PROGRAM_FS:
        raise bad(f"'f' must be one of {', '.join(PROGRAM_FS)}, got {f!r}")
    value = obj.get("value")
    if value is not None and not isinstance(value, dict):
        raise bad(f"'value' must be an object, got {value!r}"[:200])
    if f == "acquire" and etype == "ok":
        token = (value or {}).get("token")
        if isinstance(token, bool) or not isinstance(token, int):
            raise bad(f"an acquire ok needs value.token, an integer; got {value!r}"[:200])
    if f == "write" and etype == "invoke":
        token = (value or {}).get("token")
        if isinstance(token, bool) or not isinstance(token, int):
            raise bad(f"a write invoke needs value.token, an integer; got {value!r}"[:200])
    if f == "lost" and etype != "info":
        raise bad(f"'lost' is an observation: type must be info, got {etype!r}")
    event: dict[str, Any] = {
        "time": stamp if has_time else stamp - wall_t0_ns,
        "type": etype,
        "f": f,
    }
    if value is not None:
        event["value"] = value
    if "election" in obj:
        event["election"] = obj["election"]
    return event
