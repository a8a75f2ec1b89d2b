"""A replica's whole-key sync answer goes a slice of records a message (collsync.py): the
peer reads and sends each turn's slice as a part of its answer, the coordinator merges
each part as it arrives and waits on while they come.

The peer read a slice a turn but sent the whole key as one message, encoded in one turn
there and decoded in one turn by the coordinator: 400,000 records of a list took 53-55
ms of each peer's CPU and 243 ms of the coordinator's (a 3-node cluster on one machine,
DYN.LATENCY), and the answers came after the command's 2 s deadline on a loaded
machine: the command failed NOQUORUM, and so did every retry, each peer reading the
whole key again for nothing.

Every message here goes through the real wire encoding (the simulator's), so the
records a message holds are what one turn decodes."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.core import collcoord, collsync
from dynredis.core import messages as m
from dynredis.core.node import Config
from tests.sim.harness import NetConfig, SimCluster
from tests.unit.test_collsync import KEY, elements, run

SLICE = 64  # records a turn (collsync.SLICE, made small)
MISSED = 600  # members the coordinator missed, past SYNC_LIMIT: the whole key comes


def behind(sim: SimCluster) -> tuple[str, str, str]:
    """The third node misses MISSED members added to KEY, and then coordinates."""
    via, other, late = sim.names
    sim.partition(via, late)
    sim.partition(other, late)
    run(sim, via, [[b"SADD", KEY, *(b"m%d" % j for j in range(i, i + 100))]
                   for i in range(0, MISSED, 100)])
    sim.heal()
    sim.run(100)
    return via, other, late


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collsync, "SLICE", SLICE)
    monkeypatch.setattr(collcoord, "SYNC_LIMIT", 4)


def test_a_whole_key_answer_comes_a_slice_a_message(small: None):
    sim = SimCluster(3, seed=1, config=Config(q=8, ae_interval_ms=10_000_000),
                     net=NetConfig(latency_ms=(2.0, 2.0)), sliced_walks=True)
    via, other, late = behind(sim)
    sizes: list[int] = []
    send = sim._send

    def measured(src: str, dst: str, msg: tuple) -> None:
        fields = m.KINDS[msg[0]].names
        if "records" in fields:  # (the sync answer, and its parts)
            sizes.append(len(msg[1 + fields.index("records")]))
        send(src, dst, msg)

    sim._send = measured  # type: ignore[method-assign]
    [(_, reply)] = run(sim, late, [[b"SCARD", KEY]])
    assert reply == b":%d\r\n" % MISSED
    sim.run(100)
    assert elements(sim, late) == elements(sim, via) == elements(sim, other)
    # Both peers' answers: 601 records each (the header too), in ten messages or more.
    assert sum(sizes) >= 2 * (MISSED + 1)
    assert max(sizes) <= SLICE and len(sizes) >= 20, sizes


def test_a_command_waits_while_a_slow_peer_sends_its_parts(small: None):
    """Each peer's turns come 30 ms apart (a loaded machine), so its answer ends long
    after the command's 100 ms timeout: each part gives the command a new one."""
    sim = SimCluster(3, seed=1, config=Config(q=8, ae_interval_ms=10_000_000,
                                              timeout_ms=100),
                     net=NetConfig(latency_ms=(2.0, 2.0)), sliced_walks=True)
    via, other, late = behind(sim)
    for name in (via, other):
        coll = sim.sn[name].node.coll
        later = coll.later

        def slow(cb: Any, later: Any = later) -> None:
            sim.after(30, later, cb)

        coll.later = slow  # type: ignore[method-assign]
    [(_, reply)] = run(sim, late, [[b"SCARD", KEY]])
    assert reply == b":%d\r\n" % MISSED
    assert elements(sim, late) == elements(sim, via)


def test_an_answer_that_lost_a_part_is_not_counted(small: None):
    """A part lost on the way (a link dropped): the answer after it claims events whose
    records did not all arrive, so the command does not take it for a sync."""
    sim = SimCluster(3, seed=1, config=Config(q=8, ae_interval_ms=10_000_000,
                                              timeout_ms=300),
                     net=NetConfig(latency_ms=(2.0, 2.0)), sliced_walks=True)
    via, other, late = behind(sim)
    sim.drop_kinds = {"csp"}  # (m.COLL_SYNC_PART)
    box: list[Any] = []

    def start(node: Any) -> None:
        from dynredis.commands import collection
        built = collection.BUILDERS["scard"]([b"SCARD", KEY], 2)
        node.coll.run(built[0], built[1], box.append, ([b"SCARD", KEY], 2))

    sim.on_node(late, start, catch=False)
    sim.run(1000)
    [(err, _)] = box
    assert err is not None and err.startswith("NOQUORUM"), err
    p, _ = sim.primaries(KEY)
    assert len(elements(sim, late)) < MISSED
    store = sim.nodes[late].coll.store
    assert not store.summary(p, KEY).covers(sim.nodes[via].coll.store.summary(p, KEY))
