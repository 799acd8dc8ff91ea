"""Files the harness writes or reads where a node can write too, without following links.

A run directory's `logs/`, `history/` and `nodes/<node>/` are writable by the nodes (a
container, or a process in a namespace): a compromised or buggy server could plant a
symlink (or a FIFO) where the harness, as root, is about to write or read. So every file
the harness writes in a run directory is created here: a fresh name made with
O_CREAT|O_EXCL|O_NOFOLLOW inside a directory opened with O_NOFOLLOW, written, then
renamed over the final name (a rename replaces a planted link itself, never its target).
Reads of node-written files open with O_NOFOLLOW|O_NONBLOCK and insist on a regular file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import IO

from harness.errors import HarnessError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(HarnessError, OSError):
    """A path the harness would have had to follow a link (or open a non-file) to use."""


def _open_dir(directory: Path) -> int:
    try:
        return os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        if Path(directory).is_symlink():
            raise UnsafePath(f"{directory}: is a symbolic link; refusing to write into it") from exc
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644) -> Path:
    """Replace `path` with `data`: a new file (never an existing one, never through a link)
    in the same directory, then renamed over `path`. Returns `path`."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    dir_fd = _open_dir(path.parent)
    try:
        for _ in range(16):
            tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(tmp, _NEW_FLAGS, mode, dir_fd=dir_fd)
                break
            except FileExistsError:  # something is already there (planted or not): next
                continue
        else:  # pragma: no cover - 16 random 48-bit names all taken
            raise UnsafePath(f"{path.parent}: could not create a temporary file")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)
    return path


def open_append(path: str | os.PathLike[str], mode: int = 0o644) -> int:
    """A descriptor appending to `path` (created if missing), refusing a link or a non-file."""
    path = Path(path)
    dir_fd = _open_dir(path.parent)
    try:
        try:
            fd = os.open(
                path.name,
                os.O_WRONLY
                | os.O_APPEND
                | os.O_CREAT
                | os.O_NOFOLLOW
                | os.O_NONBLOCK
                | os.O_CLOEXEC,
                mode,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            if os.path.islink(path):
                raise UnsafePath(f"{path}: is a symbolic link; refusing to write to it") from exc
            raise
    finally:
        os.close(dir_fd)
    return _regular_or_close(fd, path)


def _regular_or_close(fd: int, path: Path) -> int:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(f"{path}: not a regular file; refusing to use it")
    os.set_blocking(fd, True)
    return fd


def open_read(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a node-written file for reading: never through a link, never a FIFO or device."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePath(f"{path}: is a symbolic link; refusing to read it") from exc
        raise
    return os.fdopen(_regular_or_close(fd, path), "rb")
