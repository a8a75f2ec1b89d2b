"""RENAME, RENAMENX, COPY and MOVE of a large string on a simulated cluster (heldmoves.py):
the value is never read whole by any node, every replica ends with the value and its
expiry under the new name, and a write between the steps is kept as the collection path
keeps it (test_keymoves.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dynredis.commands import collection, keymoves
from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from tests.sim.harness import SimCluster

BIG = 300_000  # past obj.LARGE_VALUE, and past the nodes' caches (resized below)


def _cluster(seed: int, value: bytes, expire_at: int = 0) -> SimCluster:
    """Three nodes whose key b"src" holds `value`, none of them caching it."""
    sim = SimCluster(3, seed=seed)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    assert sim.put(sim.names[0], b"src", value, expire_at=expire_at)[0] is None
    sim.run(100)
    return sim


def _spy_whole_reads(sim: SimCluster, keys: set[bytes]) -> list[tuple[str, bytes]]:
    """(node, key) of every read of one of `keys`' stored large objects whole from now
    on."""
    whole: list[tuple[str, bytes]] = []
    for name in sim.names:
        engine = sim.sn[name].node.local.engine

        def get(p: int, k: bytes, get=engine.get, name=name) -> bytes | None:  # type: ignore[no-untyped-def]
            enc = get(p, k)
            if k in keys and enc is not None and len(enc) >= objmod.LARGE_VALUE:
                whole.append((name, k))
            return enc

        engine.get = get
        sim.sn[name].node.local.rebind()
    return whole


def _spy_collection_steps(sim: SimCluster) -> list[bytes]:
    """The keys of the collection steps the nodes coordinate from now on."""
    keys: list[bytes] = []
    for name in sim.names:
        coll = sim.sn[name].node.coll

        def spied(key: bytes, *args: Any, run: Any = coll.run, **kw: Any) -> None:
            keys.append(key)
            run(key, *args, **kw)

        coll.run = spied  # type: ignore[method-assign]
    return keys


class _Pin:
    """A pin of the store, noted in `open` until released."""

    def __init__(self, pinned: Any, open: list[Any]) -> None:
        self.pinned, self.view, self.open = pinned, pinned.view, open
        open.append(self)

    def release(self) -> None:
        self.open.remove(self)
        self.pinned.release()


def _spy_pins(sim: SimCluster) -> list[Any]:
    """The pins of stored objects taken from now on and not released yet."""
    open: list[Any] = []
    for name in sim.names:
        engine = sim.sn[name].node.local.engine

        def pin(p: int, k: bytes, pin=engine.pin) -> Any:  # type: ignore[no-untyped-def]
            pinned = pin(p, k)
            return None if pinned is None else _Pin(pinned, open)

        engine.pin = pin
    return open


def _plan(sim: SimCluster, via: str, words: list[bytes],
          between: dict[bytes, Callable[[], Any]] | None = None, plan: Any = None) -> bytes:
    """Run a plan command at node `via` as a client of it would (collection.run_step);
    after the step named in `between` answers, and before the plan goes on, run that
    function (another client's writes)."""
    out: list[bytes] = []
    held: list[tuple[bytes, Callable, Any]] = []

    def step(args: list[Any], cb: Callable) -> None:
        collection.run_step(sim.sn[via].node, args, 2,
                            lambda res: held.append((args[0], cb, res)), None, None)

    if plan is None:
        plan = collection.PLANS[words[0].decode().lower()](words, 2)
    assert sim.on_node(via, lambda n: collection.drive(plan, step, out.append), catch=False)
    for _ in range(10_000):
        if out:
            return out[0]
        sim.run(5)
        while held:
            name, cb, res = held.pop()
            if between and name in between:
                between.pop(name)()
            assert sim.on_node(via, lambda n, cb=cb, res=res: cb(res), catch=False)
    raise AssertionError("the plan did not end")


def _everywhere(sim: SimCluster, key: bytes) -> set[Any]:
    """What each node reads for `key` (value, expiry), locally, and through a quorum."""
    seen = set()
    for name in sim.names:
        enc = sim.stored(name, key)
        sib = None if enc is None else objmod.read_value(objmod.decode(enc), 0)
        seen.add(None if sib is None else (sib[2], sib[1]))
        err, obj = sim.get(name, key)
        assert err is None
        sib = objmod.read_value(obj, 0)
        seen.add(None if sib is None else (sib[2], sib[1]))
    return seen


def test_a_copy_then_a_rename_of_a_large_string_never_read_it_whole() -> None:
    """COPY and RENAME of a large string move it as a client's SET and DEL would, with
    its expiry: each replica ends with the same value under the new name (and none
    under a renamed one), and no node reads the value whole (the collection steps read
    it whole at the coordinator and had it sent by every other replica)."""
    big = os.urandom(BIG)
    sim = _cluster(1, big)
    at = sim.sn[sim.names[0]].node.now + 500_000
    assert sim.put(sim.names[0], b"src", big, expire_at=at)[0] is None
    sim.run(100)
    a, b, _ = sim.names
    whole = _spy_whole_reads(sim, {b"src", b"dst", b"dst2"})
    pins = _spy_pins(sim)
    steps = _spy_collection_steps(sim)
    assert _plan(sim, a, [b"COPY", b"src", b"dst"]) == b":1\r\n"
    sim.run(100)
    assert whole == [] and pins == []
    assert _plan(sim, b, [b"RENAME", b"dst", b"dst2"]) == b"+OK\r\n"
    sim.run(100)
    assert whole == [] and pins == [] and steps == []
    assert _everywhere(sim, b"dst2") == _everywhere(sim, b"src") == {(big, at)}
    assert _everywhere(sim, b"dst") == {None}
    # The destination is a plain string, not a collection, on every node: its next
    # reads and writes take the string paths too.
    assert all(b"dst2" not in sim.sn[n].node.coll.store.known for n in sim.names)


def test_renamenx_and_copy_leave_an_existing_destination_alone() -> None:
    big = os.urandom(BIG)
    sim = _cluster(2, big)
    a = sim.names[0]
    assert sim.put(a, b"dst", b"there")[0] is None
    sim.run(100)
    assert _plan(sim, a, [b"RENAMENX", b"src", b"dst"]) == b":0\r\n"
    assert _plan(sim, a, [b"COPY", b"src", b"dst"]) == b":0\r\n"
    sim.run(100)
    assert _everywhere(sim, b"dst") == {(b"there", 0)}
    assert _everywhere(sim, b"src") == {(big, 0)}
    assert _plan(sim, a, [b"COPY", b"src", b"dst", b"REPLACE"]) == b":1\r\n"
    sim.run(100)
    assert _everywhere(sim, b"dst") == _everywhere(sim, b"src") == {(big, 0)}
    assert _plan(sim, a, [b"RENAMENX", b"src", b"new"]) == b":1\r\n"
    sim.run(100)
    assert _everywhere(sim, b"new") == {(big, 0)} and _everywhere(sim, b"src") == {None}


def test_a_source_written_after_the_read_keeps_its_new_value() -> None:
    """A SET of the source between the read and the destination's write: the
    destination gets the value read (held in the store meanwhile, though the source's
    stored object was replaced), and RENAME leaves the source's new value (as
    KeyView.remove_seen: only what was read is deleted)."""
    big, other = os.urandom(BIG), os.urandom(BIG)
    for i, (words, kept) in enumerate(((b"RENAME", b"+OK\r\n"), (b"COPY", b":1\r\n"))):
        sim = _cluster(3 + i, big)
        a, _, c = sim.names

        def overwrite(sim: SimCluster = sim, c: str = c) -> None:
            assert sim.put(c, b"src", other)[0] is None

        reply = _plan(sim, a, [words, b"src", b"dst"], {b"dyn.dumpcols": overwrite})
        sim.run(100)
        assert reply == kept
        assert _everywhere(sim, b"dst") == {(big, 0)}
        assert _everywhere(sim, b"src") == {(other, 0)}


def test_a_source_written_after_the_destination_stays() -> None:
    big = os.urandom(BIG)
    sim = _cluster(5, big)
    a, b, _ = sim.names

    def overwrite() -> None:
        assert sim.put(b, b"src", b"small now")[0] is None

    assert _plan(sim, a, [b"RENAME", b"src", b"dst"], {b"dyn.restore": overwrite}) == \
        b"+OK\r\n"
    sim.run(100)
    assert _everywhere(sim, b"dst") == {(big, 0)}
    assert _everywhere(sim, b"src") == {(b"small now", 0)}


def test_a_source_deleted_before_the_read_is_no_such_key() -> None:
    big = os.urandom(BIG)
    sim = _cluster(6, big)
    a, b, _ = sim.names
    err, obj = sim.get(b, b"src")
    assert sim.put(b, b"src", None, ctx=dvv.join(obj))[0] is None
    assert _plan(sim, a, [b"RENAME", b"src", b"dst"]) == b"-ERR no such key\r\n"
    assert _plan(sim, a, [b"COPY", b"src", b"dst"]) == b":0\r\n"


def test_move_to_another_database_moves_a_large_string() -> None:
    big = os.urandom(BIG)
    sim = _cluster(7, big)
    whole = _spy_whole_reads(sim, {b"src", b"other"})
    reply = _plan(sim, sim.names[1], [], plan=keymoves.move_plan(b"src", b"other"))
    sim.run(100)
    assert reply == b":1\r\n" and whole == []
    assert _everywhere(sim, b"other") == {(big, 0)} and _everywhere(sim, b"src") == {None}


def test_a_failed_destination_write_leaves_the_source_and_releases_it() -> None:
    """The destination's write misses its quorum (two replicas down): the command ends
    with that error, the source keeps its value, and its pin in the store is let go."""
    big = os.urandom(BIG)
    sim = _cluster(8, big)
    a, b, c = sim.names
    pins = _spy_pins(sim)

    def down() -> None:
        sim.stop(b)
        sim.stop(c)

    reply = _plan(sim, a, [b"RENAME", b"src", b"dst"], {b"dyn.dumpcols": down})
    assert reply.startswith(b"-NOQUORUM"), reply
    assert pins == []
    sim.start(b)
    sim.start(c)
    sim.run(3000)
    assert _everywhere(sim, b"src") == {(big, 0)}


def test_a_cached_large_string_moves_on_the_string_paths_too() -> None:
    """A large value the nodes' caches hold (up to 8 MB of the default 64 MB) is held
    as its bytes, and moved without a collection step (whose syncs carry the value
    from every replica)."""
    big = os.urandom(BIG)
    sim = SimCluster(3, seed=9)
    a, b, _ = sim.names
    assert sim.put(a, b"src", big)[0] is None
    sim.run(100)
    steps = _spy_collection_steps(sim)
    assert _plan(sim, b, [b"RENAME", b"src", b"dst"]) == b"+OK\r\n"
    sim.run(100)
    assert steps == []
    assert _everywhere(sim, b"dst") == {(big, 0)} and _everywhere(sim, b"src") == {None}


def test_a_value_that_cannot_be_held_moves_through_the_collection_steps() -> None:
    """When the value read cannot be pinned where it was (the key holds another object
    by then, or the store pins no more), the steps run as for a small value: the
    destination and the source still end as RENAME leaves them."""
    big = os.urandom(BIG)
    sim = _cluster(10, big)
    a = sim.names[0]
    sim.sn[a].node.local.engine.pin = lambda p, k: None  # type: ignore[method-assign]
    steps = _spy_collection_steps(sim)
    assert _plan(sim, a, [b"RENAME", b"src", b"dst"]) == b"+OK\r\n"
    sim.run(100)
    assert steps == [b"src", b"dst", b"src"]
    assert _everywhere(sim, b"dst") == {(big, 0)} and _everywhere(sim, b"src") == {None}


def test_a_destination_coordinated_elsewhere_gets_the_value_as_bytes() -> None:
    """Five nodes, three replicas a key: the client's node is a replica of the source
    but not of the destination, whose write goes to its replicas as before (the held
    value sent as bytes in a collection step); the source is deleted here."""
    big = os.urandom(BIG)
    sim = SimCluster(5, seed=11)
    for name in sim.names:
        node = sim.sn[name].node
        node.local.cache.resize(64 << 10)
        node.coll.remote = lambda payload, answer, node=node: collection.run_forwarded(
            node, payload, answer)
    src = b"src"
    _, holders = sim.primaries(src)
    via = holders[0]
    dst = next(k for k in (b"dst%d" % i for i in range(100))
               if via not in sim.primaries(k)[1])
    assert sim.put(via, src, big)[0] is None
    sim.run(100)
    whole = _spy_whole_reads(sim, {src})
    assert _plan(sim, via, [b"RENAME", src, dst]) == b"+OK\r\n"
    sim.run(100)
    assert whole == []
    for name in sim.names:
        assert objmod.read_value(sim.get(name, dst)[1], 0)[2] == big
        assert objmod.read_value(sim.get(name, src)[1], 0) is None
    assert {sim.stored(n, dst) is not None for n in sim.primaries(dst)[1]} == {True}
