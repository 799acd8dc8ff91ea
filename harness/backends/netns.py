"""Building blocks of the local backend: names, the run's state file, host commands.

Everything here is about *exact* names recorded for one run: how they are derived (short
enough for Linux's 15-character interface names, unique per run), how they are written to
a JSON state file before anything is created (so a crashed harness can be cleaned up by
the next one), and how each recorded object is removed again. Nothing here ever removes
by pattern: an object is deleted only if its exact name (or pid + start time) is recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.backends.base import BackendError, RunResult
from harness.wait import WaitTimeout, wait_until

# The only addresses the local backend ever uses. A host-wide `unreachable` route for the
# whole range makes any addressing mistake fail locally instead of leaving the machine.
TEST_NETWORK = ipaddress.IPv4Network("10.213.0.0/16")
DEFAULT_STATE_DIR = Path("/run/leader-harness/local")
# One lock for every run on this host, whatever its state directory: choosing a short id
# and a /24 and recording them must be atomic across concurrent runs.
LOCK_PATH = Path("/run/leader-harness/local.lock")
# Present while the guard route was added by this harness (and not by an administrator),
# so the last run to tear down removes only a route that the harness itself added.
GUARD_MARKER = Path("/run/leader-harness/local-guard-route")
# Every state directory a run on this host has used, one per line. Clean-up reads all of
# them to tell a live run's objects from orphans (objects whose state file is gone):
# tests and users may pass their own state directory.
STATE_DIRS_PATH = Path("/run/leader-harness/local-state-dirs")

STATE_VERSION = 1
IFNAMSIZ = 15  # Linux interface names: at most 15 characters
FIRST_NODE_HOST = 11  # nodes get .11, .12, ...; the host (bridge) gets .1
COMMENT_PREFIX = "leader-harness local run "

_SHORT_ID = re.compile(r"^[0-9a-f]{6}$")
# Names this backend makes (make_names), with the short id as group 1.
_OWN_NETNS = re.compile(r"^lh-([0-9a-f]{6})-[A-Za-z0-9_-]+$")
_OWN_LINK = re.compile(r"^lh(?:b([0-9a-f]{6})|([0-9a-f]{6})n[0-9]{1,3})$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class NodeNames:
    """The exact names of one node's objects on the host."""

    node: str  # the harness's node name ("n1")
    netns: str  # network namespace, "lh-<id>-<node>"
    veth: str  # host side of the veth pair, "lh<id>n<index>"; the peer is eth0 in netns
    address: str  # 10.213.X.(10+index)


@dataclass(frozen=True)
class RunNames:
    """The exact names of every object one run creates."""

    short_id: str
    subnet: str  # 10.213.X.0/24
    bridge: str  # "lhb<id>"
    host_address: str  # 10.213.X.1, on the bridge
    nodes: tuple[NodeNames, ...]
    comment: str  # iptables comment naming the run

    def forward_rules(self) -> list[list[str]]:
        """The FORWARD rules for this run's bridge, as argv after `-I/-D/-C FORWARD`.

        The host's FORWARD policy is DROP and bridged packets pass through it
        (bridge-nf-call-iptables=1), so node-to-node traffic needs an ACCEPT. The DROP
        keeps nodes from having anything routed off the bridge (their default route
        points at the host and the host forwards): test packets never leave the machine
        and two runs' nodes never reach each other.
        """
        comment = ["-m", "comment", "--comment", self.comment]
        return [
            ["-i", self.bridge, "-o", self.bridge, *comment, "-j", "ACCEPT"],
            ["-i", self.bridge, "!", "-o", self.bridge, *comment, "-j", "DROP"],
        ]


def validate_short_id(short_id: str) -> str:
    if not _SHORT_ID.match(short_id):
        raise ValueError(f"short run id must be 6 lowercase hex digits, got {short_id!r}")
    return short_id


def validate_node_names(names: Sequence[str]) -> None:
    if not names:
        raise BackendError("local backend: no nodes to provision")
    if len(set(names)) != len(names):
        raise BackendError(f"local backend: duplicate node names in {list(names)}")
    for name in names:
        if not _NODE_NAME.match(name):
            raise BackendError(
                f"local backend: node name {name!r} must be letters, digits, '_' or '-' "
                "(at most 32, starting with a letter or digit)"
            )
    if len(names) > 254 - FIRST_NODE_HOST + 1:
        raise BackendError(f"local backend: at most 244 nodes per run, got {len(names)}")


def make_names(short_id: str, subnet_index: int, node_names: Sequence[str]) -> RunNames:
    """Every name a run will create, from its short id and its /24 (10.213.<index>.0/24).

    The veth is named by the node's position (`n1`, `n2`, ...) rather than its name so
    that any valid node name fits the 15-character limit; with the usual names `n1`...
    the two coincide.
    """
    validate_short_id(short_id)
    validate_node_names(node_names)
    if not 1 <= subnet_index <= 254:
        raise ValueError(f"subnet index must be in 1..254, got {subnet_index}")
    base = f"10.213.{subnet_index}"
    nodes = tuple(
        NodeNames(
            node=name,
            netns=f"lh-{short_id}-{name}",
            veth=f"lh{short_id}n{i}",
            address=f"{base}.{FIRST_NODE_HOST + i - 1}",
        )
        for i, name in enumerate(node_names, start=1)
    )
    for n in nodes:
        assert len(n.veth) <= IFNAMSIZ, n.veth  # at most 244 nodes: "lh" + 6 + "n" + 3
    return RunNames(
        short_id=short_id,
        subnet=f"{base}.0/24",
        bridge=f"lhb{short_id}",
        host_address=f"{base}.1",
        nodes=nodes,
        comment=f"{COMMENT_PREFIX}{short_id}",
    )


# --------------------------------------------------------------------------- processes


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None if no such process.

    A pid plus its start time identifies a process even after the pid is reused.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3


def proc_state(pid: int) -> str | None:
    """Field 3 of /proc/<pid>/stat ('R', 'S', 'T', 'Z', ...), None if no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2 :].split()[0].decode()


def same_process(pid: int, start_time: int | None) -> bool:
    """True if `pid` is still the process that had `start_time` (and is not a zombie)."""
    return (
        start_time is not None
        and proc_start_time(pid) == start_time
        and proc_state(pid) not in (None, "Z", "X")
    )


# --------------------------------------------------------------------------- state file


@dataclass
class DaemonRecord:
    pid: int
    start_time: int
    name: str
    node: str


@dataclass
class RunState:
    """What one run has (or is about to have) created; written before each creation."""

    run_id: str
    short_id: str
    owner_pid: int
    owner_start_time: int
    subnet: str
    bridge: str
    netns: list[str]
    veths: list[str]
    forward_rules: list[list[str]]
    daemons: list[DaemonRecord] = field(default_factory=list)
    version: int = STATE_VERSION

    @classmethod
    def for_names(cls, run_id: str, names: RunNames) -> RunState:
        pid = os.getpid()
        start = proc_start_time(pid)
        assert start is not None
        return cls(
            run_id=run_id,
            short_id=names.short_id,
            owner_pid=pid,
            owner_start_time=start,
            subnet=names.subnet,
            bridge=names.bridge,
            netns=[n.netns for n in names.nodes],
            veths=[n.veth for n in names.nodes],
            forward_rules=names.forward_rules(),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunState:
        """Parse and validate a state file; ValueError says what is wrong.

        Validation matters because these names are later passed to deletion commands:
        a name that does not look like one this backend makes is refused, never used.
        """
        fields = _Fields(_state_object(text))
        short_id = validate_short_id(fields.get("short_id", str))
        subnet = _checked_subnet(fields.get("subnet", str))
        bridge = _checked_bridge(fields.get("bridge", str), short_id)
        netns = _checked_netns(_str_list(fields.get("netns", list), "netns"), short_id)
        veths = _checked_veths(_str_list(fields.get("veths", list), "veths"), short_id)
        rules = _checked_rules(fields.get("forward_rules", list), short_id, bridge)
        daemons = _checked_daemons(fields.get("daemons", list))
        return cls(
            run_id=fields.get("run_id", str),
            short_id=short_id,
            owner_pid=fields.get("owner_pid", int),
            owner_start_time=fields.get("owner_start_time", int),
            subnet=subnet,
            bridge=bridge,
            netns=netns,
            veths=veths,
            forward_rules=rules,
            daemons=daemons,
        )

    def owner_alive(self) -> bool:
        return same_process(self.owner_pid, self.owner_start_time)


T = TypeVar("T")


def _state_object(text: str) -> dict[str, Any]:
    """The state file's top-level object, of the version this code writes."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("top level must be an object")
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported version {data.get('version')!r}")
    return data


class _Fields:
    """Typed access to a state object's keys: missing or mistyped keys are errors."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, key: str, typ: type[T]) -> T:
        if key not in self._data:
            raise ValueError(f"missing key {key!r}")
        value = self._data[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValueError(f"{key!r} must be {typ.__name__}, got {value!r}")
        return value


def _checked_subnet(subnet: str) -> str:
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise ValueError(f"bad subnet {subnet!r}") from exc
    if not (net.prefixlen == 24 and net.subnet_of(TEST_NETWORK)):
        raise ValueError(f"subnet {subnet!r} is not a /24 of {TEST_NETWORK}")
    return subnet


def _checked_bridge(bridge: str, short_id: str) -> str:
    if bridge != f"lhb{short_id}":
        raise ValueError(f"bridge {bridge!r} is not this run's bridge")
    return bridge


def _checked_netns(netns: list[str], short_id: str) -> list[str]:
    for ns in netns:
        if not (ns.startswith(f"lh-{short_id}-") and _NODE_NAME.match(ns[10:])):
            raise ValueError(f"netns {ns!r} is not one of this run's namespaces")
    return netns


def _checked_veths(veths: list[str], short_id: str) -> list[str]:
    for veth in veths:
        if not re.fullmatch(rf"lh{short_id}n[0-9]{{1,3}}", veth):
            raise ValueError(f"veth {veth!r} is not one of this run's interfaces")
    return veths


def _checked_rules(raw: list[Any], short_id: str, bridge: str) -> list[list[str]]:
    rules = [_str_list(r, "forward_rules[]") for r in raw]
    for rule in rules:
        # A rule is deleted by exact match; insisting on our comment and bridge means a
        # tampered file cannot make us delete somebody else's rule.
        if f"{COMMENT_PREFIX}{short_id}" not in rule or bridge not in rule:
            raise ValueError(f"forward rule {rule!r} does not name this run")
    return rules


def _checked_daemons(raw: list[Any]) -> list[DaemonRecord]:
    daemons = []
    for d in raw:
        if not isinstance(d, dict):
            raise ValueError(f"daemon entry {d!r} must be an object")
        try:
            rec = DaemonRecord(
                pid=int(d["pid"]),
                start_time=int(d["start_time"]),
                name=str(d["name"]),
                node=str(d["node"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad daemon entry {d!r}") from exc
        if rec.pid <= 1:
            raise ValueError(f"bad daemon pid {rec.pid}")
        daemons.append(rec)
    return daemons


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what!r} must be a list of strings, got {value!r}")
    return list(value)


def state_path(state_dir: Path, short_id: str) -> Path:
    return state_dir / f"{short_id}.json"


def write_state(state_dir: Path, state: RunState) -> None:
    """Atomically (temp file + rename) write the run's state file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    final = state_path(state_dir, state.short_id)
    tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, final)


def register_state_dir(state_dir: Path) -> None:
    """Remember `state_dir` host-wide (see STATE_DIRS_PATH). Call with `host_lock` held."""
    resolved = str(state_dir.resolve())
    if "\n" in resolved:
        raise BackendError(f"local backend: state directory {resolved!r} has a newline")
    if resolved not in known_state_dirs():
        STATE_DIRS_PATH.parent.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIRS_PATH, "a") as f:
            f.write(resolved + "\n")


def known_state_dirs() -> list[str]:
    try:
        return [line for line in STATE_DIRS_PATH.read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def read_states(state_dir: Path) -> Iterator[tuple[Path, RunState | ValueError]]:
    """Every state file in `state_dir` with its parsed state, or the parse error."""
    if not state_dir.is_dir():
        return
    for path in sorted(state_dir.glob("*.json")):
        try:
            yield path, RunState.from_json(path.read_text())
        except FileNotFoundError:
            continue  # removed by its owner while we were listing
        except ValueError as exc:
            yield path, exc


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """Serialise id/subnet allocation and guard-route changes across all runs on the host."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- host commands


def sh(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> RunResult:
    """Run a host command (ip, iptables); BackendError with its stderr if it fails."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"local backend: `{' '.join(argv)}` timed out after {timeout}s") from exc
    except FileNotFoundError as exc:
        raise BackendError(f"local backend: {argv[0]} not found") from exc
    result = RunResult(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise BackendError(
            f"local backend: `{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return result


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def used_subnet_indexes(state_dir: Path) -> set[int]:
    """The X of every 10.213.X.0/24 that is in use by an address, a route or a state file."""
    used: set[int] = set()

    def mark(net: ipaddress.IPv4Network) -> None:
        if not net.overlaps(TEST_NETWORK):
            return
        if net.prefixlen <= 16:
            # The guard route itself, or a wider route: says nothing about a /24. A wider
            # *non-guard* route over the range is refused separately (see ensure_guard).
            return
        for x in range(1, 255):
            if net.overlaps(ipaddress.IPv4Network(f"10.213.{x}.0/24")):
                used.add(x)

    addrs = json.loads(sh(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            mark(ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network)
    routes = json.loads(sh(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for r in routes:
        dst = r.get("dst", "default")
        if dst == "default":
            continue
        with contextlib.suppress(ValueError):
            mark(ipaddress.IPv4Network(dst, strict=False))
    for _, st in read_states(state_dir):
        if isinstance(st, RunState):
            mark(ipaddress.IPv4Network(st.subnet))
    return used


# Route types that carry no traffic anywhere: covering the test range with one of these
# hides no real host, so the guard route may sit inside it.
_DEAD_ROUTE_TYPES = ("unreachable", "blackhole", "prohibit", "throw")


def covering_routes(routes: Sequence[dict[str, object]]) -> list[str]:
    """The routes (from `ip -j route show table all`) that send a wider range holding the
    whole test network somewhere real: a VPN's or a LAN's 10.0.0.0/8, say. The default
    route is not one (it covers everything, and more specific routes are how it is used)."""
    found = []
    for r in routes:
        dst = r.get("dst")
        if not isinstance(dst, str) or dst == "default" or r.get("type") in _DEAD_ROUTE_TYPES:
            continue
        if r.get("table") in ("local",):
            continue  # the kernel's own local/broadcast addresses
        try:
            net = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if net.prefixlen < TEST_NETWORK.prefixlen and TEST_NETWORK.subnet_of(net):
            where = " ".join(
                str(part)
                for part in (dst, "dev", r.get("dev"), "table", r.get("table", "main"))
                if part is not None
            )
            found.append(where)
    return found


def ensure_guard_route() -> None:
    """Make sure `unreachable 10.213.0.0/16` is in the host's main table.

    If the range is routed somewhere real on this host, refuse to run at all: our
    /24s would then shadow somebody's network. The same for a wider route holding the
    range (a VPN or LAN on 10.0.0.0/8): the guard route, more specific, would cut this
    host off from any real 10.213.x.y there.
    """
    wider = covering_routes(
        json.loads(sh(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    )
    if wider:
        raise BackendError(
            f"test network {TEST_NETWORK} lies inside the route {wider[0]} on this host: its "
            "guard route and test networks would shadow real hosts there; refusing to run "
            "(run where no route covers it)"
        )
    routes = json.loads(
        sh(["ip", "-j", "-4", "route", "show", "exact", str(TEST_NETWORK)]).stdout or "[]"
    )
    if routes:
        if all(r.get("type") == "unreachable" for r in routes):
            return
        raise BackendError(
            f"local backend: {TEST_NETWORK} is routed on this host ({routes}); "
            "refusing to use it as the test network"
        )
    GUARD_MARKER.parent.mkdir(parents=True, exist_ok=True)
    GUARD_MARKER.write_text(f"added by pid {os.getpid()}\n")
    sh(["ip", "route", "add", "unreachable", str(TEST_NETWORK)])


def guard_route_present() -> bool:
    out = sh(["ip", "-j", "-4", "route", "show", "exact", str(TEST_NETWORK)], check=False)
    return any(r.get("type") == "unreachable" for r in json.loads(out.stdout or "[]"))


def maybe_remove_guard_route(state_dir: Path) -> str | None:
    """Remove the guard route if the harness added it and no run needs it any more.

    "Needs it" is judged both by state files and by live addresses in the range, so a run
    using another state directory keeps its guard too. Call with `host_lock` held.
    """
    if not GUARD_MARKER.exists():
        return None  # added by someone else (or never): not ours to remove
    if any(isinstance(st, RunState) for _, st in read_states(state_dir)):
        return None
    addrs = json.loads(sh(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            if ipaddress.IPv4Address(a["local"]) in TEST_NETWORK:
                return None
    if guard_route_present():
        sh(["ip", "route", "del", "unreachable", str(TEST_NETWORK)], check=False)
    GUARD_MARKER.unlink(missing_ok=True)
    return f"removed guard route unreachable {TEST_NETWORK}"


# --------------------------------------------------------------------------- removal


def netns_pids(netns: str) -> list[int]:
    """Pids of every process whose network namespace is `netns` (ours by exact name)."""
    out = sh(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def kill_pids(pids: Sequence[int], *, wait: float = 2.0) -> None:
    """SIGCONT then SIGKILL each pid, then wait (bounded) until they are gone or zombies."""
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    with contextlib.suppress(WaitTimeout):  # best effort: the caller goes on regardless
        wait_until(
            lambda: all(proc_state(p) in (None, "Z", "X") for p in pids),
            wait,
            f"killed processes {list(pids)} to go",
        )


def orphan_states(state_dir: Path) -> list[RunState]:
    """Objects named like this backend's whose run has no state file in any state
    directory used on this host, grouped by short id as removable states.

    They come from a run that died between creating an object and recording it, or whose
    state file was removed by someone else. Call with `host_lock` held: a run records its
    names before creating anything and holds the lock until creation is done, and removes
    its state file only after its objects, so under the lock an unrecorded object has no
    owner. Directories that no longer hold any state file are forgotten.
    """
    dirs = {str(state_dir.resolve()), *known_state_dirs()}
    recorded: set[str] = set()
    live_dirs = []
    for d in sorted(dirs):
        states = list(read_states(Path(d)))
        if states:
            live_dirs.append(d)
        for path, st in states:
            # An unreadable state file still claims its id: never sweep what it may name.
            recorded.add(st.short_id if isinstance(st, RunState) else path.stem)
    with contextlib.suppress(OSError):
        STATE_DIRS_PATH.write_text("".join(f"{d}\n" for d in live_dirs))
    found: dict[str, RunState] = {}

    def orphan(sid: str) -> RunState | None:
        if sid in recorded:
            return None
        if sid not in found:
            bridge = f"lhb{sid}"
            comment = ["-m", "comment", "--comment", f"{COMMENT_PREFIX}{sid}"]
            found[sid] = RunState(
                run_id=f"orphan {sid}", short_id=sid, owner_pid=0, owner_start_time=0,
                subnet="", bridge=bridge, netns=[], veths=[],
                forward_rules=[
                    ["-i", bridge, "-o", bridge, *comment, "-j", "ACCEPT"],
                    ["-i", bridge, "!", "-o", bridge, *comment, "-j", "DROP"],
                ],
            )  # fmt: skip
        return found[sid]

    if os.path.isdir("/run/netns"):
        for name in sorted(os.listdir("/run/netns")):
            m = _OWN_NETNS.match(name)
            if m and (o := orphan(m.group(1))) is not None:
                o.netns.append(name)
    for name in sorted(os.listdir("/sys/class/net")):
        m = _OWN_LINK.match(name)
        if m and m.group(2) and (o := orphan(m.group(2))) is not None:
            o.veths.append(name)
        elif m and m.group(1):
            orphan(m.group(1))  # the bridge: its name is the state's already
    rules = sh(["iptables", "-w", "-S", "FORWARD"], check=False).stdout
    for sid in re.findall(rf"{COMMENT_PREFIX}([0-9a-f]{{6}})\b", rules):
        orphan(sid)  # its FORWARD rules are the state's already
    return [found[sid] for sid in sorted(found)]


def remove_recorded(state: RunState, *, skip_daemons: bool = False) -> tuple[list[str], list[str]]:
    """Remove everything `state` records, by exact name; returns (removed, errors).

    Order: processes first (a namespace with live processes outlives `ip netns delete`),
    then veths (deleting the host end removes eth0 in the namespace at once, instead of
    whenever the kernel finishes destroying the namespace), then namespaces, the bridge,
    the FORWARD rules. Every step tolerates things that are already gone, so it works
    after a half-done provisioning and when called twice.
    """
    removed: list[str] = []
    errors: list[str] = []
    sid = state.short_id

    if not skip_daemons:
        live = [d for d in state.daemons if same_process(d.pid, d.start_time)]
        kill_pids([d.pid for d in live])
        removed += [f"run {sid}: killed daemon {d.name} on {d.node} (pid {d.pid})" for d in live]
    for ns in state.netns:
        if netns_exists(ns):
            pids = netns_pids(ns)
            if pids:
                kill_pids(pids)
                removed.append(f"run {sid}: killed {len(pids)} process(es) in netns {ns}")
    for veth in state.veths:
        if link_exists(veth):
            r = sh(["ip", "link", "del", veth], check=False)
            if r.returncode == 0 or not link_exists(veth):
                removed.append(f"run {sid}: deleted veth {veth}")
            else:
                errors.append(f"veth {veth}: {r.stderr.strip()}")
    for ns in state.netns:
        if netns_exists(ns):
            r = sh(["ip", "netns", "del", ns], check=False)
            if r.returncode == 0:
                removed.append(f"run {sid}: deleted netns {ns}")
            else:
                errors.append(f"netns {ns}: {r.stderr.strip()}")
    if link_exists(state.bridge):
        r = sh(["ip", "link", "del", state.bridge], check=False)
        if r.returncode == 0:
            removed.append(f"run {sid}: deleted bridge {state.bridge}")
        else:
            errors.append(f"bridge {state.bridge}: {r.stderr.strip()}")
    for rule in state.forward_rules:
        # Normally inserted once; the loop also handles a duplicate left by a crash
        # between insertion and recording. Bounded so a misbehaving iptables cannot spin.
        for _ in range(8):
            if sh(["iptables", "-w", "-C", "FORWARD", *rule], check=False).returncode != 0:
                break
            r = sh(["iptables", "-w", "-D", "FORWARD", *rule], check=False)
            if r.returncode != 0:
                errors.append(f"FORWARD rule {rule}: {r.stderr.strip()}")
                break
            removed.append(f"run {sid}: deleted FORWARD rule {' '.join(rule)}")
    return removed, errors
