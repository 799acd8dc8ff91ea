"""`harness image build [--force] | show | prune`: the node image from the shell.

Progress goes to stderr: a rich spinner with the current step on a terminal, one line per
step (with elapsed seconds) otherwise. Any `ImageError` is printed plainly, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EXIT_OK, EXIT_MISSING, EXIT_ERROR = 0, 1, 2


def add_parser(sub: Any) -> None:
    """Register `image` (with `build`, `show` and `prune`) on the main parser's subparsers."""
    image = sub.add_parser(
        "image",
        help="build or show the docker node image (etcd, Consul, the harness)",
        description="The node image for the docker backend, built without a container "
        "registry. Exit 0 ok, 2 on errors (no docker daemon, archive unreachable, ...).",
    )
    actions = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build the node image (cached: only missing layers are built)",
        description="Build the node image; a no-op when it is current.",
    )
    build.add_argument(
        "--force", action="store_true", help="rebuild every layer and re-fetch every input"
    )
    build.set_defaults(handler=cmd_build)
    show = actions.add_parser(
        "show",
        help="print the expected node image reference and whether it exists",
        description="Print the expected reference of each layer and whether docker has it. "
        "Exit 0 when the node image exists, 1 when it must be built, 2 on errors.",
    )
    show.set_defaults(handler=cmd_show)
    prune = actions.add_parser(
        "prune",
        help="remove this project's image layers that the current inputs no longer name",
        description="Every change to the harness's code leaves an old node layer behind; "
        "this removes those tags (and old base/rootfs layers), keeping the current ones.",
    )
    prune.set_defaults(handler=cmd_prune)


class _LineProgress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    from harness.image.build import ensure_image
    from harness.image.errors import ImageError

    try:
        if sys.stderr.isatty():
            from rich.console import Console

            console = Console(stderr=True, log_path=False)
            started = time.monotonic()
            with console.status("node image") as status:

                def progress(message: str) -> None:
                    elapsed = time.monotonic() - started
                    if not message.startswith("  Step "):
                        console.log(message)
                    status.update(f"[{elapsed:5.0f}s] {message.strip()}")

                ref = ensure_image(progress=progress, force=args.force)
        else:
            ref = ensure_image(progress=_LineProgress(), force=args.force)
    except ImageError as exc:
        print(f"harness image build: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(ref)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from harness.image.build import NODE_REPO, image_status
    from harness.image.errors import ImageError

    try:
        status = image_status()
    except ImageError as exc:
        print(f"harness image show: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for info in status.values():
        print(f"{info['ref']}  {'present' if info['exists'] else 'missing'}")
    return EXIT_OK if status[NODE_REPO]["exists"] else EXIT_MISSING


def cmd_prune(args: argparse.Namespace) -> int:
    from harness.image.build import prune_images
    from harness.image.errors import ImageError

    try:
        removed, kept = prune_images()
    except ImageError as exc:
        print(f"harness image prune: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for tag in removed:
        print(f"removed {tag}")
    for line in kept:
        print(f"kept {line}", file=sys.stderr)
    return EXIT_OK
