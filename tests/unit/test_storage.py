"""Storage engines: semantics (both engines), a model-based test, LMDB durability."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from hashlib import blake2b

import lmdb
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dynredis.storage import open_engine
from dynredis.storage.lmdb_engine import LmdbEngine
from dynredis.storage.memory import MemoryEngine

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Keys chosen to stress prefix/ordering edge cases: empty, NUL and 0xff bytes.
BINARY_KEYS = [b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"a\x00", b"a\x00b",
               b"ab", b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff"]
# Partitions around the 2-byte prefix boundaries (255 = 00ff, 256 = 0100, 65535 = ffff).
EDGE_PARTITIONS = [0, 1, 255, 256, 65535]
# The LMDB engine's limit for keys stored directly (511 minus the partition prefix);
# longer keys take the engine's "long" path. Both engines must behave the same.
MAX_SHORT = 509
# Long keys that sort between the short BINARY_KEYS: 510 bytes (one past the limit),
# 600 bytes, 100 KB, binary with NUL and 0xff bytes.
LONG_KEYS = [
    b"a" * 510,
    b"a" * MAX_SHORT + b"\x00",
    b"a\x00" * 300,
    b"m" * 600,
    b"\x00" * 600,
    b"\x00\xff" * 300,
    b"\xff" * 510,
    b"\xff\x00" * 300,
    b"k" * 100_000,
    bytes(range(256)) * 3,
]
SHORT_KEYS = BINARY_KEYS + [b"a" * MAX_SHORT, b"m" * 599, b"\xff" * MAX_SHORT]


@pytest.fixture(params=["memory", "lmdb"])
def engine(request, tmp_path):
    if request.param == "memory":
        eng = MemoryEngine()
    else:
        eng = LmdbEngine(str(tmp_path / "db"))
    yield eng
    eng.close()


@pytest.fixture
def lmdb_path(tmp_path):
    return str(tmp_path / "db")


def maybe_commit(engine, committed: bool) -> None:
    if committed:
        engine.commit(False)


class CountingEnv:
    """Wraps an lmdb.Environment to count transactions and syncs."""

    def __init__(self, env):
        self._env = env
        self.begins: list[dict] = []
        self.syncs = 0

    def begin(self, *args, **kwargs):
        self.begins.append(kwargs)
        return self._env.begin(*args, **kwargs)

    def sync(self, *args):
        self.syncs += 1
        return self._env.sync(*args)

    def __getattr__(self, name):
        return getattr(self._env, name)


# ------------------------------------------------------------------ semantics


def test_names():
    assert MemoryEngine.name == "memory"
    assert LmdbEngine.name == "lmdb"


@pytest.mark.parametrize("committed", [False, True])
def test_put_get(engine, committed):
    assert engine.get(0, b"k") is None
    engine.put(0, b"k", b"v1")
    assert engine.get(0, b"k") == b"v1"
    maybe_commit(engine, committed)
    assert engine.get(0, b"k") == b"v1"
    assert engine.get(0, b"other") is None
    assert engine.get(1, b"k") is None


@pytest.mark.parametrize("committed", [False, True])
def test_overwrite_last_write_wins(engine, committed):
    engine.put(3, b"k", b"v1")
    maybe_commit(engine, committed)
    engine.put(3, b"k", b"v2")
    engine.put(3, b"k", b"v3")
    assert engine.get(3, b"k") == b"v3"
    assert list(engine.scan(3)) == [(b"k", b"v3")]
    engine.commit(False)
    assert engine.get(3, b"k") == b"v3"
    assert list(engine.scan(3)) == [(b"k", b"v3")]


@pytest.mark.parametrize("committed", [False, True])
def test_delete_hides_key(engine, committed):
    engine.put(5, b"a", b"1")
    engine.put(5, b"b", b"2")
    maybe_commit(engine, committed)
    engine.delete(5, b"a")
    assert engine.get(5, b"a") is None
    assert list(engine.scan(5)) == [(b"b", b"2")]
    engine.commit(False)
    assert engine.get(5, b"a") is None
    assert list(engine.scan(5)) == [(b"b", b"2")]
    engine.delete(5, b"missing")  # deleting a missing key is not an error
    engine.commit(False)
    assert list(engine.scan(5)) == [(b"b", b"2")]


def test_delete_then_put_again(engine):
    engine.put(0, b"k", b"old")
    engine.commit(False)
    engine.delete(0, b"k")
    engine.put(0, b"k", b"new")
    assert engine.get(0, b"k") == b"new"
    engine.commit(False)
    assert engine.get(0, b"k") == b"new"
    engine.put(0, b"k", b"newer")
    engine.delete(0, b"k")
    assert engine.get(0, b"k") is None
    engine.commit(False)
    assert engine.get(0, b"k") is None


def test_scan_merges_staged_and_committed_in_order(engine):
    for k in [b"b", b"d", b"f", b"h"]:
        engine.put(2, k, b"c-" + k)
    engine.commit(False)
    engine.put(2, b"a", b"s-a")   # staged before every committed key
    engine.put(2, b"c", b"s-c")   # staged between committed keys
    engine.put(2, b"d", b"s-d")   # staged overwrite of a committed key
    engine.delete(2, b"f")        # staged delete of a committed key
    engine.put(2, b"z", b"s-z")   # staged after every committed key
    engine.delete(2, b"y")        # staged delete of a missing key
    expected = [(b"a", b"s-a"), (b"b", b"c-b"), (b"c", b"s-c"), (b"d", b"s-d"),
                (b"h", b"c-h"), (b"z", b"s-z")]
    assert list(engine.scan(2)) == expected
    engine.commit(False)
    assert list(engine.scan(2)) == expected


def test_scan_empty_partition(engine):
    assert list(engine.scan(0)) == []
    engine.put(1, b"k", b"v")
    engine.commit(False)
    assert list(engine.scan(0)) == []
    assert list(engine.scan(2)) == []


@pytest.mark.parametrize("committed", [False, True])
def test_partitions_isolated(engine, committed):
    for p in EDGE_PARTITIONS:
        engine.put(p, b"same", b"v%d" % p)
        engine.put(p, b"only-%d" % p, b"x")
    maybe_commit(engine, committed)
    assert engine.partitions() == EDGE_PARTITIONS
    for p in EDGE_PARTITIONS:
        assert engine.get(p, b"same") == b"v%d" % p
        assert list(engine.scan(p)) == [(b"only-%d" % p, b"x"), (b"same", b"v%d" % p)]
    assert engine.get(2, b"same") is None
    engine.delete(255, b"same")
    assert engine.get(255, b"same") is None
    assert engine.get(256, b"same") == b"v256"
    assert engine.get(0, b"same") == b"v0"


def test_partitions_follow_staged_deletes_and_puts(engine):
    assert engine.partitions() == []
    engine.put(7, b"a", b"1")
    engine.put(7, b"b", b"2")
    engine.put(9, b"a", b"1")
    engine.commit(False)
    assert engine.partitions() == [7, 9]
    engine.delete(7, b"a")
    assert engine.partitions() == [7, 9]  # 7 still holds b"b"
    engine.delete(7, b"b")
    assert engine.partitions() == [9]  # every committed key of 7 deleted in the stage
    engine.put(8, b"new", b"v")
    assert engine.partitions() == [8, 9]
    engine.commit(False)
    assert engine.partitions() == [8, 9]
    engine.delete(9, b"a")
    engine.put(9, b"a", b"back")
    assert engine.partitions() == [8, 9]


@pytest.mark.parametrize("committed", [False, True])
def test_binary_keys_and_values(engine, committed):
    values = {k: b"\x00v\xff" + k for k in BINARY_KEYS}
    for k in reversed(BINARY_KEYS):
        engine.put(0, k, values[k])
    engine.put(1, b"", b"")  # empty key and empty value
    maybe_commit(engine, committed)
    for k in BINARY_KEYS:
        assert engine.get(0, k) == values[k]
    assert engine.get(1, b"") == b""
    assert engine.get(1, b"\x00") is None
    assert list(engine.scan(0)) == [(k, values[k]) for k in sorted(BINARY_KEYS)]
    assert list(engine.scan(1)) == [(b"", b"")]
    # A staged delete of the empty key and of a NUL key, mixed with committed data.
    engine.delete(0, b"")
    engine.delete(0, b"\x00\x00")
    engine.put(0, b"\x00\x00\x00", b"new")
    rest = sorted(set(BINARY_KEYS) - {b"", b"\x00\x00"})
    expected = sorted([(k, values[k]) for k in rest] + [(b"\x00\x00\x00", b"new")])
    assert list(engine.scan(0)) == expected
    engine.commit(False)
    assert list(engine.scan(0)) == expected


def test_large_scan(engine):
    """More committed keys than one scan chunk, with staged changes across chunks."""
    n = 2000
    for i in range(n):
        engine.put(4, b"%06d" % i, b"v%d" % i)
    engine.put(3, b"zzz", b"neighbour")
    engine.put(5, b"", b"neighbour")
    engine.commit(False)
    model = {b"%06d" % i: b"v%d" % i for i in range(n)}
    for i in range(0, n, 7):
        engine.delete(4, b"%06d" % i)
        del model[b"%06d" % i]
    for i in range(0, n, 11):
        engine.put(4, b"%06d" % i, b"new%d" % i)
        model[b"%06d" % i] = b"new%d" % i
    engine.put(4, b"%06d-x" % 511, b"between")
    model[b"%06d-x" % 511] = b"between"
    assert list(engine.scan(4)) == sorted(model.items())
    engine.commit(False)
    assert list(engine.scan(4)) == sorted(model.items())
    assert engine.partitions() == [3, 4, 5]


def test_scan_survives_writes_while_iterating(engine):
    for i in range(1200):
        engine.put(0, b"%05d" % i, b"v")
    engine.commit(False)
    seen = []
    for i, (k, _v) in enumerate(engine.scan(0)):
        seen.append(k)
        if i % 50 == 0:  # churn behind and ahead of the iteration, with commits
            engine.put(0, b"%05d-new" % i, b"n")
            engine.delete(0, b"%05d" % (1199 - i))
            engine.put(1, b"%05d" % i, b"other partition")
            engine.commit(False)
    assert seen == sorted(set(seen)), "scan must stay sorted and never repeat a key"
    untouched = {b"%05d" % i for i in range(1200)} - {b"%05d" % (1199 - i) for i in range(0, 1200, 50)}
    assert untouched <= set(seen)


def test_wipe(engine):
    engine.meta_put("identity", b"node-1")
    for p in EDGE_PARTITIONS:
        engine.put(p, b"committed", b"c")
    engine.commit(False)
    for p in EDGE_PARTITIONS:
        engine.put(p, b"staged", b"s")
    engine.wipe()
    assert engine.pending() == 0
    assert engine.partitions() == []
    for p in EDGE_PARTITIONS:
        assert engine.get(p, b"committed") is None
        assert engine.get(p, b"staged") is None
        assert list(engine.scan(p)) == []
    engine.commit(True)
    assert engine.partitions() == []
    assert engine.get(0, b"committed") is None
    assert engine.meta_get("identity") == b"node-1"  # metadata is outside the keyspace
    engine.put(0, b"after", b"a")
    engine.commit(False)
    assert engine.partitions() == [0]
    assert list(engine.scan(0)) == [(b"after", b"a")]


def test_meta(engine):
    assert engine.meta_get("ring") is None
    engine.meta_put("ring", b"\x00ring\xff")
    engine.meta_put("identity", b"id")
    assert engine.meta_get("ring") == b"\x00ring\xff"
    engine.meta_put("ring", b"v2")
    assert engine.meta_get("ring") == b"v2"
    assert engine.meta_get("identity") == b"id"
    assert engine.partitions() == []  # metadata is not in the keyspace
    assert list(engine.scan(0)) == []


@pytest.mark.parametrize("committed", [False, True])
def test_long_keys_put_get_delete(engine, committed):
    for i, k in enumerate(LONG_KEYS):
        assert engine.get(0, k) is None
        engine.put(0, k, b"v%d" % i)
    maybe_commit(engine, committed)
    for i, k in enumerate(LONG_KEYS):
        assert engine.get(0, k) == b"v%d" % i
        assert engine.get(1, k) is None
        assert engine.get(0, k[:-1]) is None  # a prefix of a long key is another key
        assert engine.get(0, k + b"\x00") is None
    engine.put(0, LONG_KEYS[0], b"new")
    engine.delete(0, LONG_KEYS[1])
    engine.delete(0, b"z" * 1000)  # deleting a missing long key is not an error
    assert engine.get(0, LONG_KEYS[0]) == b"new"
    assert engine.get(0, LONG_KEYS[1]) is None
    engine.commit(False)
    assert engine.get(0, LONG_KEYS[0]) == b"new"
    assert engine.get(0, LONG_KEYS[1]) is None
    engine.delete(0, LONG_KEYS[2])
    engine.put(0, LONG_KEYS[2], b"back")
    assert engine.get(0, LONG_KEYS[2]) == b"back"
    engine.commit(False)
    assert engine.get(0, LONG_KEYS[2]) == b"back"
    assert engine.get(0, LONG_KEYS[1]) is None


@pytest.mark.parametrize("committed", [False, True])
def test_long_and_short_keys_scan_in_key_order(engine, committed):
    keys = SHORT_KEYS + LONG_KEYS
    values = {k: b"\x00v\xff" + k[-3:] for k in keys}
    for k in reversed(keys):
        engine.put(6, k, values[k])
    engine.put(5, LONG_KEYS[0], b"neighbour")
    engine.put(7, b"a", b"neighbour")
    maybe_commit(engine, committed)
    assert list(engine.scan(6)) == sorted(values.items())
    # Staged changes of both kinds over the (possibly committed) mix.
    model = dict(values)
    for k in (LONG_KEYS[0], LONG_KEYS[4], b"a", b"\xff" * MAX_SHORT):
        engine.delete(6, k)
        del model[k]
    for k in (LONG_KEYS[1], b"ab", b"a" * 511, b"\x00" * 601, b"a\x00b"):
        engine.put(6, k, b"staged")
        model[k] = b"staged"
    engine.delete(6, b"y" * 700)  # staged delete of a missing long key
    expected = sorted(model.items())
    assert [k for k, _v in expected] == sorted(set(model))
    assert list(engine.scan(6)) == expected
    engine.commit(False)
    assert list(engine.scan(6)) == expected
    assert list(engine.scan(5)) == [(LONG_KEYS[0], b"neighbour")]
    assert list(engine.scan(7)) == [(b"a", b"neighbour")]


def test_partitions_with_long_keys(engine):
    engine.put(3, LONG_KEYS[0], b"x")          # only a long key
    engine.put(4, LONG_KEYS[1], b"x")          # a long and a short key
    engine.put(4, b"short", b"x")
    engine.put(65535, LONG_KEYS[2], b"x")      # the last partition, long only
    assert engine.partitions() == [3, 4, 65535]
    engine.commit(False)
    assert engine.partitions() == [3, 4, 65535]
    engine.delete(4, b"short")
    assert engine.partitions() == [3, 4, 65535]  # the long key of 4 survives
    engine.delete(4, LONG_KEYS[1])
    assert engine.partitions() == [3, 65535]
    engine.delete(3, LONG_KEYS[3])  # another long key: LONG_KEYS[0] survives
    assert engine.partitions() == [3, 65535]
    engine.delete(3, LONG_KEYS[0])
    engine.put(2, LONG_KEYS[0], b"moved")
    assert engine.partitions() == [2, 65535]
    engine.commit(False)
    assert engine.partitions() == [2, 65535]
    engine.delete(65535, LONG_KEYS[2])
    engine.put(65535, LONG_KEYS[2], b"back")
    assert engine.partitions() == [2, 65535]


def test_wipe_with_long_keys(engine):
    for p in EDGE_PARTITIONS:
        engine.put(p, LONG_KEYS[0], b"committed")
        engine.put(p, b"short", b"committed")
    engine.commit(False)
    for p in EDGE_PARTITIONS:
        engine.put(p, LONG_KEYS[1], b"staged")
    engine.wipe()
    assert engine.partitions() == []
    for p in EDGE_PARTITIONS:
        assert engine.get(p, LONG_KEYS[0]) is None
        assert engine.get(p, LONG_KEYS[1]) is None
        assert list(engine.scan(p)) == []
    engine.commit(True)
    assert engine.partitions() == []
    engine.put(0, LONG_KEYS[2], b"after")
    engine.commit(False)
    assert engine.partitions() == [0]
    assert list(engine.scan(0)) == [(LONG_KEYS[2], b"after")]


def test_huge_long_key_and_value(engine):
    key, value = os.urandom(1 << 20), os.urandom(1 << 20)  # 1 MB each
    engine.put(1, key, value)
    assert engine.get(1, key) == value
    engine.commit(False)
    assert engine.get(1, key) == value
    assert list(engine.scan(1)) == [(key, value)]
    engine.delete(1, key)
    engine.commit(False)
    assert engine.get(1, key) is None
    assert engine.partitions() == []


def test_memory_pending_is_zero():
    eng = MemoryEngine()
    eng.put(0, b"k", b"v")
    eng.delete(0, b"j")
    assert eng.pending() == 0


def test_lmdb_pending(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.pending() == 0
        eng.put(0, b"k", b"v")
        eng.put(0, b"k", b"v2")  # same key: one staged entry
        eng.put(1, b"k", b"v")   # same key, other partition: another
        eng.delete(0, b"j")
        assert eng.pending() == 3
        eng.commit(False)
        assert eng.pending() == 0
        eng.delete(0, b"k")
        assert eng.pending() == 1
        eng.commit(True)
        assert eng.pending() == 0
    finally:
        eng.close()


# ------------------------------------------------------------- lmdb specifics


def test_lmdb_gets_reuse_one_read_txn_renewed_by_commits(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    try:
        eng.put(0, b"committed", b"c")
        eng.commit(False)
        counting = CountingEnv(eng._env)
        eng._env = counting
        for _ in range(100):
            assert eng.get(0, b"committed") == b"c"
            assert eng.read(0, b"committed", bytes) == b"c"  # (a view into the map)
        assert counting.begins == []  # gets and reads open no transaction of their own
        eng.put(0, b"staged", b"s")
        eng.delete(0, b"gone")
        assert eng.get(0, b"staged") == b"s"
        assert eng.get(0, b"gone") is None
        eng.commit(False)
        # The commit renews the readers (copying and in place), so committed data is
        # seen at once.
        assert [(b.get("write", False), b.get("buffers", False))
                for b in counting.begins] == [(True, False), (False, False), (False, True)]
        assert eng.read(0, b"staged", bytes) == b"s" and eng.read(0, b"gone", bytes) is None
        assert eng.get(0, b"staged") == b"s"
        assert eng.get(0, b"gone") is None
        eng._env = counting._env
    finally:
        eng.close()


def test_lmdb_commit_is_one_write_txn_and_syncs_when_asked(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    try:
        counting = CountingEnv(eng._env)
        eng._env = counting
        for i in range(100):
            eng.put(i % 3, b"k%d" % i, b"v")
        eng.delete(0, b"k0")
        eng.commit(False)
        assert [b.get("write") for b in counting.begins if b.get("write")] == [True]
        assert counting.syncs == 0
        eng.put(0, b"x", b"y")
        eng.commit(True)
        assert len([b for b in counting.begins if b.get("write")]) == 2
        assert counting.syncs == 1
        eng.commit(True)  # nothing staged, nothing unsynced: no txn, no fsync
        assert len([b for b in counting.begins if b.get("write")]) == 2
        assert counting.syncs == 1
        eng.put(0, b"x", b"z")
        eng.commit(False)
        eng.commit(True)  # syncs the earlier unsynced commit
        assert counting.syncs == 2
        eng.wipe()
        eng.commit(True)  # the wipe must reach the disk too
        assert counting.syncs == 3
        eng.meta_put("m", b"v")  # meta_put syncs on its own
        assert counting.syncs == 4
        eng._env = counting._env
    finally:
        eng.close()


class GatedEnv(CountingEnv):
    """A CountingEnv whose sync waits for `gate` and fails while `fail` is set."""

    def __init__(self, env):
        super().__init__(env)
        self.gate = threading.Event()
        self.fail = False
        self.sync_threads: list[str] = []

    def sync(self, *args):
        self.sync_threads.append(threading.current_thread().name)
        assert self.gate.wait(30), "test never opened the gate"
        if self.fail:
            self.syncs += 1
            raise lmdb.Error("injected sync failure")
        return super().sync(*args)


def test_lmdb_background_sync_leaves_the_caller_free_and_close_waits(lmdb_path):
    """commit(sync=True, wait=False) returns while the disk is still syncing; a
    commit made meanwhile is synced by the next sync (close waits for both)."""
    eng = LmdbEngine(lmdb_path)
    gated = GatedEnv(eng._env)
    eng._env = gated
    try:
        eng.put(0, b"a", b"1")
        eng.commit(True, wait=False)  # the sync blocks on the gate: we are not blocked
        assert eng.get(0, b"a") == b"1"
        first = eng._syncer
        assert first is not None and first.is_alive()
        eng.put(0, b"b", b"2")
        eng.commit(True, wait=False)  # one background sync at a time
        assert eng._syncer is first
        assert gated.syncs == 0
        gated.gate.set()
        eng.close()  # waits for the background sync, then syncs "b" itself
        assert gated.syncs == 2
        assert gated.sync_threads == ["lmdb-sync", threading.current_thread().name]
    finally:
        gated.gate.set()
        eng._env = gated._env
        eng.close()
    eng = LmdbEngine(lmdb_path)
    try:
        assert (eng.get(0, b"a"), eng.get(0, b"b")) == (b"1", b"2")
    finally:
        eng.close()


class GatedWrites(CountingEnv):
    """A CountingEnv whose write transactions begun off the caller's thread wait for
    `gate` (a write-behind held while the test looks)."""

    def __init__(self, env):
        super().__init__(env)
        self.gate = threading.Event()
        self.threads: list[str] = []

    def begin(self, *args, **kwargs):
        if kwargs.get("write") and threading.current_thread() is not threading.main_thread():
            self.threads.append(threading.current_thread().name)
            assert self.gate.wait(30), "test never opened the gate"
        return super().begin(*args, **kwargs)


def test_lmdb_a_large_value_is_written_behind_and_reads_never_miss_it(lmdb_path):
    """A 100 MB value took the loop a second to copy into the map: a stage holding a
    value of write_behind_from bytes or more is written by a thread (the timer's
    commit, wait=False), its entries staying readable meanwhile; no other write
    transaction starts until it is done; a key written again meanwhile keeps its
    newer value; and all of it is committed after a reopen."""
    big = os.urandom(1 << 20)
    eng = LmdbEngine(lmdb_path)
    gated = GatedWrites(eng._env)
    eng._env = gated
    try:
        eng.put(0, b"old", b"o")
        eng.commit(False)
        eng.put(0, b"big", big)
        eng.put(0, b"k", b"1")
        eng.delete(0, b"old")
        eng.commit(False, wait=False)  # the write waits on the gate: we are not blocked
        writer = eng._writer
        assert writer is not None and writer.is_alive()
        assert (eng.get(0, b"big"), eng.get(0, b"k"), eng.get(0, b"old")) == (big, b"1", None)
        eng.put(0, b"k", b"2")  # written again while the thread writes "1"
        eng.put(0, b"new", b"n")
        eng.commit(False, wait=False)  # returns at once: one writer at a time
        assert eng._writer is writer and eng.pending() == 4
        assert list(eng.scan(0)) == [(b"big", big), (b"k", b"2"), (b"new", b"n")]
        gated.gate.set()
        writer.join()
        eng.commit(False, wait=False)  # takes note of the write, then commits the rest
        assert eng._writer is None and eng.pending() == 0
        assert gated.threads == ["lmdb-write"]
        assert [eng.get(0, k) for k in (b"big", b"k", b"new", b"old")] == [big, b"2", b"n", None]
    finally:
        gated.gate.set()
        eng._env = gated._env
        eng.close()
    eng = LmdbEngine(lmdb_path)
    try:
        assert list(eng.scan(0)) == [(b"big", big), (b"k", b"2"), (b"new", b"n")]
    finally:
        eng.close()


def test_lmdb_durable_mode_never_writes_behind(lmdb_path):
    eng = LmdbEngine(lmdb_path, durability="fsync")
    try:
        eng.put(0, b"big", os.urandom(1 << 20))
        eng.commit(False, wait=False)
        assert eng._writer is None and eng.pending() == 0
    finally:
        eng.close()


def test_lmdb_failed_background_sync_is_retried(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    gated = GatedEnv(eng._env)
    eng._env = gated
    try:
        gated.gate.set()
        gated.fail = True
        eng.put(0, b"a", b"1")
        eng.commit(True, wait=False)
        eng._join_syncer()
        assert gated.syncs == 1
        gated.fail = False
        eng.commit(True, wait=False)  # nothing new committed, but the failed sync is owed
        eng._join_syncer()
        assert gated.syncs == 2
        eng.commit(True, wait=False)  # now nothing is owed
        assert eng._syncer is None
        assert gated.sync_threads == ["lmdb-sync", "lmdb-sync"]
    finally:
        eng._env = gated._env
        eng.close()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 512])
def test_lmdb_scan_chunk_boundaries(lmdb_path, chunk):
    """Each chunk resumes strictly after the last key, even when the next key is
    that key plus a NUL byte, and never strays into the neighbouring partition."""
    eng = LmdbEngine(lmdb_path)
    try:
        eng.scan_chunk = chunk
        for p in (0, 1, 2):
            for k in BINARY_KEYS:
                eng.put(p, k, b"%d" % p + k)
        eng.commit(False)
        eng.delete(1, b"\x00\x00")
        eng.put(1, b"\x00\x00\x00", b"staged")
        model = {k: b"1" + k for k in BINARY_KEYS if k != b"\x00\x00"}
        model[b"\x00\x00\x00"] = b"staged"
        assert list(eng.scan(1)) == sorted(model.items())
        assert list(eng.scan(0)) == [(k, b"0" + k) for k in sorted(BINARY_KEYS)]
    finally:
        eng.close()


def test_lmdb_partition_range_checked_at_put(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.max_key_size == MAX_SHORT
        for key in (b"k", LONG_KEYS[0]):
            with pytest.raises(ValueError):
                eng.put(65536, key, b"v")
            with pytest.raises(ValueError):
                eng.put(-1, key, b"v")
            with pytest.raises(ValueError):
                eng.delete(65536, key)
        assert eng.pending() == 0
        eng.commit(True)  # the stage was not poisoned by the rejected writes
    finally:
        eng.close()


def test_lmdb_long_keys_go_to_the_long_db(lmdb_path):
    """509 bytes is stored directly; 510 bytes and more under a digest, with the
    real key in the record."""
    eng = LmdbEngine(lmdb_path)
    try:
        short, long_ = b"s" * MAX_SHORT, b"l" * (MAX_SHORT + 1)
        eng.put(3, short, b"sv")
        eng.put(3, long_, b"lv")
        eng.commit(False)
        digest = blake2b(long_, digest_size=32).digest()
        with eng._env.begin() as txn:
            assert txn.get(b"\x00\x03" + short, db=eng._data) == b"sv"
            assert txn.get(b"\x00\x03" + digest, db=eng._long) == (
                (len(long_)).to_bytes(4, "big") + long_ + b"lv"
            )
            assert txn.stat(eng._data)["entries"] == 1
            assert txn.stat(eng._long)["entries"] == 1
        eng.delete(3, long_)
        eng.commit(False)
        with eng._env.begin() as txn:
            assert txn.stat(eng._long)["entries"] == 0
    finally:
        eng.close()


def test_lmdb_long_key_digest_collision_is_harmless(lmdb_path):
    """A record found under a key's digest but holding another real key (a digest
    collision) is never returned for, nor deleted by, the requested key."""
    eng = LmdbEngine(lmdb_path)
    try:
        asked, other = b"q" * 600, b"r" * 700
        slot = b"\x00\x01" + blake2b(asked, digest_size=32).digest()
        for stored in (other, asked[:-1] + b"Q", asked + b"x", asked[:-1]):
            with eng._env.begin(write=True) as txn:
                txn.put(slot, len(stored).to_bytes(4, "big") + stored + b"other-value", db=eng._long)
            assert eng.get(1, asked) is None
            assert list(eng.scan(1)) == [(stored, b"other-value")]
            assert eng.partitions() == [1]
            eng.delete(1, asked)
            assert eng.partitions() == [1]  # the stored key is another one: it survives
            eng.commit(False)
            assert list(eng.scan(1)) == [(stored, b"other-value")]
    finally:
        eng.close()


def test_lmdb_get_of_a_long_key_is_one_short_read_txn(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    try:
        key = LONG_KEYS[3]
        eng.put(0, key, b"c")
        eng.commit(False)
        counting = CountingEnv(eng._env)
        eng._env = counting
        assert eng.get(0, key) == b"c"
        assert eng.get(0, LONG_KEYS[4]) is None  # never stored: not looked up
        assert eng.get(0x4000, LONG_KEYS[4]) is None  # (element records: no filter)
        assert len(counting.begins) == 2
        assert not any(b.get("write") for b in counting.begins)
        eng._env = counting._env
    finally:
        eng.close()


@pytest.mark.parametrize("chunk", [1, 2, 3, 512])
def test_lmdb_scan_chunk_boundaries_with_long_keys(lmdb_path, chunk):
    eng = LmdbEngine(lmdb_path)
    try:
        eng.scan_chunk = chunk
        keys = SHORT_KEYS + LONG_KEYS
        for p in (0, 1, 2):
            for k in keys:
                eng.put(p, k, b"%d" % p + k[:4])
        eng.commit(False)
        model = {k: b"1" + k[:4] for k in keys}
        for k in (LONG_KEYS[1], LONG_KEYS[5], b"a", SHORT_KEYS[-1]):
            eng.delete(1, k)
            del model[k]
        for k in (LONG_KEYS[2], b"\x01" * 800, b"\x01"):
            eng.put(1, k, b"staged")
            model[k] = b"staged"
        assert list(eng.scan(1)) == sorted(model.items())
        assert list(eng.scan(0)) == sorted((k, b"0" + k[:4]) for k in keys)
        eng.commit(False)
        assert list(eng.scan(1)) == sorted(model.items())
    finally:
        eng.close()


def test_lmdb_long_keys_survive_reopen(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    for i, k in enumerate(LONG_KEYS):
        eng.put(i % 2, k, b"v%d" % i)
        eng.put(i % 2, k[:MAX_SHORT], b"short%d" % i)
    eng.put(7, LONG_KEYS[0], b"only long")
    eng.commit(True)
    eng.put(9, LONG_KEYS[1], b"staged-at-close")  # close commits the stage
    eng.delete(0, LONG_KEYS[0])
    eng.close()

    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.partitions() == [0, 1, 7, 9]
        expected: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}}
        for i, k in enumerate(LONG_KEYS):
            expected[i % 2][k] = b"v%d" % i
            expected[i % 2][k[:MAX_SHORT]] = b"short%d" % i
        del expected[0][LONG_KEYS[0]]
        for p in (0, 1):
            assert list(eng.scan(p)) == sorted(expected[p].items())
            for k, v in expected[p].items():
                assert eng.get(p, k) == v
        assert eng.get(0, LONG_KEYS[0]) is None
        assert list(eng.scan(7)) == [(LONG_KEYS[0], b"only long")]
        assert eng.get(9, LONG_KEYS[1]) == b"staged-at-close"
    finally:
        eng.close()


def test_lmdb_uncommitted_long_keys_are_not_on_disk(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    eng.put(0, LONG_KEYS[0], b"c")
    eng.commit(False)
    eng.put(0, LONG_KEYS[1], b"s")
    eng.delete(0, LONG_KEYS[0])
    eng._env.close()  # simulate dying without close()/commit()
    eng._closed = True
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.get(0, LONG_KEYS[0]) == b"c"
        assert eng.get(0, LONG_KEYS[1]) is None
        assert list(eng.scan(0)) == [(LONG_KEYS[0], b"c")]
    finally:
        eng.close()


def test_lmdb_wipe_of_long_keys_survives_reopen(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    for p in EDGE_PARTITIONS:
        eng.put(p, LONG_KEYS[p % len(LONG_KEYS)], b"v")
    eng.commit(True)
    eng.put(0, LONG_KEYS[3], b"staged")
    eng.wipe()
    eng.put(1, LONG_KEYS[4], b"after-wipe")
    eng.close()
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.partitions() == [1]
        assert list(eng.scan(1)) == [(LONG_KEYS[4], b"after-wipe")]
        assert eng.get(0, LONG_KEYS[0]) is None
        assert eng.get(0, LONG_KEYS[3]) is None
    finally:
        eng.close()


def test_lmdb_committed_data_survives_reopen(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    for p in EDGE_PARTITIONS:
        for k in BINARY_KEYS:
            eng.put(p, k, b"%d:" % p + k)
    eng.commit(True)
    eng.put(0, b"staged-at-close", b"s")  # close commits the stage
    eng.delete(1, b"a")
    eng.close()
    eng.close()  # idempotent

    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.pending() == 0
        assert eng.partitions() == EDGE_PARTITIONS
        assert eng.get(0, b"staged-at-close") == b"s"
        assert eng.get(1, b"a") is None
        for p in EDGE_PARTITIONS:
            keys = [k for k in sorted(BINARY_KEYS) if (p, k) != (1, b"a")]
            if p == 0:
                keys = sorted(keys + [b"staged-at-close"])
            expected = [(k, b"s" if k == b"staged-at-close" else b"%d:" % p + k) for k in keys]
            assert list(eng.scan(p)) == expected
    finally:
        eng.close()


def test_lmdb_uncommitted_writes_are_not_on_disk(lmdb_path):
    """Only commit writes to LMDB: the stage lives in memory until then."""
    eng = LmdbEngine(lmdb_path)
    eng.put(0, b"committed", b"c")
    eng.commit(False)
    eng.put(0, b"staged", b"s")
    eng.delete(0, b"committed")
    eng._env.close()  # simulate dying without close()/commit()
    eng._closed = True
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.get(0, b"committed") == b"c"
        assert eng.get(0, b"staged") is None
    finally:
        eng.close()


def test_lmdb_meta_survives_reopen(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    eng.meta_put("identity", b"node-7")
    eng.meta_put("ring", b"\x00\x01\xff")
    eng._env.close()  # meta_put is durable on its own: no close() needed
    eng._closed = True
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.meta_get("identity") == b"node-7"
        assert eng.meta_get("ring") == b"\x00\x01\xff"
        assert eng.meta_get("other") is None
        assert eng.partitions() == []
    finally:
        eng.close()


def test_lmdb_wipe_survives_reopen(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    for p in EDGE_PARTITIONS:
        eng.put(p, b"k", b"v")
    eng.meta_put("identity", b"id")
    eng.commit(True)
    eng.put(0, b"staged", b"s")
    eng.wipe()
    eng.put(1, b"after-wipe", b"a")
    eng.close()
    eng = LmdbEngine(lmdb_path)
    try:
        assert eng.partitions() == [1]
        assert list(eng.scan(1)) == [(b"after-wipe", b"a")]
        assert eng.get(0, b"k") is None
        assert eng.get(0, b"staged") is None
        assert eng.meta_get("identity") == b"id"
    finally:
        eng.close()


def test_lmdb_use_after_close_fails(lmdb_path):
    eng = LmdbEngine(lmdb_path)
    eng.close()
    with pytest.raises(Exception):  # noqa: B017 - any error, but not silent acceptance
        eng.put(0, b"k", b"v")
    with pytest.raises(Exception):  # noqa: B017
        eng.get(0, b"k")


# --------------------------------------------------------------- open_engine


def test_open_engine(tmp_path):
    mem = open_engine("memory", str(tmp_path / "m"))
    assert isinstance(mem, MemoryEngine)
    data_dir = tmp_path / "deep" / "node"
    eng = open_engine("lmdb", str(data_dir))
    try:
        assert isinstance(eng, LmdbEngine)
        assert (data_dir / "lmdb").is_dir()
        eng.put(0, b"k", b"v")
    finally:
        eng.close()
    eng = open_engine("lmdb", str(data_dir))  # reopens the same files
    try:
        assert eng.get(0, b"k") == b"v"
    finally:
        eng.close()
    with pytest.raises(ValueError):
        open_engine("rocksdb", str(tmp_path))


# ------------------------------------------------------- model-based testing


# Mostly short keys, sometimes long ones (interleaving with them in key order).
MODEL_KEYS = st.sampled_from(
    BINARY_KEYS + [b"a" * MAX_SHORT, b"a" * 510, b"\x00" * 600, b"a\x00" * 300, b"\xff" * 700]
)


class EngineMachine(RuleBasedStateMachine):
    """Compare an engine with a dict across random operations."""

    KIND = "memory"

    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="dynredis-storage-") if self.KIND == "lmdb" else None
        self.engine = self._open()
        self.model: dict[tuple[int, bytes], bytes] = {}  # what reads must see
        self.durable: dict[tuple[int, bytes], bytes] = {}  # what LMDB holds (committed)
        self.staged: set[tuple[int, bytes]] = set()
        # Keys a write-behind is writing (they stay staged until it is done).
        self.behind: set[tuple[int, bytes]] = set()

    def _open(self):
        if self.KIND == "memory":
            return MemoryEngine()
        eng = LmdbEngine(os.path.join(self.dir, "db"))
        eng.scan_chunk = 2  # exercise the chunk boundaries of scan with few keys
        eng.write_behind_from = 5  # values of 5-6 bytes make a commit write behind
        eng.heads_from = 3  # values of 3-6 bytes have their heads kept in memory
        return eng

    def teardown(self):
        self.engine.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(p=st.sampled_from(EDGE_PARTITIONS), k=MODEL_KEYS, v=st.binary(max_size=6))
    def put(self, p, k, v):
        self.engine.put(p, k, v)
        self.model[(p, k)] = v
        self.staged.add((p, k))

    @rule(p=st.sampled_from(EDGE_PARTITIONS), k=MODEL_KEYS)
    def delete(self, p, k):
        self.engine.delete(p, k)
        self.model.pop((p, k), None)
        self.staged.add((p, k))

    @rule(sync=st.booleans(), wait=st.booleans())
    def commit(self, sync, wait):
        writer = getattr(self.engine, "_writer", None)
        self.engine.commit(sync, wait)
        now = getattr(self.engine, "_writer", None)
        if now is None:  # everything written
            self.durable = dict(self.model)
            self.staged.clear()
            self.behind.clear()
        elif now is not writer:  # a write-behind of everything staged began
            self.durable = dict(self.model)
            self.behind = self.staged
            self.staged = set()
        # else: a write-behind still runs, the call changed nothing

    @precondition(lambda self: self.KIND == "lmdb")
    @rule()
    def write_behind_ends(self):
        """A write-behind's thread ends (the next commit will take note)."""
        writer = self.engine._writer
        if writer is not None:
            writer.join()

    @rule()
    def wipe(self):
        self.engine.wipe()
        self.model.clear()
        self.durable.clear()
        self.staged.clear()
        self.behind.clear()

    @precondition(lambda self: self.KIND == "lmdb")
    @rule()
    def close_and_reopen(self):
        self.engine.close()
        self.engine = self._open()
        self.durable = dict(self.model)
        self.staged.clear()
        self.behind.clear()

    @precondition(lambda self: self.KIND == "lmdb")
    @rule()
    def die_and_reopen(self):
        """Lose the stage (as a crash would); what was committed must remain."""
        self.engine._join_syncer()  # closing the map under a running msync is not a crash
        if self.engine._writer is not None:
            self.engine._writer.join()  # nor under a running write (it then committed)
        self.behind.clear()
        self.engine._env.close()
        self.engine._closed = True
        self.engine = self._open()
        self.model = dict(self.durable)
        self.staged.clear()

    @rule(p=st.sampled_from(EDGE_PARTITIONS), k=MODEL_KEYS)
    def get(self, p, k):
        assert self.engine.get(p, k) == self.model.get((p, k))

    @invariant()
    def same_contents(self):
        parts = sorted({p for p, _k in self.model})
        assert self.engine.partitions() == parts
        for p in EDGE_PARTITIONS:
            expected = sorted((k, v) for (q, k), v in self.model.items() if q == p)
            assert list(self.engine.scan(p)) == expected
        for (p, k), v in self.model.items():
            assert self.engine.get(p, k) == v

    @invariant()
    def same_heads(self):
        """Heads read as the values' first bytes, whether the engine keeps them in memory
        (values of heads_from bytes or more) or reads them from the map."""
        for p in EDGE_PARTITIONS:
            expected = sorted((k, v[:2]) for (q, k), v in self.model.items() if q == p)
            assert list(self.engine.scan(p, 2)) == expected
        for (p, k), v in self.model.items():
            assert self.engine.get_head(p, k, 2) == v[:2]

    @invariant()
    def pending_counts_staged_keys(self):
        if self.KIND == "lmdb":
            assert self.engine.pending() == len(self.staged | self.behind)
        else:
            assert self.engine.pending() == 0


_machine_settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class MemoryMachine(EngineMachine):
    KIND = "memory"


class LmdbMachine(EngineMachine):
    KIND = "lmdb"


TestMemoryModel = MemoryMachine.TestCase
TestMemoryModel.settings = _machine_settings
TestLmdbModel = LmdbMachine.TestCase
TestLmdbModel.settings = _machine_settings


# ------------------------------------------------- crash durability (real process)

CHILD = r"""
import sys, time
from dynredis.storage.lmdb_engine import LmdbEngine
eng = LmdbEngine(sys.argv[1])
for i in range(500):
    eng.put(7, b"key-%d" % i, b"value-%d-" % i + bytes(range(256)) * 4)
    eng.commit(sync=True)
    print(i, flush=True)
time.sleep(120)  # stay alive: the test always kills this process
"""


def crash_value(i: int) -> bytes:
    return b"value-%d-" % i + bytes(range(256)) * 4


def test_lmdb_synced_commits_survive_sigkill(tmp_path):
    path = str(tmp_path / "db")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    lines: queue.Queue[bytes | None] = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    printed: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(printed) < 40:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                proc.wait(timeout=10)
                pytest.fail(f"child exited early: {proc.stderr.read().decode(errors='replace')}")
            printed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the child is still writing
        proc.wait(timeout=10)
        # Lines the child printed before it died: those commits must be there too.
        while True:
            line = lines.get(timeout=10)
            if line is None:
                break
            printed.append(int(line))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert printed == list(range(len(printed)))

    eng = LmdbEngine(path)
    try:
        for i in printed:
            assert eng.get(7, b"key-%d" % i) == crash_value(i), f"lost committed key {i}"
        # Commits are ordered: what survived is a prefix, at most one commit past the
        # last printed index (committed, killed before printing), with intact values.
        present = sorted(int(k[4:]) for k, _v in eng.scan(7))
        assert present == list(range(len(present)))
        assert len(printed) <= len(present) <= min(len(printed) + 1, 500)
        for k, v in eng.scan(7):
            assert v == crash_value(int(k[4:]))
        # The environment is still writable after the crash (stale writer lock recovered).
        eng.put(7, b"after-crash", b"ok")
        eng.commit(True)
        assert eng.get(7, b"after-crash") == b"ok"
    finally:
        eng.close()


@pytest.mark.parametrize("committed", [False, True])
def test_heads_are_the_first_bytes_of_each_value(engine, committed):
    """What the sweep and anti-entropy read of a value: its first n bytes (all of a
    shorter one), staged or committed, short or long key, alone or in a scan."""
    values = {b"a": b"x" * 10, b"b": bytes(range(256)) * 40, LONG_KEYS[0]: b"y" * 5000,
              b"c": b"z" * 100}
    for k, v in values.items():
        engine.put(3, k, v)
    maybe_commit(engine, committed)
    for n in (1, 100, 4096):
        for k, v in values.items():
            assert engine.get_head(3, k, n) == v[:n]
        assert list(engine.scan(3, n)) == sorted((k, v[:n]) for k, v in values.items())
    assert engine.get_head(3, b"missing", 10) is None
    assert engine.get_head(4, b"a", 10) is None
    engine.delete(3, b"b")
    maybe_commit(engine, committed)
    assert engine.get_head(3, b"b", 10) is None
    assert [k for k, _ in engine.scan(3, 10)] == sorted(k for k in values if k != b"b")


@pytest.mark.parametrize("chunk", [1, 3, 512])
@pytest.mark.parametrize("committed", [False, True])
def test_scan_prefix_is_scan_filtered_by_prefix(engine, committed, chunk):
    """A prefix scan returns exactly the keys of a full scan that start with the
    prefix, in order: staged and committed, short and long keys, across chunks, never
    from a neighbouring partition."""
    if isinstance(engine, LmdbEngine):
        engine.scan_chunk = chunk
    keys = SHORT_KEYS + LONG_KEYS + [b"a\x00\x00", b"a\x01", b"a\x00b\x00"]
    for p in (255, 256, 257):
        for k in keys:
            engine.put(p, k, b"%d:" % p + k[:20])
    maybe_commit(engine, committed)
    engine.delete(256, b"a\x00b")  # a staged delete and a staged put under a prefix
    engine.put(256, b"a\x00zz", b"staged")
    for prefix in (b"", b"a", b"a\x00", b"a\x00b", b"\x00", b"\xff\xff", b"m" * 599,
                   b"zzz", b"a" * MAX_SHORT):
        want = [(k, v) for k, v in engine.scan(256) if k.startswith(prefix)]
        assert list(engine.scan_prefix(256, prefix)) == want, prefix
        for head in (1, 3):  # (the first bytes of each value: hints' keys)
            assert list(engine.scan_prefix(256, prefix, head)) == [
                (k, v[:head]) for k, v in want], prefix
    assert list(engine.scan_prefix(256, b"a\x00")) != []


@pytest.mark.parametrize("committed", [False, True])
def test_a_writes_read_of_what_it_supersedes_gets_the_clock_in_place(lmdb_path, committed):
    """LocalStore.get_clock over LMDB: a committed value comes as a view into the map
    (compiled code must take it as such); a large object gives its clock and its header,
    which names it as the whole does, a small one itself."""
    from dynredis.core import clock as dvv
    from dynredis.core import header as hdr
    from dynredis.core import obj as objmod
    from dynredis.core.localstore import LocalStore

    eng = LmdbEngine(lmdb_path)
    try:
        store = LocalStore(eng, cache_max_memory=1 << 16)  # keeps nothing over 8 KB
        big = dvv.overwrite(None, b"A", objmod.sibling(5, os.urandom(100_000)))
        small = dvv.overwrite(None, b"A", objmod.sibling(5, b"v"))
        for key, clock in ((b"big", big), (b"small", small)):
            store.put(3, key, objmod.encode(clock), None)
        maybe_commit(eng, committed)
        store.cache.clear()
        clock, name = store.get_clock(3, b"big")
        assert clock is not None and dvv.overwrite(clock, b"B", 1) == dvv.overwrite(big, b"B", 1)
        assert name == objmod.encode(big)[:hdr.SIZE]
        assert objmod.identity(name) == objmod.identity(objmod.encode(big))
        assert store.get_clock(3, b"small") == (small, objmod.encode(small))
        assert store.get_clock(3, b"none") == (None, None)
    finally:
        eng.close()


@pytest.mark.parametrize("committed", [False, True])
def test_a_pinned_value_stays_readable_through_later_writes_until_released(engine, committed):
    """A reply sent from the store a slice at a time (GET of a large value) pins it: a
    SET, a DEL or a wipe of the key meanwhile never changes what it reads."""
    old = os.urandom(300_000)
    engine.put(3, b"k", old)
    maybe_commit(engine, committed)
    pinned = engine.pin(3, b"k")
    assert pinned is not None and pinned.alive()
    engine.put(3, b"k", b"new")
    engine.commit(False)
    engine.delete(3, b"k")
    engine.commit(False)
    engine.wipe()
    assert bytes(pinned.view) == old
    pinned.release()
    pinned.release()  # once is enough
    assert engine.pin(3, b"k") is None
    assert engine.get(3, b"k") is None


def test_pins_are_bounded_and_end_with_the_environment(lmdb_path):
    """Each LMDB pin holds a read transaction (one of LMDB's reader slots): past
    MAX_PINS the engine declines (the reply copies the value instead); closing the
    environment ends every pin, and a reply still streaming sees it."""
    from dynredis.storage.lmdb_engine import MAX_PINS

    e = LmdbEngine(lmdb_path)
    e.put(1, b"k", b"v" * 100_000)
    e.commit(True)
    pins = [e.pin(1, b"k") for _ in range(MAX_PINS)]
    assert all(p is not None for p in pins)
    assert e.pin(1, b"k") is None
    pins[0].release()
    again = e.pin(1, b"k")
    assert again is not None
    e.close()
    assert not again.alive() and not pins[1].alive()


def test_heads_kept_in_memory_follow_every_write(lmdb_path):
    """The heads of big values are kept in memory (py-lmdb touches every page of a value
    it returns): scans and get_head read them as the values' first bytes through puts,
    overwrites by small values, deletes, write-behinds, wipes and a reopen."""
    engine = LmdbEngine(lmdb_path)
    engine.heads_from = 1000
    big, other = os.urandom(5000), os.urandom(3000)

    def heads():
        return list(engine.scan(7, 42)), engine.get_head(7, b"k", 42)

    engine.put(7, b"k", big)
    engine.commit(False)
    assert heads() == ([(b"k", big[:42])], big[:42])
    engine.put(7, b"k", b"small")  # staged over the big one still committed
    assert heads() == ([(b"k", b"small")], b"small")
    engine.commit(False, wait=False)
    assert heads() == ([(b"k", b"small")], b"small")
    engine.put(7, b"k", other)
    engine.commit(False, wait=False)  # written behind the loop
    assert heads() == ([(b"k", other[:42])], other[:42])
    engine.commit(False)
    engine.delete(7, b"k")
    assert heads() == ([], None)
    engine.commit(False)
    engine.put(7, b"k", big)
    engine.commit(True)
    engine.close()
    engine = LmdbEngine(lmdb_path)
    engine.heads_from = 1000
    assert heads() == ([(b"k", big[:42])], big[:42])  # read from the map, then kept
    engine.put(7, b"k", b"tiny")
    assert heads() == ([(b"k", b"tiny")], b"tiny")
    engine.commit(False)
    assert heads() == ([(b"k", b"tiny")], b"tiny")
    engine.put(7, b"k", other)
    engine.commit(False)
    engine.wipe()
    assert heads() == ([], None)
    engine.close()
