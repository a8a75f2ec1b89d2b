"""A large version's encoding made a slice a loop turn (core/bigencode.py): the same bytes
as obj.encode at once, and a write whose key changed while it was made is made again
from what the key holds then, not written over it."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.bigencode import Encoding, LargePut
from dynredis.core.config import Config
from dynredis.core.obj import LARGE_VALUE
from dynredis.core.pieces import Joined
from dynredis.core.shape import Unread
from tests.sim.harness import SimCluster


class _Pin:
    """A Pinned that closes after `lives` looks at it."""

    def __init__(self, lives: int) -> None:
        self.lives = lives
        self.view = b""
        self.released = 0

    def alive(self) -> bool:
        self.lives -= 1
        return self.lives >= 0

    def release(self) -> None:
        self.released += 1


def _as(kind: int, data: bytes) -> Any:
    """`data` as bytes, as a view of bytes (a value viewed in the store) or as a Joined
    of views and bytes (APPEND's or SETRANGE's), all encoded alike."""
    if kind == 0:
        return data
    if kind == 1:
        return memoryview(b"<" + data + b">")[1:-1]
    cut = len(data) // 3
    return Joined([memoryview(data)[:cut], data[cut: 2 * cut], memoryview(data)[2 * cut:]])


_values = st.tuples(st.integers(0, 2), st.integers(0, 3 * LARGE_VALUE), st.integers(0, 255))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_values, min_size=1, max_size=3),
       budgets=st.lists(st.integers(1024, 2 * LARGE_VALUE), min_size=1, max_size=20),
       expire=st.integers(0, 1 << 50), anon=st.booleans())
def test_an_encoding_made_in_any_steps_is_the_encoding_made_at_once(
        values: list[tuple[int, int, int]], budgets: list[int], expire: int,
        anon: bool) -> None:
    sibs = tuple((1000 + i, expire, _as(kind, bytes([fill]) * size))
                 for i, (kind, size, fill) in enumerate(values))
    obj: Any = ((), sibs) if anon else (((b"actor", len(sibs), sibs),), ())
    plain = dvv.map_values(
        lambda sib: (sib[0], sib[1], bytes(b"".join(sib[2].parts)) if type(sib[2]) is Joined
                     else bytes(sib[2])), obj)
    want = objmod.encode(obj)
    job = Encoding(obj)
    steps = 0
    while not job.step(budgets[steps % len(budgets)]):
        steps += 1
        assert steps < 1_000
    assert job.result() == want
    assert objmod.decode(want) == plain


def test_an_encoding_whose_store_closes_gives_nothing_and_lets_go_once() -> None:
    big = os.urandom(3 * LARGE_VALUE)
    pin = _Pin(lives=2)
    job = Encoding((((b"a", 1, ((1, 0, memoryview(big)),)),), ()), pin)  # type: ignore[arg-type]
    assert not job.step(LARGE_VALUE)
    assert not job.step(LARGE_VALUE)
    assert job.step(LARGE_VALUE)  # the store closed: given up
    assert job.result() is None
    job.release()
    assert pin.released == 1


def _cluster(seed: int) -> tuple[SimCluster, bytes]:
    """Three nodes that encode 64 KB of a large version a loop turn, their caches too
    small to keep a 300 KB value, and a key `big` holding one."""
    sim = SimCluster(3, seed=seed, config=Config(encode_slice=64 << 10), sliced_walks=True)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)
    big = os.urandom(300_000)
    assert sim.put(sim.names[0], b"big", big)[0] is None
    sim.run(100)
    return sim, big


def _holding_large_puts(sim: SimCluster, name: str) -> tuple[list[Any], Any]:
    """Node `name`'s LargePuts held instead of run in a later turn (the list), and the
    node's own `later` (to give them to)."""
    coll = sim.sn[name].node.coll
    later = coll.later
    held: list[Any] = []
    coll.later = lambda cb: held.append(cb) if type(cb) is LargePut else later(cb)
    return held, later


def test_an_expiry_of_a_large_value_is_made_over_turns_into_the_same_bytes_everywhere(
        ) -> None:
    """EXPIRE's write of a 300 KB value left in the store (shape.Unread), 64 KB a turn:
    five turns, the reply after them, and every replica holds what encoding the new
    version at once gives."""
    sim, big = _cluster(seed=3)
    a = sim.names[0]
    box: list[Any] = []
    assert sim.on_node(a, lambda n: n.get(b"big", box.append, None, False), catch=False)
    while not box:
        sim.run(5)
    err, obj = box[0]
    sib = objmod.read_value(obj, 0)
    assert err is None and type(sib[2]) is Unread
    held, later = _holding_large_puts(sim, a)
    at = sim.sn[a].node.now + 100_000
    done: list[Any] = []
    assert sim.on_node(a, lambda n: n.put(b"big", dvv.join(obj), sib[2], at, done.append),
                       catch=False)
    turns = 0
    while held:
        assert done == []  # nothing written before the version is made
        turns += 1
        later(held.pop())
        sim.run(20)
    sim.run(100)
    assert turns >= 4 and done and done[0][0] is None
    stored = {sim.stored(name, b"big") for name in sim.names}
    assert len(stored) == 1
    enc = stored.pop()
    assert enc is not None and objmod.encode(objmod.decode(enc)) == enc
    assert objmod.read_value(objmod.decode(enc), 0)[1:] == (at, big)
    assert sim.sn[a].node.stats.large_rewrites == 0


def test_a_large_write_whose_key_changes_while_it_is_made_is_made_again_from_the_change(
        ) -> None:
    """A large write with a context (SETCTX) made over turns through `a` while a
    concurrent write through `b` reaches `a`: written as it was built, it would have
    replaced `b`'s value on `a` (its base was the old version). It is made again from
    what `a` holds then: both values stay, as siblings, on every replica."""
    sim, big = _cluster(seed=4)
    a, b, _ = sim.names
    err, obj = sim.get(a, b"big")
    assert err is None
    held, later = _holding_large_puts(sim, a)
    mine = os.urandom(200_000)
    done: list[Any] = []
    assert sim.on_node(a, lambda n: n.put(b"big", dvv.join(obj), mine, 0, done.append),
                       catch=False)
    assert len(held) == 1 and done == []
    assert sim.put(b, b"big", b"theirs", ctx=dvv.join(obj))[0] is None
    sim.run(50)
    while held:
        later(held.pop())
        sim.run(20)
    sim.run(200)
    assert done and done[0][0] is None
    assert sim.sn[a].node.stats.large_rewrites == 1
    for name in sim.names:
        enc = sim.stored(name, b"big")
        assert enc is not None
        values = sorted(bytes(s[2]) for s in dvv.values(objmod.decode(enc)))
        assert values == sorted([mine, b"theirs"]), name
