"""A coordinator's puts to a replica travel batched (messages.REPLICA_PUTS: one message
per peer per turn), yet each put is still a write of its own: acknowledged, refused,
lost and hinted one by one."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.core import messages as m
from tests.sim.harness import SimCluster


def _put(node: Any, key: bytes, got: dict[bytes, str | None]) -> None:
    node.put(key, None, b"new:" + key, 0, lambda result: got.__setitem__(key, result[0]), 2)


def _replies(sim: SimCluster, src: str, dst: str, msgs: list[tuple]) -> list[tuple]:
    """`msgs` handed to `dst`; what it queued back to `src`."""
    node = sim.sn[dst].node
    node.take_outbox()
    for msg in msgs:
        node.on_message(src, msg)
    return node.take_outbox().get(src, [])


def _settle(node: Any) -> None:
    done, node.done = node.done, []
    for cb, result in done:
        cb(result)


def test_a_turns_puts_to_a_replica_are_one_message_each_acknowledged_or_refused_alone(
        ) -> None:
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    assert sim.put(a, b"k1", b"old")[0] is None
    sim.run(100)
    coord = sim.sn[a].node
    coord.take_outbox()
    got: dict[bytes, str | None] = {}
    keys = [b"k0", b"k1", b"k2"]
    for key in keys:
        _put(coord, key, got)
    sent = coord.take_outbox()
    for peer in (b, c):
        (msg,) = sent[peer]
        assert msg[0] == m.REPLICA_PUTS and len(msg[1]) == len(keys) * m.PUT_FIELDS
        assert msg[1][1::m.PUT_FIELDS] == keys
    items = sent[b][0][1]
    reqids = items[::m.PUT_FIELDS]
    # k1's version spoiled on its way to b (no base to take it by): b cannot merge it.
    items[m.PUT_FIELDS + 2] = b"\xffnot an object"
    items[m.PUT_FIELDS + 5] = None
    replica = sim.sn[b].node
    replica.take_outbox()
    with pytest.raises(ValueError):  # (raised once the rest of the batch is stored)
        replica.on_message(a, sent[b][0])
    back = replica.take_outbox()[a]
    assert [r for msg in back if msg[0] == m.PUT_ACKS for r in msg[1]] == [reqids[0], reqids[2]]
    assert [msg[1] for msg in back if msg[0] == m.REFUSED] == [reqids[1]]
    assert sim.stored(b, b"k0") == sim.stored(a, b"k0")
    assert sim.stored(b, b"k2") == sim.stored(a, b"k2")
    assert sim.stored(b, b"k1") != sim.stored(a, b"k1")  # still the old version

    for msg in back:
        coord.on_message(b, msg)
    _settle(coord)
    assert got == {b"k0": None, b"k2": None}  # W=2: a and b; k1 waits for c
    assert coord.hints == 1  # b refused k1: a keeps it for b
    for msg in _replies(sim, a, c, sent[c]):
        coord.on_message(c, msg)
    _settle(coord)
    assert got == {b"k0": None, b"k1": None, b"k2": None}
    assert not coord.writes.pending
    sim.run(3000)  # the hint handed off
    assert coord.hints == 0
    assert sim.stored(b, b"k1") == sim.stored(a, b"k1")


def test_a_batch_lost_with_its_link_fails_each_of_its_puts_alone() -> None:
    """A turn's puts went out in two batches (the first sent early, mid-turn); the
    link to c was lost with the second. The first batch's writes are c's; each write of
    the second counts c failed and keeps a hint for it, and every write is answered
    from W=2 (a and b)."""
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    coord = sim.sn[a].node
    coord.take_outbox()
    got: dict[bytes, str | None] = {}
    first, second = [b"f0", b"f1", b"f2"], [b"s0", b"s1", b"s2"]
    for key in first:
        _put(coord, key, got)
    early = coord.take_outbox()
    for key in second:
        _put(coord, key, got)
    late = coord.take_outbox()
    assert [len(early[c]), len(late[c])] == [1, 1]
    for peer in (b, c):
        for msg in _replies(sim, a, peer, early[peer]):
            coord.on_message(peer, msg)
    for msg in _replies(sim, a, b, late[b]):
        coord.on_message(b, msg)
    _settle(coord)
    assert got == {key: None for key in first + second}
    assert len(coord.writes.pending) == len(second)  # waiting on c
    coord.peer_down(c)  # (late[c] never arrives)
    assert not coord.writes.pending
    assert coord.hints == len(second)
    assert all(sim.stored(c, key) == sim.stored(a, key) for key in first)
    assert all(sim.stored(c, key) is None for key in second)
    coord.peer_up(c)  # the link is back
    sim.run(3000)
    assert coord.hints == 0
    assert all(sim.stored(c, key) == sim.stored(a, key) for key in first + second)
