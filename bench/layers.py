"""Benchmark: what a run's own image layers cost. Prints, for a target's servers layer
and for a requirements layer, the seconds `ensure_run_image` takes the first time (the
layer missing) and the second time (the layer built: nothing to do), plus the node
image's check alone for comparison.

    python bench/layers.py [--target etcd] [--requirements etcd3gw==2.7.0] [--cold] [--jvm]

`--jvm` also times a servers layer for bookworm's ZooKeeper 3.8.0 package, whose
dependencies (a JRE) apt resolves against the node image and the layer installs: what a
JVM target would cost (downloads of about 150 .debs on the first, cold, run).

"First" is a forced build of the layer (docker's build cache bypassed: a layer on a new
node image has nothing to reuse); the host's caches (server trees, resolved .debs,
wheels under /var/cache/leader-harness) stay warm unless `--cold`, which uses a fresh
cache directory so downloads are timed too. Needs a Docker daemon and the node image
(`harness image build`, not timed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.image.build import (
    DEFAULT_CACHE,
    docker_client,
    ensure_image,
    ensure_run_image,
    run_plan,
)
from harness.image.servers import ServerPackage
from harness.targets import make_target

# Not a target of the harness (yet): the declaration a ZooKeeper target would carry.
ZOOKEEPER = ServerPackage(
    name="zookeeper-3.8.0",
    system="zookeeper",
    version="3.8.0",
    suite="bookworm",
    packages=(("zookeeper", "3.8.0-11+deb12u2"),),  # depends on default-jre
    programs={"zkServer.sh": "usr/share/zookeeper/bin/zkServer.sh", "java": "usr/bin/java"},
    version_command=("java", "-version"),
    resolve_deps=True,
)


def timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def first_and_second(
    what: str, packages: Sequence[ServerPackage], requirements: Sequence[str], cache: Path
) -> None:
    rp = run_plan(packages, requirements)
    top = rp.reqs if requirements else rp.servers
    assert top is not None
    first = timed(lambda: ensure_run_image(packages, requirements, cache_dir=cache, force=True))
    second = timed(lambda: ensure_run_image(packages, requirements, cache_dir=cache))
    print(f"{what} ({top.ref}): first {first:.1f} s, second {second:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="etcd")
    parser.add_argument("--requirements", nargs="*", default=["etcd3gw==2.7.0"])
    parser.add_argument("--cold", action="store_true", help="time downloads too (fresh cache)")
    parser.add_argument("--jvm", action="store_true", help="also a ZooKeeper (JRE) layer")
    args = parser.parse_args()
    ensure_image()  # the node image is not part of these figures
    cache = Path(tempfile.mkdtemp(prefix="layers-cache-")) if args.cold else DEFAULT_CACHE
    try:
        node = timed(ensure_image)
        print(f"node image check (current): {node:.2f} s", flush=True)
        packages = make_target(args.target, {}).run_packages
        if packages:
            first_and_second(f"{args.target} servers layer", packages, (), cache)
        first_and_second(
            f"requirements layer {' '.join(args.requirements)}", (), args.requirements, cache
        )
        if args.jvm:
            first_and_second("zookeeper 3.8.0 + JRE servers layer", [ZOOKEEPER], (), cache)
            image = docker_client().images.get(run_plan([ZOOKEEPER]).image)
            print(f"  its image: {image.attrs['Size'] / 1e6:.0f} MB", flush=True)
    finally:
        if args.cold:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
