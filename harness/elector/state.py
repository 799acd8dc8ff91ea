"""Durable current term and vote: the one piece of Raft state that must survive a crash.

`FileVoteStore` keeps `{"term": T, "voted_for": ID}` in `state.json` in the data dir and
replaces it atomically (write a temp file, fsync it, rename, fsync the directory), so a
node that crashes at any instant restarts with either the old or the new state, never half.
The node calls `save` before it grants a vote or acts on a new term. `MemoryVoteStore`
models the unsafe configuration that forgets both on restart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Protocol

from harness.errors import HarnessError

STATE_FILE = "state.json"


class StateError(HarnessError, RuntimeError):
    """The state file exists but cannot be read; starting anyway could mean voting twice."""


@dataclass(frozen=True)
class PersistentState:
    term: int = 0
    voted_for: str | None = None


class VoteStore(Protocol):
    def load(self) -> PersistentState: ...

    def save(self, state: PersistentState) -> None: ...


class MemoryVoteStore:
    """Keeps the state in memory only: a restart comes back at term 0 with no vote."""

    def __init__(self) -> None:
        self._state = PersistentState()

    def load(self) -> PersistentState:
        return self._state

    def save(self, state: PersistentState) -> None:
        self._state = state


def _parse_state(text: str, path: str) -> PersistentState:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: expected a JSON object")
    term = data.get("term")
    voted_for = data.get("voted_for")
    if isinstance(term, bool) or not isinstance(term, int) or term < 0:
        raise StateError(f"{path}: 'term' must be a non-negative integer, got {term!r}")
    if voted_for is not None and not isinstance(voted_for, str):
        raise StateError(f"{path}: 'voted_for' must be a string or null, got {voted_for!r}")
    return PersistentState(term=term, voted_for=voted_for)


class FileVoteStore:
    """State in `<data_dir>/state.json`, replaced atomically and durably on every change."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = os.fspath(data_dir)
        self.path = os.path.join(self.data_dir, STATE_FILE)
        os.makedirs(self.data_dir, exist_ok=True)

    def load(self) -> PersistentState:
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return PersistentState()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        return _parse_state(text, self.path)

    def save(self, state: PersistentState) -> None:
        body = json.dumps({"term": state.term, "voted_for": state.voted_for}).encode()
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        # The rename is only durable once the directory entry is on disk too.
        dir_fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_state_file(data_dir: str | os.PathLike[str]) -> PersistentState:
    """What a node in `data_dir` would restart with (used by tests and tools)."""
    return FileVoteStore(data_dir).load()
