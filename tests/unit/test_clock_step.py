"""A step of the wall clock (node.now) is not time that passed: requests in flight keep
their time and peers do not look silent (Node.clock_stepped; the server measures steps
against its monotonic clock at each tick).

A virtual machine paused and its clock set again when it runs on makes such a step. It
failed a collection write of the integration suite with "NOQUORUM write needed 2 of 3
replicas, got 1 before timeout" and nothing in the node logs: every deadline was a
wall-clock time, so the tick after a 2 s step timed out every request in flight."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from dynredis.commands import collection
from dynredis.core.failure_detector import PhiAccrual
from dynredis.core.node import Config
from dynredis.server.app import CLOCK_STEP_MS
from tests.sim.harness import SimCluster

from .test_client_connection import PEERS, three_node_server
from .test_client_limits import cmd, connect, turns

STEP_MS = 2500  # more than the request timeout (2000)
LATENCY_MS = 30.0  # a message's way: a round trip spans several 10 ms ticks


def rpush(sim: SimCluster, via: str, box: list[Any], items: int) -> None:
    args = [b"RPUSH", b"big:l", *(b"i%d" % i for i in range(items))]
    built = collection.BUILDERS["rpush"](args, 2)
    assert not isinstance(built, bytes)
    key, op = built
    assert sim.on_node(via, lambda node: node.coll.run(key, op, box.append, (args, 2)),
                       catch=False)


@pytest.mark.parametrize("phase, after_ms, error", [
    ("sync", 0, "NOQUORUM read needed 2 of 3 replicas, got 1 before timeout"),
    ("write", 70, "NOQUORUM write needed 2 of 3 replicas, got 1 before timeout"),
])
@pytest.mark.parametrize("given_back", [True, False])
def test_a_clock_step_during_a_collection_command_fails_it_only_if_not_given_back(
        phase: str, after_ms: int, error: str, given_back: bool) -> None:
    """The step comes while the command's sync, or its write, is on the wire; replicas
    answer in time. Given back, it succeeds and both peers stay up; not given back (what
    the server did before), the flake's NOQUORUM, and the coordinator counts its peers
    down."""
    sim = SimCluster(3, seed=2, config=Config(q=16), latency=(LATENCY_MS, LATENCY_MS))
    a, b, c = sim.names
    sim.run(2000)  # heartbeats heard: the detector judges the peers
    box: list[Any] = []
    rpush(sim, a, box, 2000)
    sim.run(after_ms)
    node = sim.sn[a].node
    assert node is not None and not box
    assert node.coll.pending and next(iter(node.coll.pending.values())).evaluated is (
        phase == "write")
    before = sim.node_now(sim.sn[a])
    sim.sn[a].offset_ms += STEP_MS
    if given_back:
        assert sim.on_node(a, lambda n: n.clock_stepped(STEP_MS, before), catch=False)
    sim.run(15)  # the coordinator's next tick
    assert node.membership.down == (set() if given_back else {b, c})
    sim.run(300)
    assert sim.errors == []
    if given_back:
        assert box == [(None, b":2000\r\n")]
        assert {node.membership.status(p) for p in (b, c)} == {"up"}
    else:
        assert box == [(error, None)]


def test_the_detector_moves_only_arrivals_noted_before_the_step() -> None:
    fd = PhiAccrual()
    fd.heartbeat("old", 1_000)
    fd.heartbeat("new", 5_000)  # noted after the step, on the new timeline
    fd.shift(3_000, before=1_200)
    assert fd.phi("old", 4_100) == fd.phi("new", 5_100) < fd.threshold / 2


def test_the_server_gives_a_step_back_at_its_tick(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A SET waits for its replicas; the wall clock jumps 2.5 s ahead between two
    ticks: the tick moves the write's deadline with it (it is not timed out), says so in
    a WARNING, and the peers stay up. A change under CLOCK_STEP_MS is no step."""

    async def main() -> list[int]:
        srv, _ = three_node_server(tmp_path, engine="memory")
        node = srv.node
        srv.loading = False
        for peer in PEERS:
            node.membership.fd.heartbeat(peer, int(time.time() * 1000))
        conn, t = connect(srv)
        conn.data_received(cmd(b"SET", b"k", b"v"))
        await turns()
        deadlines = [op.deadline for op in node.writes.pending.values()]
        srv._tick()  # no step yet
        skew = [0.0]
        srv.wall_clock = lambda: time.time() + skew[0]
        skew[0] = (CLOCK_STEP_MS // 2) / 1000  # drift-sized: no step
        srv._tick()
        deadlines.extend(op.deadline for op in node.writes.pending.values())
        skew[0] += STEP_MS / 1000
        srv._tick()
        deadlines.extend(op.deadline for op in node.writes.pending.values())
        await turns()
        assert t.sent == b""  # not answered (NOQUORUM) by the step
        assert node.membership.down == set()
        srv.stopped = True
        return deadlines

    with caplog.at_level(logging.WARNING, logger="dynredis.server"):
        first, unmoved, moved = asyncio.run(main())
    assert first == unmoved
    assert moved - first == pytest.approx(STEP_MS, abs=20)
    assert [r.getMessage() for r in caplog.records if "wall clock" in r.getMessage()] == [
        f"the wall clock jumped {moved - first} ms ahead of the time that passed: requests "
        "in flight and peers' heartbeats are given it back"]
