"""Commands that remove many elements at once (LTRIM, LREM, pops of a count,
ZREMRANGEBY*, SPOP of a count) remove them with one removal record and write the
survivors again when they remove most of what they see (KeyView.remove): a removal
record per element froze every node 4-5 s for 200,000 of them. What a client sees must
not depend on the way taken."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import collview
from dynredis.core import obj as objmod
from tests.collharness import _RING, LocalRunner

COMMANDS = st.one_of(
    st.tuples(st.just("LTRIM"), st.integers(-30, 30), st.integers(-30, 30)),
    st.tuples(st.sampled_from(["LPOP", "RPOP", "ZPOPMIN", "ZPOPMAX"]), st.integers(1, 40)),
    st.tuples(st.just("LREM"), st.integers(-30, 30), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("ZREMRANGEBYRANK"), st.integers(-30, 30), st.integers(-30, 30)),
    st.tuples(st.just("ZREMRANGEBYSCORE"), st.integers(0, 30), st.integers(0, 30)),
    st.tuples(st.just("RPUSH"), st.sampled_from(["a", "b", "c", "d"])),
    st.tuples(st.just("ZADD"), st.integers(0, 30), st.sampled_from(["m1", "m2", "q"])),
    st.tuples(st.just("SPOP"), st.integers(20, 40)),
    st.tuples(st.just("SADD"), st.sampled_from(["x", "y"])),
)
KEYS = {"L": "l", "R": "l", "Z": "z", "S": "s"}


def _fill(r: LocalRunner) -> None:
    r.run("RPUSH", "l", *["abc"[i % 3] for i in range(25)])
    r.run("ZADD", "z", *[x for i in range(25) for x in (str(i), f"m{i}")])
    r.run("SADD", "s", *[f"s{i}" for i in range(25)])
    r.run("PEXPIRE", "z", "100000")


def _state(r: LocalRunner) -> list[bytes]:
    return [r.run("LRANGE", "l", "0", "-1"), r.run("ZRANGE", "z", "0", "-1", "WITHSCORES"),
            r.run("SCARD", "s"), r.run("PTTL", "z"), r.run("EXISTS", "l", "z", "s")]


@settings(max_examples=200, deadline=None)
@given(st.lists(COMMANDS, max_size=25))
def test_the_bulk_way_answers_as_element_by_element(commands) -> None:
    saved = collview.BULK_MIN, collview.BULK_RATIO
    worlds = []
    try:
        for bulk_min, ratio in ((10**9, 4), (1, 1)):
            collview.BULK_MIN, collview.BULK_RATIO = bulk_min, ratio
            r = LocalRunner()
            _fill(r)
            replies = []
            for cmd in commands:
                name = cmd[0]
                key = "s" if name.startswith("S") else KEYS.get(name[0], "l")
                if name == "LTRIM" or name.startswith("ZREMRANGE"):
                    args = [name, key, str(cmd[1]), str(cmd[2])]
                elif name == "LREM":
                    args = [name, key, str(cmd[1]), cmd[2]]
                elif name == "ZADD":
                    args = [name, key, str(cmd[1]), cmd[2]]
                elif name == "SPOP":
                    # a count reaching the whole set: which members go is not random
                    args = [name, key, str(cmd[1])] if int(r.run("SCARD", "s")[1:-2]) <= cmd[1] \
                        else ["SCARD", key]
                elif name in ("RPUSH", "SADD"):
                    args = [name, key, cmd[1]]
                else:
                    args = [name, key, str(cmd[1])]
                reply = r.run(*args)
                # (SPOP answers its members in a random order)
                replies.append(sorted(reply.split(b"\r\n")) if name == "SPOP" else reply)
                replies.append(_state(r))
            worlds.append(replies)
    finally:
        collview.BULK_MIN, collview.BULK_RATIO = saved
    assert worlds[0] == worlds[1]


def _apply(r: LocalRunner, writes: list, key: bytes = b"l") -> None:
    """A replica takes another's deltas, as a collection write's replicas do."""
    for deltas, events in writes:
        for part, rkey, enc, _base in deltas:
            if enc is None:
                continue
            if part == _RING.partition_of(rkey):
                old = r.engine.get(part, rkey)
                if old is not None:
                    enc = objmod.encode(dvv.sync(objmod.decode(old), objmod.decode(enc)))
                r.engine.put(part, rkey, enc)
            else:
                r.store.merge(part, rkey, enc)
        if events:
            r.store.applied(_RING.partition_of(key), key, list(events),
                            [(d[0], d[1]) for d in deltas])


def test_a_bulk_trim_keeps_an_item_pushed_concurrently_elsewhere() -> None:
    """LTRIM of 600 items to 10 on one replica while another pushes an item: the
    pushed item was not seen by the trim, so it stays, on both replicas, and the 10
    kept items keep their order and the key its expiry."""
    a, b = LocalRunner(name=b"A"), LocalRunner(name=b"B")
    a.run("RPUSH", "l", *[f"i{i}" for i in range(600)])
    a.run("PEXPIRE", "l", "100000")
    _apply(b, a.writes)
    a.writes.clear()
    p = _RING.partition_of(b"l")
    b.engine.put(p, b"l", a.engine.get(p, b"l"))  # (the runner's PEXPIRE is not a delta)
    assert b.run("LLEN", "l") == b":600\r\n"
    assert a.run("LTRIM", "l", "0", "9") == b"+OK\r\n"
    assert b.run("RPUSH", "l", "new") == b":601\r\n"
    trim, push = list(a.writes), list(b.writes)
    assert any(len(d) < 20 for d, _ in trim[-1:])  # a removal record and 10 items
    _apply(a, push)
    _apply(b, trim)
    expected = [f"i{i}".encode() for i in range(10)] + [b"new"]
    for r in (a, b):
        reply = r.run("LRANGE", "l", "0", "-1")
        assert reply == b"*11\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(x), x)
                                              for x in expected)
        assert 0 < int(r.run("PTTL", "l")[1:-2]) <= 100000
