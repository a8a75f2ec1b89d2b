"""The latency trace's bookkeeping (server/latency.py) without a network: which requests
it follows, how a record's stamps become stages, and that what it keeps stays bounded
and out of the garbage collector's sight."""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

from dynredis.server import latency
from dynredis.server.latency import LatencyTrace, Records, percentile, stage_values


class Slot:
    def __init__(self) -> None:
        self.data: bytes | None = None


class Conn:
    def __init__(self) -> None:
        self.waiting: deque[Slot] = deque()
        self.traced: Any = None
        self.read_ns = 1_000
        self.transport = object()


class Node:
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_message(self, src: str, msg: tuple) -> None:
        self.seen.append(msg)


def test_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 1001))
    assert percentile(values, 0.5) == 500
    assert percentile(values, 0.999) == 999
    assert percentile(values, 1.0) == 1000
    assert percentile([], 0.5) == 0


def test_follows_only_sampled_ids_that_started_one_request_with_a_slot() -> None:
    trace = LatencyTrace(every=4)
    conn = Conn()
    conn.waiting.append(Slot())
    trace.dispatched(conn, [b"set", b"k", b"v"], 6, 7, 0, 2_000)  # 7: not sampled
    trace.dispatched(conn, [b"set", b"k", b"v"], 6, 8, 0, 2_000)  # two requests
    trace.dispatched(conn, [b"set", b"k", b"v"], 7, 8, 1, 2_000)  # answered at once
    assert not trace.open and conn.traced is None
    trace.dispatched(conn, [b"set", b"k", b"v"], 7, 8, 0, 2_000)
    assert list(trace.open) == [8] and len(conn.traced) == 1


def test_a_followed_request_becomes_a_row_of_ordered_stages() -> None:
    trace = LatencyTrace(every=1, name="n1")
    conn = Conn()
    slot = Slot()
    conn.waiting.append(slot)
    trace.dispatched(conn, [b"get", b"k"], 41, 42, 0, 2_000)
    trace.sent()
    node = Node()
    trace.peer_read = 9_000
    trace.on_peer_message(node, "n2", ("gas", [42, b"enc", 99, b"other"]))
    assert node.seen  # the message still reached the node
    slot.data = b"$1\r\nv\r\n"
    conn.waiting.popleft()
    trace.peer_event_done()
    trace.written(conn)
    assert conn.traced is None and not trace.open
    (row,) = trace.requests.rows()
    assert trace.names.names[row[0]] == "GET" and row[1] == 42
    assert row[7] == 1 and trace.names.names[row[8]] == "n2" and row[9] == 9_000
    stages = stage_values(row)
    assert set(stages) == {name for name, _, _ in latency.STAGES}
    assert all(v >= 0 for v in stages.values())
    assert stages["total"] >= max(v for k, v in stages.items() if k != "total")
    names = [s[0] for s in trace.stages()]
    assert names[:len(latency.STAGES)] == [name for name, _, _ in latency.STAGES]


def test_a_replica_follows_the_same_ids() -> None:
    trace = LatencyTrace(every=2)
    node = Node()
    trace.peer_read = 5
    trace.on_peer_message(node, "n1", ("ps", [10, b"k", b"enc", "n2", 3, None,
                                              11, b"k", b"enc", "n2", 3, None]))
    trace.on_peer_message(node, "n1", ("hb",))
    assert len(node.seen) == 2
    trace.sent()
    (row,) = trace.replica.rows()
    assert row[1] == 10 and trace.names.names[row[0]] == "n1"
    assert row[3] == 5 <= row[4] <= row[6]


def test_records_are_bounded_and_untracked(monkeypatch: Any) -> None:
    monkeypatch.setattr(latency, "KEEP", 10)
    records = Records(3)
    for i in range(100):
        records.add([i, i, i])
    assert 10 <= len(records) <= 20
    assert records.rows()[-1] == [99, 99, 99]
    # Kept rows are no objects the collector tracks (a list each would be).
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1000):
        records.add([i, i, i])
    assert len(gc.get_objects()) - before < 50


def test_stop_removes_the_gc_callback() -> None:
    trace = LatencyTrace(every=1)
    trace.start(None)
    gc.collect()
    assert trace.hists.get("gc_gen2")
    assert "gc_gen2_cpu" in trace.hists  # (its CPU beside its wall time)
    trace.stop()
    assert trace._gc_callback not in gc.callbacks


def test_a_walk_step_is_timed_as_loop_work(tmp_path: Any) -> None:
    """The loop turns that step walks, plans and the graveyard were timed by nothing: a
    long one never showed in DYN.LATENCY STAGES. Each is a "walk" piece, with its CPU."""
    import asyncio

    from dynredis.core.graveyard import SLICE
    from dynredis.server.app import NodeOptions, NodeServer

    async def main() -> dict[str, deque[int]]:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="memory",
                                     n=1, r=1, w=1))
        srv.loop = asyncio.get_running_loop()
        srv.trace_on(1)
        graveyard = srv.node.graveyard
        graveyard.bury(dict.fromkeys(range(3 * SLICE)))  # three steps' worth
        for _ in range(100):
            if not len(graveyard):
                break
            await asyncio.sleep(0)
        trace = srv.trace
        await srv.stop()
        assert trace is not None
        return trace.hists

    hists = asyncio.run(main())
    assert len(hists["walk"]) == len(hists["walk_cpu"]) == 3


class _BusyNode:
    """A node whose handling of a message spends `ms` of CPU."""

    def __init__(self, ms: float) -> None:
        self.ms = ms

    def on_message(self, src: str, msg: tuple) -> None:
        start = time.thread_time_ns()
        while time.thread_time_ns() - start < self.ms * 1e6:
            pass


def test_a_long_peer_message_is_noted_by_kind() -> None:
    trace = LatencyTrace(every=1)
    trace.on_peer_message(_BusyNode(3), "n2", ("cw", 1, 0))
    trace.on_peer_message(_BusyNode(0), "n2", ("csa", 2))
    assert max(trace.hists["msg_cw_cpu"]) >= 3000
    assert "msg_csa_cpu" not in trace.hists  # (well under MSG_NOTED_NS)
