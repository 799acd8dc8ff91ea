"""Small programs run on a node (`python -c SCRIPT args`) to measure what crosses a
link: UDP datagrams counted by a sink, and a timed TCP transfer. The network-fault tests
and bench/lossy.py both use them, so a test and a figure measure the same way.

    UDP_SINK PORT                          prints each datagram received, one per line
    UDP_SEND HOST PORT COUNT TAG [GAP_S]   sends COUNT datagrams "TAG-i", GAP_S apart
    TCP_SINK PORT                          reads each connection to its end, answers ok
    TCP_SEND HOST PORT BYTES [TIMEOUT_S]   sends BYTES, prints the seconds until ok
"""

from __future__ import annotations

import textwrap

UDP_SINK = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        print(s.recv(100).decode(), flush=True)
    """
)
UDP_SEND = textwrap.dedent(
    """
    import socket, sys, time
    gap = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0005
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[3])):
        try:
            s.sendto(f"{sys.argv[4]}-{i}".encode(), (sys.argv[1], int(sys.argv[2])))
        except OSError:
            pass  # a dropped output packet may surface as EPERM: it is lost either way
        time.sleep(gap)
    """
)
TCP_SINK = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        while c.recv(65536):
            pass
        c.sendall(b"ok"); c.close()
    """
)
TCP_SEND = textwrap.dedent(
    """
    import socket, sys, time
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    t = time.monotonic()
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=timeout)
    c.sendall(b"x" * int(sys.argv[3])); c.shutdown(socket.SHUT_WR)
    assert c.recv(10) == b"ok"
    print(time.monotonic() - t)
    """
)

__all__ = ["TCP_SEND", "TCP_SINK", "UDP_SEND", "UDP_SINK"]
