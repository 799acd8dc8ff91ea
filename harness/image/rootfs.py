"""The node image's base system: a Debian bookworm root filesystem made here, no registry.

`debootstrap` (minbase plus python3, python3-venv, iproute2, iptables, procps) fetches from
Debian's archive and checks the Release signature against Debian's keyring; the tree is
trimmed (apt lists and .debs, man and info pages), packed with tar and handed to `docker import`.
The working directory is removed on success and on failure, after unmounting anything
debootstrap left mounted inside it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.image.apt import KEYRING, MIRROR
from harness.image.errors import ImageError, Progress, report

SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("python3", "python3-venv", "iproute2", "iptables", "procps", "openssh-server")
# Bump when the way the tree is made or trimmed changes (it is part of the cache key).
RECIPE_VERSION = 1
# usr/share/doc stays: it holds the packages' copyright files.
TRIM = ("var/lib/apt/lists", "var/cache/apt/archives", "usr/share/man", "usr/share/info")
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)
# One line per package ("I: Validating bash 5.2.15-2+b13", "I: Extracting libc6...") is
# noise; phase lines ("I: Unpacking the base system...") are progress.
_PER_PACKAGE = re.compile(
    r"I: (Retrieving|Validating|Extracting|Unpacking|Configuring) [a-z0-9][a-z0-9.+:-]*( \d\S*)?$"
)


def rootfs_inputs() -> dict[str, object]:
    """Everything the root filesystem depends on (its cache key)."""
    return {
        "suite": SUITE,
        "variant": VARIANT,
        "include": list(INCLUDE),
        "mirror": MIRROR,
        "recipe": RECIPE_VERSION,
        "trim": list(TRIM),
        "changes": list(IMPORT_CHANGES),
    }


def debootstrap_command(target: Path, cache_dir: Path) -> list[str]:
    return [
        "debootstrap",
        f"--variant={VARIANT}",
        f"--include={','.join(INCLUDE)}",
        f"--keyring={KEYRING}",
        "--force-check-gpg",
        f"--cache-dir={cache_dir}",
        SUITE,
        str(target),
        MIRROR,
    ]


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_workdir(path: Path) -> None:
    """Unmount whatever debootstrap left mounted below `path`, then delete it."""
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    if left := _mounts_under(path):
        raise ImageError(f"not removing {path}: still mounted there: {', '.join(left)}")
    shutil.rmtree(path)


def build_rootfs_tar(workdir: Path, cache_dir: Path, progress: Progress = None) -> Path:
    """debootstrap into `workdir/rootfs`, trim it, tar it; return the tarball's path.

    The caller owns `workdir` (and removes it with `remove_workdir`).
    """
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise ImageError("building the root filesystem needs root (debootstrap)")
    target = workdir / "rootfs"
    debs = Path(cache_dir) / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    log_path = Path(cache_dir) / "debootstrap.log"
    report(progress, f"debootstrap {SUITE} ({VARIANT} + {', '.join(INCLUDE)})")
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            debootstrap_command(target, debs),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, LC_ALL="C"),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip()
            if line.startswith("I: ") and not _PER_PACKAGE.match(line):
                report(progress, f"debootstrap: {line[3:]}")
        status = proc.wait()
    if status != 0:
        tail = "\n  ".join(log_path.read_text().strip().splitlines()[-8:])
        raise ImageError(
            f"debootstrap {SUITE} failed (exit {status}; full log {log_path}):\n  {tail}"
        )
    report(progress, f"debootstrap finished in {time.monotonic() - started:.0f} s; trimming")
    for rel in TRIM:
        sub = target / rel
        if sub.is_dir():
            for child in sub.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    (target / "etc" / "apt" / "sources.list").write_text(
        f"deb [signed-by={KEYRING}] {MIRROR} {SUITE} main\n"
    )
    for name in ("etc/hostname", "etc/resolv.conf"):  # docker provides these
        (target / name).unlink(missing_ok=True)
    tarball = workdir / "rootfs.tar"
    report(progress, "packing the root filesystem (tar)")
    done = subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(target), "-cf", str(tarball), "."],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ImageError(f"tar of the root filesystem failed: {done.stderr.strip()}")
    return tarball


def new_workdir(cache_dir: Path) -> Path:
    tmp = Path(cache_dir) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="rootfs.", dir=tmp))
