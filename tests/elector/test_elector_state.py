"""Durable term and vote of the reference elector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.elector.state import (
    FileVoteStore,
    MemoryVoteStore,
    PersistentState,
    StateError,
    read_state_file,
)


def test_fresh_dir_starts_at_term_zero(tmp_path: Path) -> None:
    assert FileVoteStore(tmp_path / "d").load() == PersistentState(0, None)


def test_save_then_load_survives_a_new_store(tmp_path: Path) -> None:
    FileVoteStore(tmp_path).save(PersistentState(7, "n2"))
    assert FileVoteStore(tmp_path).load() == PersistentState(7, "n2")
    assert read_state_file(tmp_path) == PersistentState(7, "n2")
    assert json.loads((tmp_path / "state.json").read_text()) == {"term": 7, "voted_for": "n2"}
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_state_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"term": -1}')
    with pytest.raises(StateError, match="non-negative"):
        FileVoteStore(tmp_path).load()
    (tmp_path / "state.json").write_text("{nope")
    with pytest.raises(StateError, match="not valid JSON"):
        FileVoteStore(tmp_path).load()


def test_memory_store_forgets_on_a_new_instance() -> None:
    store = MemoryVoteStore()
    store.save(PersistentState(3, "n1"))
    assert store.load() == PersistentState(3, "n1")
    assert MemoryVoteStore().load() == PersistentState(0, None)
