"""N=1 (a 1-node cluster): reads and writes answer at once, without a GetOp or PutOp.

The shortcuts in Reads.get and Writes.replicate must answer exactly what the quorum
state machines would decide with the node's own copy as the only answer, and leave
nothing a read repair would have sent. Random histories of writes, deletes, stale-
context writes (siblings), counters and expiring writes check it after every step.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core.node import Config
from dynredis.core.reads import GetOp
from dynredis.core.writes import PutOp
from tests.sim.harness import SimCluster

KEYS = [b"a", b"b", b"c"]

step = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.binary(max_size=8)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("stale"), st.sampled_from(KEYS), st.binary(max_size=8)),
    st.tuples(st.just("incr"), st.sampled_from([b"n1", b"n2"]), st.integers(-5, 5)),
    st.tuples(st.just("expiring"), st.sampled_from(KEYS), st.integers(1, 50)),
    st.tuples(st.just("wait"), st.none(), st.integers(1, 80)),
)


def decided_by_getop(sim: SimCluster, name: str, key: bytes, whole: bool):
    """What a GetOp of one replica would answer, and whether it would repair."""
    node = sim.sn[name].node
    p = node.ring.partition_of(key)
    clock, enc = node.local.get(p, key) if whole else node.local.get_shape(p, key)
    local = (enc, clock) if enc is not None and clock is not None else None
    op = GetOp(1, 1, 1, key, p, lambda _: None, local, [(name, name)])
    op.add(name, enc)
    return op.decide(op.local), op.repairs(op.local, node.now)


def read(sim: SimCluster, name: str, key: bytes, whole: bool):
    """Reads.get through the node, answered at once (no op waits on a replica)."""
    box: list = []
    assert sim.on_node(name, lambda node: node.get(key, box.append, None, whole), catch=False)
    assert len(box) == 1
    return box[0]


@settings(max_examples=40, deadline=None)
@given(st.lists(step, max_size=25), st.integers(0, 2**16))
def test_one_replica_answers_what_the_quorum_machines_decide(history, seed) -> None:
    sim = SimCluster(1, seed=seed, config=Config(n=1, r=1, w=1, q=8))
    (name,) = sim.names
    node = sim.sn[name].node
    ctx: dict[bytes, object] = {}
    for what, key, arg in history:
        if what == "wait":
            sim.run(arg)
            continue
        if what == "incr":
            err, new = sim.call(name, "incr", key, arg)
        elif what == "stale":
            # A write on an older context: a sibling beside what is there now.
            err, new = sim.put(name, key, arg, ctx.get(key, ()))
        elif what == "expiring":
            err, new = sim.put(name, key, b"x", None, node.now + arg)
        else:
            err, new = sim.put(name, key, arg)
        assert err is None, err
        # The write's answer is what a PutOp of one replica decides once ours acked:
        # the version written, which is the version stored.
        op = PutOp(1, 1, 1, lambda _: None, new, [(name, name)], key, 0, b"")
        op.ack(name)
        assert op.decide(new) == (None, new)
        p = node.ring.partition_of(key)
        stored, _ = node.local.get(p, key)
        assert stored == new
        if what in ("put", "delete"):
            ctx.setdefault(key, dvv.join(new))
        for k in KEYS + [b"n1", b"n2", b"missing"]:
            for whole in (True, False):
                expected, repair = decided_by_getop(sim, name, k, whole)
                assert read(sim, name, k, whole) == expected
                assert repair is None
