"""`harness image build [--force] | show | prune`: the node image from the shell.

Progress goes to stderr: a rich spinner with the current step on a terminal, one line per
step (with elapsed seconds) otherwise. Any `ImageError` is printed plainly, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from harness.exitcodes import EXIT_ERROR, EXIT_INVALID, EXIT_VALID
from harness.oneline import error_line


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
    build.add_argument(
        "--target",
        metavar="NAME",
        help="also build the layer with the server packages this target declares for its "
        "default settings (a run of it builds that layer itself when it is missing)",
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
        "this removes those tags (and old base/rootfs layers, and the server and "
        "requirements layers built on old node images), keeping the current ones.",
    )
    prune.set_defaults(handler=cmd_prune)


class _LineProgress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.image.build import ensure_image, ensure_run_image
    from harness.image.errors import ImageError

    def build(progress: Callable[[str], None]) -> str:
        packages: tuple[Any, ...] = ()
        if args.target:  # an unknown target is refused before anything is built
            from harness.targets import make_target

            packages = make_target(args.target, None, "--target").run_packages
        ref = ensure_image(progress=progress, force=args.force)
        return ensure_run_image(packages, (), progress, force=args.force) if packages else ref

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

                ref = build(progress)
        else:
            ref = build(_LineProgress())
    except (ImageError, HarnessError) as exc:  # an unknown target is a HarnessError too
        error_line("harness image build", f"{exc}")
        return EXIT_ERROR
    print(ref)
    return EXIT_VALID


def cmd_show(args: argparse.Namespace) -> int:
    from harness.image.build import NODE_REPO, STACK_REPOS, image_status
    from harness.image.errors import ImageError

    try:
        status = image_status()
    except ImageError as exc:
        error_line("harness image show", f"{exc}")
        return EXIT_ERROR
    for repo in STACK_REPOS:
        info = status[repo]
        print(f"{info['ref']}  {'present' if info['exists'] else 'missing'}")
    # Run layers (a target's servers, a program's requirements) built on the current
    # node image: what a run of that target or program starts from, kept by `prune`.
    for layer in status["run_layers"]:
        print(f"{layer['ref']}  present ({layer['layer']} layer on {layer['parent']})")
    return EXIT_VALID if status[NODE_REPO]["exists"] else EXIT_INVALID  # missing: a "no"


def cmd_prune(args: argparse.Namespace) -> int:
    from harness.image.build import prune_images
    from harness.image.errors import ImageError

    try:
        removed, kept = prune_images()
    except ImageError as exc:
        error_line("harness image prune", f"{exc}")
        return EXIT_ERROR
    for tag in removed:
        print(f"removed {tag}")
    for line in kept:
        print(f"kept {line}", file=sys.stderr)
    return EXIT_VALID
