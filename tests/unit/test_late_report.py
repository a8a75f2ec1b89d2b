"""A collection command that times out is reported: which step, how long it waited and
which replicas never answered, with how each looked from the coordinator (detector,
link, last heartbeat) - the WARNING a flake's NOQUORUM "... before timeout" lacked
(core: CollCoordinator.late; server: server/latereport.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from dynredis.core.collcoord import Late
from dynredis.core.node import Config
from dynredis.server.latereport import REPORT_EVERY_S, LateReport, describe
from tests.sim.harness import SimCluster

from .test_client_connection import PEERS, three_node_server
from .test_client_limits import cmd, connect, turns
from .test_clock_step import rpush


@pytest.mark.parametrize("lost, phase, waited", [
    ("csa", "sync", 2000),  # the request timeout
    ("cwa", "write", 2000 + 20),  # and the allowance for its 1,000 records
])
def test_a_timed_out_command_names_the_replicas_that_never_answered(
        lost: str, phase: str, waited: int) -> None:
    sim = SimCluster(3, seed=4, config=Config(q=16), tick_ms=1.0)
    a, b, c = sim.names
    node = sim.sn[a].node
    assert node is not None
    box: list[Any] = []
    rpush(sim, a, box, 1000)
    sim.run(100)
    assert box and box[0][0] is None and node.coll.late == []  # in time: nothing kept
    sim.drop_kinds.add(lost)
    box.clear()
    rpush(sim, a, box, 1000)
    sim.run(3000)
    assert box and box[0][0].endswith("got 1 before timeout")
    [late] = node.coll.late
    assert late._replace(waited_ms=0, silent=()) == Late(phase, b"big:l", 0, (), 1, 2)
    assert sorted(late.silent) == [b, c]  # (in preference-list order)
    assert waited <= late.waited_ms <= waited + 2  # (its first tick past the deadline)


def test_the_report_says_one_line_a_second_and_counts_the_others() -> None:
    late = Late("write", b"big:l", 2041, ("127.0.0.1:2", "127.0.0.1:3"), 1, 2)
    state = {"127.0.0.1:2": "up, linked, 0 bytes unsent, last heartbeat 120 ms ago",
             "127.0.0.1:3": "down, not linked, last heartbeat 4000 ms ago"}
    assert describe(late, state.__getitem__, 0) == (
        "collection write of key 'big:l' timed out after 2041 ms with 1 of 2 answers; no "
        "answer from 127.0.0.1:2 (up, linked, 0 bytes unsent, last heartbeat 120 ms ago), "
        "127.0.0.1:3 (down, not linked, last heartbeat 4000 ms ago)")
    report = LateReport()
    first = report.take([late, late], 0, 100.0, state.__getitem__)
    assert first == describe(late, state.__getitem__, 1)
    assert report.take([late], 3, 100.5, state.__getitem__) is None  # counted
    again = report.take([late], 0, 100.0 + REPORT_EVERY_S, state.__getitem__)
    assert again is not None and again.endswith(
        "; 4 more collection command(s) timed out since the last report")


def test_the_server_logs_a_timed_out_collection_command(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An RPUSH whose sync no replica answers (their links take it and nothing comes
    back): the tick that times it out logs the line, with each replica's state."""

    async def main() -> bytes:
        srv, _ = three_node_server(tmp_path, engine="memory")
        node = srv.node
        srv.loading = False
        heard = int(time.time() * 1000)
        node.membership.fd.heartbeat(PEERS[0], heard)
        conn, t = connect(srv)
        conn.data_received(cmd(b"RPUSH", b"big:l", b"x"))
        await turns()
        for op in node.coll.pending.values():
            op.deadline -= 10_000  # (its timeout passed: no clock is moved)
        srv._tick()
        await turns()
        srv.stopped = True
        return t.sent

    with caplog.at_level(logging.WARNING, logger="dynredis.server"):
        sent = asyncio.run(main())
    assert sent == b"-NOQUORUM read needed 2 of 3 replicas, got 1 before timeout\r\n"
    [line] = [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]
    assert line.startswith("collection sync (read quorum) of key 'big:l' timed out after ")
    heard, never = PEERS
    assert " ms with 1 of 2 answers; no answer from 127.0.0.1:" in line
    assert f"{heard} (up, linked, 0 bytes unsent, last heartbeat " in line
    assert f"{never} (up, linked, 0 bytes unsent, last heartbeat never)" in line
