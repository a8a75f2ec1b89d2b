"""FLUSHALL on LMDB: the wipe swaps in a new generation of dbs in one short transaction
and the old entries are deleted a slice a write transaction later (dropping a node's
777,000 entries in the wipe's own transaction held its loop 106-140 ms, issue 12); what
an acknowledged wipe removed stays removed after a crash, and what was written after
it survives."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dynredis.storage import lmdb_engine
from dynredis.storage.lmdb_engine import LmdbEngine

LONG = b"L" * 600  # a key the ``long`` db holds


def _names(eng: LmdbEngine) -> set[bytes]:
    """The named dbs the environment holds."""
    with eng._env.begin() as txn:
        return {bytes(k) for k in txn.cursor().iternext(values=False)}


def _fill(eng: LmdbEngine, n: int) -> None:
    for i in range(n):
        eng.put(i % 4, b"old%d" % i, b"v%d" % i)
    eng.put(2, LONG, b"long")
    eng.commit(True)


def test_a_wipe_deletes_nothing_itself_and_the_old_entries_go_a_slice_at_a_time(
        tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lmdb_engine, "RECLAIM_SLICE", 100)
    eng = LmdbEngine(str(tmp_path / "db"))
    try:
        _fill(eng, 1000)
        old_data = eng._data
        eng.wipe()
        assert eng.partitions() == []
        assert eng.get(1, b"old1") is None and eng.get(2, LONG) is None
        assert list(eng.scan(0)) == []
        with eng._env.begin() as txn:  # the wipe's transaction left the entries
            assert txn.stat(old_data)["entries"] == 1000
        assert eng.reclaimable()
        calls = 1
        while eng.reclaim():
            calls += 1
        assert calls >= 1000 // 100  # a slice a call: the data db's, then the long db's
        assert not eng.reclaimable()
        assert _names(eng) == {b"meta", b"data.1", b"long.1"}
        eng.put(0, b"after", b"a")
        eng.commit(False)
        assert eng.partitions() == [0]
        assert list(eng.scan(0)) == [(b"after", b"a")]
    finally:
        eng.close()


def test_a_commit_deletes_a_slice_of_a_wiped_generation_in_its_own_transaction(
        tmp_path, monkeypatch) -> None:
    """In fsync mode nothing else reclaims (a transaction of its own would fsync)."""
    monkeypatch.setattr(lmdb_engine, "RECLAIM_SLICE", 100)
    eng = LmdbEngine(str(tmp_path / "db"), durability="fsync")
    try:
        _fill(eng, 300)
        old_data = eng._data
        eng.wipe()
        eng.put(0, b"k", b"v")
        eng.commit(True)
        with eng._env.begin() as txn:
            assert txn.stat(old_data)["entries"] == 200
        for i in range(3):
            eng.put(0, b"k", b"v%d" % i)
            eng.commit(True)
        assert _names(eng) == {b"meta", b"long", b"data.1", b"long.1"}
        eng.put(0, b"k", b"last")
        eng.commit(True)
        assert _names(eng) == {b"meta", b"data.1", b"long.1"}
        assert list(eng.scan(0)) == [(b"k", b"last")]
    finally:
        eng.close()


def test_many_wipes_before_any_reclaim_keep_the_environment_within_its_dbs(
        tmp_path) -> None:
    eng = LmdbEngine(str(tmp_path / "db"))
    try:
        for round_ in range(lmdb_engine.MAX_DBS):
            eng.put(0, b"k%d" % round_, b"v")
            eng.commit(False)
            eng.wipe()
        assert len(_names(eng)) <= lmdb_engine.MAX_DBS
        assert eng.partitions() == []
        while eng.reclaim():
            pass
        n = lmdb_engine.MAX_DBS
        assert _names(eng) == {b"meta", b"data.%d" % n, b"long.%d" % n}
    finally:
        eng.close()


CRASHING = """
import os, sys
from dynredis.storage import lmdb_engine
from dynredis.storage.lmdb_engine import LmdbEngine
lmdb_engine.RECLAIM_SLICE = 100
eng = LmdbEngine(sys.argv[1], durability=sys.argv[2])
for i in range(2000):
    eng.put(i % 4, b"old%d" % i, b"v%d" % i)
eng.put(2, b"L" * 600, b"long")
eng.commit(True)
eng.wipe()
eng.put(1, b"new", b"after the wipe")
eng.commit(True)   # (acknowledged: a FLUSHALL answers once the wipe is committed)
eng.reclaim()      # one slice of the old entries gone, the rest left
os._exit(0)        # a crash: no close
"""


@pytest.mark.parametrize("durability", ["buffered", "fsync"])
def test_what_a_wipe_removed_stays_removed_after_a_crash(tmp_path, durability: str) -> None:
    path = str(tmp_path / "db")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING), path,
                           durability], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    eng = LmdbEngine(path, durability=durability)
    try:
        assert eng.partitions() == [1]
        assert list(eng.scan(1)) == [(b"new", b"after the wipe")]
        assert eng.get(0, b"old0") is None and eng.get(2, LONG) is None
        assert eng.reclaimable()  # the old generation, found by its name
        while eng.reclaim():
            pass
        assert _names(eng) == {b"meta", b"data.1", b"long.1"}
        assert list(eng.scan(1)) == [(b"new", b"after the wipe")]
    finally:
        eng.close()


def test_a_wipe_starts_the_least_key_filter_and_buries_the_old_one(tmp_path) -> None:
    """A node opened with millions of records sizes its key filter for them (16.7
    million items for 4.3 million records): the wipe made a new one of that size and
    freed the old at once, 154 ms of CPU in the wipe's turn. It starts the least filter
    (nothing is stored: exact; the next open sizes it again), and the old one's items go
    whole to the graveyard's `bury` (freed a slice a loop turn there), none freed in the
    wipe; a key is still found once written."""
    path = str(tmp_path / "db")
    eng = LmdbEngine(path, filter_min_bits=64)
    _fill(eng, 3000)
    eng.close()
    eng = LmdbEngine(path, filter_min_bits=64)  # sized at open for 3001 keys
    try:
        old = eng._filter.bytes
        big = len(old)
        assert big >= 3000 * 16 // 8
        buried: list[object] = []
        eng.wipe(buried.append)
        assert len(eng._filter.bytes) == 64 // 8  # the least
        assert buried == [old] and buried[0] is old and len(old) == big  # whole
        eng.put(0, b"after", b"a")
        assert eng.get(0, b"after") == b"a"
        eng.commit(True)
        assert eng.get(0, b"after") == b"a" and eng.get(0, b"old0") is None
    finally:
        eng.close()


def test_flushall_gives_the_old_key_filter_to_the_nodes_graveyard(tmp_path) -> None:
    """LocalStore.wipe (FLUSHALL) hands the engine the graveyard's `bury`: the old
    filter's items are among what it buries, not freed in the wipe's turn."""
    from dynredis.core.localstore import LocalStore

    eng = LmdbEngine(str(tmp_path / "db"), filter_min_bits=64)
    try:
        store = LocalStore(eng)  # (it reads what is stored at start: nothing yet)
        _fill(eng, 100)
        old = eng._filter.bytes
        buried: list[object] = []
        store.wipe(buried.append)
        assert any(b is old for b in buried) and len(old) > 0
    finally:
        eng.close()
