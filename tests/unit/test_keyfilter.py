"""The LMDB engine's filter of stored keys: a key never stored is answered without a
lookup, and a stored key is never reported absent, through every write path (puts,
commits, write-behind, wipes, reopening, a crash that loses the stage)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import rule

from dynredis.core.records import ELEM_BASE
from dynredis.storage.keyfilter import MIN_BITS, KeyFilter, filter_bits
from dynredis.storage.lmdb_engine import LmdbEngine
from tests.unit.test_storage import MODEL_KEYS, EngineMachine, _machine_settings

# Key partitions (filtered) around the edges, and partitions above them (never
# filtered: element records, local records, hints).
PARTITIONS = [0, 1, 256, ELEM_BASE - 1, ELEM_BASE, 0x8000, 0xFFFF]


@given(st.lists(st.binary(max_size=20), max_size=200), st.sampled_from([8, 64, 1024]))
def test_every_added_key_may_be_held(keys, bits):
    """However small (so full) the filter, no added key is ever reported absent."""
    f = KeyFilter(bits)
    for k in keys:
        f.add(k)
        assert f.may_hold(k)
    assert all(f.may_hold(k) for k in keys)
    assert all(held(f, memoryview(k)) and held(f, bytearray(k)) for k in keys)


def held(f: KeyFilter, key) -> bool:
    """may_hold of a key that is not bytes: the pure build hashes its bytes, the
    compiled one rejects it (as it does at the engine's methods)."""
    try:
        return f.may_hold(key)
    except TypeError:
        return True


def test_keys_never_added_are_mostly_absent():
    f = KeyFilter(filter_bits(10_000))
    for i in range(10_000):
        f.add(b"key:%012d" % i)
    unknown = sum(f.may_hold(b"other:%012d" % i) for i in range(10_000))
    assert unknown < 250  # about 1.4% expected at 16+ bits per key


def test_sized_from_the_keys_at_open():
    assert filter_bits(0) == MIN_BITS
    assert filter_bits(0, 64) == 64
    assert filter_bits(1_000_000) >= 16 * 1_000_000
    bits = filter_bits(5, 64)
    assert bits >= 80 and bits & (bits - 1) == 0  # a power of two


class SpyTxn:
    """A read transaction counting the lookups that reach it."""

    def __init__(self, txn, seen: list[bytes]) -> None:
        self.txn = txn
        self.seen = seen

    def get(self, key, *args, **kwargs):
        self.seen.append(bytes(key))
        return self.txn.get(key, *args, **kwargs)

    def abort(self) -> None:
        self.txn.abort()


class SpyEnv:
    """The environment, its read transactions spied on (get_head's, pin's)."""

    def __init__(self, env, seen: list[bytes]) -> None:
        self.env = env
        self.seen = seen

    def begin(self, *args, **kwargs):
        return SpyBegun(self.env.begin(*args, **kwargs), self.seen)

    def __getattr__(self, name):
        return getattr(self.env, name)


class SpyBegun(SpyTxn):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.txn.__exit__(*exc)


def spied(eng: LmdbEngine) -> list[bytes]:
    """The packed keys every read of `eng` looks up in LMDB from now on."""
    seen: list[bytes] = []
    eng._rtxn = SpyTxn(eng._rtxn, seen)
    eng._vtxn = SpyTxn(eng._vtxn, seen)
    eng._env = SpyEnv(eng._env, seen)
    return seen


def reads(eng: LmdbEngine, p: int, key: bytes) -> list:
    """What each read method gives for the key."""
    pinned = eng.pin(p, key)
    pin = None if pinned is None else bytes(pinned.view)
    if pinned is not None:
        pinned.release()
    return [eng.get(p, key), eng.get_head(p, key, 2), eng.read(p, key, bytes), pin]


@pytest.mark.parametrize("reopen", [False, True])
def test_a_key_never_stored_is_not_looked_up_and_a_stored_one_always_is(tmp_path, reopen):
    path = str(tmp_path / "db")
    eng = LmdbEngine(path)
    stored = [b"key:%d" % i for i in range(200)]
    for k in stored:
        eng.put(5, k, b"v" + k)
    eng.put(5, b"gone", b"x")
    eng.commit(False)
    eng.delete(5, b"gone")
    eng.commit(False)
    if reopen:
        eng.close()
        eng = LmdbEngine(path)
    seen = spied(eng)
    for i in range(200):
        assert reads(eng, 5, b"never:%d" % i) == [None] * 4
    assert len(seen) <= 8  # a false positive may look up (about 1 in 250 at most)
    for k in stored:
        seen.clear()
        assert reads(eng, 5, k) == [b"v" + k, b"vk", b"v" + k, b"v" + k]
        assert seen == [b"\x00\x05" + k] * 4  # each read method looked it up
    # A deleted key may still be looked up (bits are never cleared), and is absent.
    assert reads(eng, 5, b"gone") == [None] * 4
    eng.close()


def test_element_partitions_are_always_looked_up(tmp_path):
    eng = LmdbEngine(str(tmp_path / "db"))
    eng.commit(False)
    seen = spied(eng)
    assert eng.get(ELEM_BASE, b"never") is None
    assert eng.get(0xFFFF, b"never") is None
    assert seen == [b"\x40\x00never", b"\xff\xffnever"]
    eng.close()


def test_the_filter_is_rebuilt_from_the_store_after_a_crash(tmp_path):
    """A crash loses the stage and the filter: the reopened engine holds every key
    committed, short or long, in any key partition, and none of the lost ones."""
    path = str(tmp_path / "db")
    eng = LmdbEngine(path, filter_min_bits=64)
    keys = [(p, b"k%d" % i + b"x" * n) for i, (p, n) in
            enumerate((p, n) for p in (0, 3, ELEM_BASE - 1, ELEM_BASE) for n in (0, 600))]
    for p, k in keys:
        eng.put(p, k, k[:3])
    eng.commit(False)
    eng.put(3, b"lost", b"x")
    eng._env.close()  # as a crash: nothing more is written
    eng._closed = True
    eng = LmdbEngine(path)
    seen = spied(eng)
    for p, k in keys:
        assert eng.get(p, k) == k[:3]
    assert eng.get(3, b"lost") is None and seen.count(b"\x00\x03lost") == 0
    eng.close()


class FilterMachine(EngineMachine):
    """The engine against a dict across random puts, deletes, commits (write-behind
    too), wipes, reopenings and crashes, with a filter of 64 bits (most keys never
    stored share their bits with stored ones: false positives, then real lookups) and
    partitions on both sides of ELEM_BASE; every read method checked."""

    KIND = "lmdb"

    def _open(self):
        eng = LmdbEngine(os.path.join(self.dir, "db"), filter_min_bits=64)
        eng.scan_chunk = 2
        eng.write_behind_from = 5
        eng.heads_from = 3
        return eng

    @rule(p=st.sampled_from(PARTITIONS), k=MODEL_KEYS, v=st.binary(max_size=6))
    def put_anywhere(self, p, k, v):
        self.put(p, k, v)

    @rule(p=st.sampled_from(PARTITIONS), k=MODEL_KEYS)
    def delete_anywhere(self, p, k):
        self.delete(p, k)

    @rule(p=st.sampled_from(PARTITIONS), k=MODEL_KEYS)
    def read_everyhow(self, p, k):
        v = self.model.get((p, k))
        assert reads(self.engine, p, k) == [v, None if v is None else v[:2], v, v]


TestFilterModel = FilterMachine.TestCase
TestFilterModel.settings = _machine_settings
