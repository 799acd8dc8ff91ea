"""`harness hosts check hosts.yaml`: the ssh backend's preflight, changing nothing on a host.

One line per host and check: reachable with a verified host key, root or passwordless
sudo, iptables, ss, python3 (>= 3.11 for the reference elector), the tools the backend
uses, free disk under the remote directory, the test address not the harness's own, and
the host clock's offset to this machine (for information only: nothing compares clocks).
Exit 0 when every host is ready, 1 when one is not, 2 for a bad inventory.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.backends.ssh_conn import HostError, TrustOnFirstUse, connect, fingerprint
from harness.backends.ssh_inventory import HostEntry, Inventory, InventoryError, load_inventory

MIN_FREE_MB = 500
CHECK_SCRIPT = r"""
id -u
for p in iptables ss python3 setsid timeout tar; do
  if command -v $p >/dev/null 2>&1; then echo "have $p"; else echo "lack $p"; fi
done
iptables -w -S INPUT >/dev/null 2>&1 && echo "iptables-works" || echo "iptables-fails"
python3 -c 'import sys; print("python %d.%d.%d" % sys.version_info[:3])' 2>/dev/null
d="$1"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "free $(df -Pk "$d" | awk 'NR==2 {print $4}') $d"
"""

Line = tuple[str, str, str, str]  # host, check, ok|FAIL|info, detail


def check_host(
    inventory: Inventory, entry: HostEntry, tofu: TrustOnFirstUse | None, need_python: bool
) -> list[Line]:
    name = entry.name
    try:
        host = connect(inventory, entry, tofu)
    except HostError as exc:
        return [(name, "reach", "FAIL", str(exc))]
    lines: list[Line] = []
    try:
        transport = host.client.get_transport()
        key = transport.get_remote_server_key() if transport is not None else None
        lines.append(
            (name, "reach", "ok",
             f"{entry.ssh}:{entry.port}, host key {fingerprint(key) if key else '?'} verified")
        )  # fmt: skip
        lines.append(
            (name, "root", "ok", "as root" if not host.sudo else f"as {inventory.user} via sudo -n")
        )
        r = host.exec(CHECK_SCRIPT, inventory.remote_dir, timeout=30)
        out = r.stdout.splitlines()
        if not out or out[0].strip() != "0":
            lines.append((name, "root", "FAIL", f"commands do not run as root (uid {out[:1]})"))
        have = {w.split()[1] for w in out if w.startswith("have ")}
        lack = [w.split()[1] for w in out if w.startswith("lack ")]
        lines.append(
            (name, "iptables", "ok" if "iptables-works" in out else "FAIL",
             "lists INPUT" if "iptables-works" in out else "missing or not usable as root")
        )  # fmt: skip
        lines.append(
            (
                name,
                "ss",
                "ok" if "ss" in have else "FAIL",
                "iproute2's ss" if "ss" in have else "missing",
            )
        )
        py = next((w.split()[1] for w in out if w.startswith("python ")), None)
        if py is None:
            lines.append((name, "python3", "FAIL", "missing (the watchdog needs python3)"))
        else:
            version = tuple(int(x) for x in py.split(".")[:2])
            old = version < (3, 11)
            status = "FAIL" if old and need_python else "ok"
            note = (
                "; too old for the reference elector (>= 3.11)" if old else "; reference elector ok"
            )
            lines.append((name, "python3", status, py + note))
        tools = [t for t in ("setsid", "timeout", "tar") if t in lack]
        lines.append(
            (
                name,
                "tools",
                "FAIL" if tools else "ok",
                f"missing {' '.join(tools)}" if tools else "setsid timeout tar",
            )
        )
        free = next((w.split() for w in out if w.startswith("free ")), None)
        if free and free[1].isdigit():
            mb = int(free[1]) // 1024
            lines.append(
                (name, "disk", "ok" if mb >= MIN_FREE_MB else "FAIL", f"{mb} MB free in {free[2]}")
            )
        else:
            lines.append((name, "disk", "FAIL", "could not read free space"))
        addr_ok = entry.address != host.source_address
        lines.append(
            (name, "address", "ok" if addr_ok else "FAIL",
             f"test address {entry.address}; harness connects from {host.source_address}"
             + ("" if addr_ok else ": the same, partitions would cut the harness"))
        )  # fmt: skip
        # Its own short round trip, so the midpoint estimate is as tight as it can be.
        t0 = time.time()
        stamp = host.exec("date +%s.%N", timeout=10).stdout.strip()
        t1 = time.time()
        if stamp.replace(".", "").isdigit():
            offset = float(stamp) - (t0 + t1) / 2
            lines.append(
                (
                    name,
                    "clock",
                    "info",
                    f"offset {offset:+.3f} s to this machine (round trip {t1 - t0:.3f} s)",
                )
            )
    except HostError as exc:
        lines.append((name, "commands", "FAIL", str(exc)))
    finally:
        host.close()
    return lines


def run_checks(
    inventory: Inventory, *, tofu: bool = False, need_python: bool = False
) -> tuple[list[Line], list[str]]:
    """Every host's lines (in inventory order) and the fingerprints trusted on first use."""
    policy = TrustOnFirstUse(inventory.known_hosts) if tofu else None
    with ThreadPoolExecutor(max_workers=len(inventory.nodes)) as pool:
        results = list(
            pool.map(lambda e: check_host(inventory, e, policy, need_python), inventory.nodes)
        )
    return [line for lines in results for line in lines], (policy.added if policy else [])


def add_parser(sub: Any) -> None:
    hosts = sub.add_parser("hosts", help="the ssh backend's hosts: `harness hosts check FILE`")
    hsub = hosts.add_subparsers(dest="hosts_command", required=True)
    check = hsub.add_parser(
        "check",
        help="preflight every host of an inventory (changes nothing)",
        description="Exit 0 when every host is ready, 1 when one is not, 2 bad inventory.",
    )
    check.add_argument("file", metavar="FILE", help="the inventory (hosts.yaml)")
    check.add_argument(
        "--target", choices=("reference", "etcd", "consul"), default=None,
        help="require what this target needs (reference: python3 >= 3.11)",
    )  # fmt: skip
    check.add_argument(
        "--trust-on-first-use", action="store_true",
        help="accept host keys not yet in known_hosts, add them there and print their "
        "fingerprints (a changed key is still refused)",
    )  # fmt: skip
    check.set_defaults(handler=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.file)
    except InventoryError as exc:
        print(f"harness hosts check: {exc}", file=sys.stderr)
        return 2
    lines, added = run_checks(
        inventory, tofu=args.trust_on_first_use, need_python=args.target == "reference"
    )
    for line in added:
        print(f"trusted on first use, added to {inventory.known_hosts}: {line}")
    width = max(len(n.name) for n in inventory.nodes)
    for host, what, status, detail in lines:
        print(f"{host:<{width}}  {what:<9} {status:<4}  {detail}")
    failed = {h for h, _, s, _ in lines if s == "FAIL"}
    ready = len(inventory.nodes) - len(failed)
    print(f"{ready}/{len(inventory.nodes)} hosts ready")
    return 0 if not failed else 1
