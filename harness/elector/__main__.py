"""Command line of the reference elector: `python -m harness.elector --config FILE --id n1
--peers n1=HOST:PORT,... --api HOST:PORT --data-dir DIR [--log-file F] [--clock-file F]`.

Parses and checks arguments and the configuration (any mistake: one `error: ...` line on
stderr and exit status 2), sets up logging, runs the node until SIGTERM or SIGINT, and
exits 0 after closing its sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from harness.elector.config import ConfigError, ElectorConfig, load_config
from harness.elector.server import ElectorServer
from harness.elector.state import StateError
from harness.elector.transport import Address
from harness.skewclock import SkewClock
from harness.validation import echo


class UsageError(ConfigError):
    """A bad command-line argument; the message names it."""


def parse_address(text: str, what: str) -> Address:
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise UsageError(f"{what}: expected HOST:PORT, got {echo(text)}")
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"{what}: port must be an integer, got {echo(text)}") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"{what}: port must be from 1 to 65535, got {port}")
    return host, port


def parse_peers(text: str) -> dict[str, Address]:
    peers: dict[str, Address] = {}
    for item in text.split(","):
        name, sep, address = item.strip().partition("=")
        if not sep or not name:
            raise UsageError(f"--peers: expected ID=HOST:PORT, got {echo(item)}")
        if name in peers:
            raise UsageError(f"--peers: {echo(name)} is named twice")
        peers[name] = parse_address(address, f"--peers {name}")
    return peers


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.elector",
        description="Reference leader elector node (Raft-style election with a leader lease).",
    )
    parser.add_argument("--config", help="YAML configuration (default: built-in safe settings)")
    parser.add_argument("--id", required=True, help="this node's id, one of --peers")
    parser.add_argument(
        "--peers", required=True, help="all members, e.g. n1=10.0.0.1:7000,n2=10.0.0.2:7000"
    )
    parser.add_argument("--api", required=True, help="HOST:PORT for the local HTTP API")
    parser.add_argument("--data-dir", required=True, help="directory for the durable state")
    parser.add_argument("--log-file", help="log here instead of stderr")
    parser.add_argument("--clock-file", help="SkewClock control file (absent: real time)")
    return parser


def _setup_logging(node_id: str, log_file: str | None) -> logging.Logger:
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s elector[{node_id}] %(message)s")
    )
    log = logging.getLogger("elector")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


async def _serve(server: ElectorServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        config: ElectorConfig = load_config(args.config)
        peers = parse_peers(args.peers)
        if args.id not in peers:
            raise UsageError(f"--id: {echo(args.id)} is not one of --peers ({', '.join(peers)})")
        api = parse_address(args.api, "--api")
        log = _setup_logging(args.id, args.log_file)
        server = ElectorServer(
            args.id, peers, api, config, args.data_dir, SkewClock(args.clock_file), log
        )
    except (ConfigError, UsageError, StateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        # Typically an address already in use; say which and stop.
        log.error("fatal: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
