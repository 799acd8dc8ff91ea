"""The ssh backend's dead man's switch: a watchdog that heals a host if the harness vanishes.

This file is uploaded as it is to every host at provision and run there with the host's
`python3` (standard library only, any Python 3), as the command of an SSH session of its
own: its stdin is the heartbeat stream, one byte a second from the harness (a write into
an open channel, no process started on the host, so heartbeats stay cheap on a loaded
host). It reads the run's heal script (a shell script the harness wrote beside it) into
memory. When no byte has arrived for `timeout` seconds (on the host's own monotonic
clock: no clock comparison between machines) -- the harness was killed, its machine or
the network died; an end of the stream changes nothing but stops the reading -- it runs
the heal script, which removes the run's iptables chain, SIGCONTs and kills the run's
processes and removes the run's directory, and exits. It exits quietly when the run's
directory disappears (the harness tore the run down itself).

`heal_script` (used by the harness too, for its own teardown) builds that script.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

POLL_S = 0.2


def heal_script(run_dir: str, chain: str, run_id: str) -> str:
    """Shell that heals one host of a run, whatever state it is in; exit 0 only when the
    chain is gone. A pid is killed only if its environment names this run (LH_RUN), so a
    recycled pid of someone else's process is never touched."""
    return f"""R='{run_dir}'; C='{chain}'; ID='{run_id}'
if command -v iptables >/dev/null 2>&1; then
  # Mid-partition (the usual case) one atomic call removes jumps and chain; otherwise
  # the loop takes whatever is there, one rule at a time.
  printf '*filter\n:%s - [0:0]\n-D INPUT -j %s\n-D OUTPUT -j %s\n-X %s\nCOMMIT\n' \
    $C $C $C $C | iptables-restore -w --noflush 2>/dev/null ||
  {{ for c in INPUT OUTPUT; do while iptables -w -D $c -j $C 2>/dev/null; do :; done; done
    iptables -w -F $C 2>/dev/null; iptables -w -X $C 2>/dev/null; }}
fi
ours() {{ [ -r /proc/$1/environ ] && tr '\\0' '\\n' </proc/$1/environ | grep -qx "LH_RUN=$ID"; }}
for f in "$R"/pids/*.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f"); case "$p" in ''|*[!0-9]*) continue;; esac
  if ours $p; then kill -CONT $p 2>/dev/null; kill -KILL $p 2>/dev/null; fi
done
i=0
for f in "$R"/pids/*.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f"); case "$p" in ''|*[!0-9]*) continue;; esac
  while ours $p && [ $i -lt 50 ]; do sleep 0.05; i=$((i+1)); done
done
rm -rf "$R"
if command -v iptables >/dev/null 2>&1; then ! iptables -w -S $C >/dev/null 2>&1; fi
"""


def kill_run_processes(run_id: str) -> None:
    """SIGCONT and SIGKILL every process whose environment carries LH_RUN=<run_id>
    (except this watchdog)."""
    if not run_id:
        return
    mark = f"LH_RUN={run_id}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if mark not in f.read().split(b"\0"):
                    continue
            os.kill(int(entry), 18)  # SIGCONT
            os.kill(int(entry), 9)  # SIGKILL
        except OSError:
            continue


def main(argv: list[str]) -> int:
    run_dir, timeout = argv[1], float(argv[2])
    with open(os.path.join(run_dir, "heal.sh")) as f:
        script = f.read()  # kept in memory: the heal removes the file
    with open(os.path.join(run_dir, "watchdog.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    # Tell the harness it runs (on the session's stdout), then let go of that stream.
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    stdin = sys.stdin.fileno()
    open_stream = True
    seen = time.monotonic()
    while True:
        if not os.path.isdir(run_dir):
            return 0  # the harness tore the run down itself
        if open_stream:
            ready, _, _ = select.select([stdin], [], [], POLL_S)
            if ready:
                data = os.read(stdin, 4096)
                if data:
                    seen = time.monotonic()
                else:
                    open_stream = False  # no more heartbeats can come
        else:
            time.sleep(POLL_S)
        idle = time.monotonic() - seen
        if idle > timeout:
            print(f"watchdog: no heartbeat for {idle:.1f} s: healing", file=sys.stderr)
            # The run's processes first, from here (no process to start on a host that
            # may be loaded); then the script: chain, stragglers, files.
            kill_run_processes(os.environ.get("LH_RUN", ""))
            done = subprocess.run(["sh", "-c", script], check=False)
            return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
