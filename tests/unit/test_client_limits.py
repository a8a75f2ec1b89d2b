"""Client limits and flow control, driven in-process (no sockets): maxclients, the query
buffer limit, maxmemory-clients, output buffer limits, the pause of a client whose replies
pile up, a turn's time budget, and what a connection gives back when it goes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.commands.cluster import (
    cluster_shards,
    cluster_slots,
    encode_shards,
    encode_slots,
    node_id,
    replica_id,
)
from dynredis.core.ring import new_ring
from dynredis.resp import encode as resp
from dynredis.server.app import NodeOptions, NodeServer
from dynredis.server.client import (
    FIRST_WINDOW,
    IN_FLIGHT_BYTES,
    LARGE_REQUEST,
    ClientConnection,
)
from dynredis.server.limits import (
    ERR_MAXCLIENTS,
    OutputLimit,
    default_output_limits,
    format_output_limits,
    parse_output_limits,
)
from dynredis.server.peerauth import Dialer

from ..fuzz.requests import build
from ..fuzz.test_request_parser import HypothesisDraw
from .test_client_connection import PEERS, challenge, three_node_server


class Transport:
    """A transport that records what the connection did to it."""

    def __init__(self, unsent: int = 0) -> None:
        self.sent = b""
        self.unsent = unsent  # what get_write_buffer_size() says
        self.reading = True
        self.aborted = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def get_extra_info(self, name: str) -> None:
        return None

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def resume_reading(self) -> None:
        self.reading = True


def run(tmp_path: Path, body: Callable[[NodeServer], Coroutine[Any, Any, None]],
        **opts: Any) -> None:
    async def main() -> None:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="memory",
                                     n=1, r=1, w=1, **opts))
        srv.loop = asyncio.get_running_loop()
        await body(srv)

    asyncio.run(main())


def connect(srv: NodeServer, transport: Transport | None = None
            ) -> tuple[ClientConnection, Transport]:
    conn = ClientConnection(srv)
    t = transport or Transport()
    conn.connection_made(t)  # type: ignore[arg-type]
    return conn, t


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def test_maxclients_refuses_clients_but_not_a_peer(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        srv.limits.maxclients = 1
        first, _ = connect(srv)
        over, t = connect(srv)
        over.data_received(b"PING\r\n")
        await turns()
        assert t.sent == ERR_MAXCLIENTS and t.closed
        assert srv.rejected_connections == 1
        # A peer linking while clients fill the node is taken (its hello says so).
        peer, t = connect(srv)
        dialer = Dialer(srv.secret.encode(), "10.0.0.9:7000", srv.name)
        peer.data_received(dialer.hello())
        await turns()
        proof = dialer.answer(challenge(t.sent))
        assert proof is not None
        peer.data_received(proof)
        await turns()
        assert peer.peer_name == "10.0.0.9:7000" and not t.closed
        # A slot freed is a slot taken.
        first.connection_lost(None)
        later, t = connect(srv)
        later.data_received(b"PING\r\n")
        await turns()
        assert t.sent == b"+PONG\r\n"
        assert srv.client_count == 1

    run(tmp_path, body)


def test_a_client_is_not_read_while_its_output_waits(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        conn, t = connect(srv)
        conn.pause_writing()  # the transport says: over the high-water mark
        assert not t.reading
        conn.data_received(b"PING\r\n" * 3)
        await turns()
        assert t.sent == b""  # nothing more runs for a client that does not read
        conn.resume_writing()
        await turns()
        assert t.sent == b"+PONG\r\n" * 3 and t.reading

    run(tmp_path, body)


def test_a_gone_client_gives_back_all_it_held(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        conn, _ = connect(srv)
        conn.data_received(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"v" * 40000)
        assert srv.input_held == conn.parser.held() == 40004  # SET, k and the value so far
        conn.connection_lost(None)
        assert srv.input_held == 0 and conn.parser.held() == 0
        assert srv.client_count == 0 and not srv.clients

    run(tmp_path, body)


def test_a_client_over_its_query_buffer_limit_is_closed(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    async def body(srv: NodeServer) -> None:
        srv.limits.query_buffer = 1 << 20
        conn, t = connect(srv)
        conn.data_received(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n" + b"v" * 1_000_000)
        assert not t.aborted
        conn.data_received(b"v" * 100_000)
        assert t.aborted and conn.closing and srv.input_held == 0

    with caplog.at_level("WARNING"):
        run(tmp_path, body)
    assert "Closing client that reached max query buffer length" in caplog.text


def test_past_maxmemory_clients_the_biggest_clients_go(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        srv.limits.maxmemory_clients = 1 << 20
        sizes = (300_000, 500_000, 400_000)
        conns = [connect(srv) for _ in sizes]
        for (conn, _), size in zip(conns, sizes, strict=True):
            conn.data_received(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$900000\r\n" + b"v" * size)
        assert [t.aborted for _, t in conns] == [False, True, False]
        assert srv.evicted_clients == 1
        assert srv.input_held == 700_008  # (SET and k: 4 bytes each)

    run(tmp_path, body)


def test_output_buffer_limits_close_a_client(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        conn, t = connect(srv, Transport(unsent=5000))
        conn.data_received(b"PING\r\n")
        await turns()
        assert not t.aborted  # normal clients: no limit by default
        srv.limits.output["normal"] = OutputLimit(4096, 0, 0)
        conn.data_received(b"PING\r\n")
        await turns()
        assert t.aborted

    run(tmp_path, body)


def test_output_limit_rules_are_redis() -> None:
    limit = OutputLimit(1000, 100, 60)
    assert limit.over(1000, 0.0, 5.0) == (True, 0.0)  # hard
    assert limit.over(100, 0.0, 5.0) == (False, 5.0)  # soft: the clock starts
    assert limit.over(100, 5.0, 65.0) == (False, 5.0)  # not more than 60 s yet
    assert limit.over(100, 5.0, 65.5) == (True, 5.0)
    assert limit.over(99, 5.0, 70.0) == (False, 0.0)  # under again: forgotten
    assert OutputLimit(0, 0, 0).none


def test_client_output_buffer_limit_values_parse_as_redis_parses_them() -> None:
    def memtoull(raw: str) -> int | None:
        units = {"": 1, "kb": 1024, "mb": 1 << 20}
        digits = raw.rstrip("kmb")
        return int(digits) * units[raw[len(digits):]] if digits.isdigit() else None

    current = default_output_limits()
    assert format_output_limits(current) == \
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    new, reason = parse_output_limits("normal 1mb 512kb 10 replica 1 2 3", current, memtoull)
    assert reason is None and new is not None
    assert format_output_limits(new) == \
        "normal 1048576 524288 10 slave 1 2 3 pubsub 33554432 8388608 60"
    for raw, why in (("bogus 1 2 3", "Invalid client class"), ("master 1 2 3", "Invalid"),
                     ("normal 1 2", "Wrong number of arguments"),
                     ("normal x 2 3", "Error in hard, soft or soft_seconds"),
                     ("normal 1 2 -3", "Error in hard, soft or soft_seconds")):
        new, reason = parse_output_limits(raw, current, memtoull)
        assert new is None and reason is not None and reason.startswith(why), raw


def test_the_window_of_commands_in_flight_follows_reply_sizes(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        conn, t = connect(srv)
        assert conn.window == FIRST_WINDOW  # until a reply says how big they are
        conn.data_received(cmd(b"SET", b"big", b"v" * (1 << 20)) + cmd(b"PING"))
        await turns()
        conn.data_received(cmd(b"GET", b"big") * 3)
        await turns()
        assert t.sent.endswith(b"v\r\n")
        assert 1 <= conn.window <= IN_FLIGHT_BYTES // (1 << 19)
        small, _ = connect(srv)
        small.data_received(b"PING\r\n")
        await turns()
        assert small.window > FIRST_WINDOW  # small replies: a deep pipeline

    run(tmp_path, body)


def test_a_client_yields_to_others_after_its_turn(tmp_path: Path) -> None:
    async def body(srv: NodeServer) -> None:
        srv.turn_ms = 0  # every command is a turn
        busy, t = connect(srv)
        other, t2 = connect(srv)
        busy.data_received(b"PING\r\n" * 5)
        assert t.sent == b"" and busy.paused  # one command, then the others' turn
        other.data_received(b"PING\r\n")
        await turns(20)
        assert t.sent == b"+PONG\r\n" * 5 and t2.sent == b"+PONG\r\n"

    run(tmp_path, body)


def test_a_requests_deadline_counts_from_its_start(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that waited behind slow ones in the same read gets its whole timeout
    (the node's clock is read again before each command)."""
    clock = [1_000_000.0]

    def slow_clock() -> float:
        clock[0] += 1.0  # every read of the clock finds a second gone
        return clock[0]

    async def main() -> list[int]:
        srv, _ = three_node_server(tmp_path, engine="memory")  # a write waits for a peer
        conn, _ = connect(srv)
        monkeypatch.setattr(srv, "wall_clock", slow_clock)
        conn.data_received(b"PING\r\nPING\r\n" + cmd(b"SET", b"k", b"v"))
        await turns()  # (each command is a turn here: a second passes between them)
        monkeypatch.undo()
        return [op.deadline for op in srv.node.writes.pending.values()]

    deadlines = asyncio.run(main())
    read_at = 1_000_001 * 1000  # the clock when the read came in
    assert deadlines
    assert all(d - NodeOptions().timeout_ms > read_at for d in deadlines)


def test_topology_replies_are_built_once_per_topology(tmp_path: Path) -> None:
    async def main() -> None:
        srv, _ = three_node_server(tmp_path, engine="memory")
        conn, t = connect(srv)
        conn.data_received(cmd(b"CLUSTER", b"SLOTS"))
        await turns()
        first, t.sent = t.sent, b""
        conn.data_received(cmd(b"CLUSTER", b"SLOTS") + cmd(b"CLUSTER", b"SHARDS"))
        await turns()
        assert t.sent.startswith(first)
        cached = dict(srv.topology_replies)
        assert set(cached) == {("slots", 2), ("shards", 2)}
        assert cached[("slots", 2)][1] == first
        srv.node.peer_down(PEERS[0])  # a replica fails: it leaves CLUSTER SLOTS
        t.sent = b""
        conn.data_received(cmd(b"CLUSTER", b"SLOTS"))
        await turns()
        replica = b"\r\n:%s\r\n" % PEERS[0].rpartition(":")[2].encode()  # at its port
        assert replica in first and replica not in t.sent

    asyncio.run(main())


def test_topology_replies_are_the_encoding_of_what_they_describe(tmp_path: Path) -> None:
    """CLUSTER SLOTS and SHARDS are built from each member entry's encoding made once:
    the bytes must be those of encoding the whole description, in RESP2 and RESP3, with
    a member down (left out as a replica, \"fail\" as a master) and zones."""
    async def main() -> None:
        srv, _ = three_node_server(tmp_path, engine="memory")
        node = srv.node
        names = sorted(node.members)
        node.ring = new_ring(names, previous=node.ring,
                             zones={n: f"z{i % 2}" for i, n in enumerate(names)})
        conn, _ = connect(srv)
        for down in (False, True):
            if down:
                node.peer_down(PEERS[0])
            for proto in (2, 3):
                conn.proto = proto
                assert encode_slots(conn) == resp.encode(cluster_slots(conn), proto)
                assert encode_shards(conn) == resp.encode(cluster_shards(conn), proto)
        assert b"fail" in encode_shards(conn) and b"z1" in encode_shards(conn)

    asyncio.run(main())


def test_a_large_request_whose_reading_took_the_turn_runs_in_the_next(tmp_path: Path) -> None:
    """Reading a 100 MB value (the copy that makes it an argument) and encoding it held a
    node's loop in one stretch: a request of LARGE_REQUEST bytes or more whose reading
    used up the turn waits for the next one (the other clients go first); a small one
    does not, and nothing is lost or reordered."""
    async def main() -> None:
        srv, _ = three_node_server(tmp_path, engine="memory")
        srv.turn_ms = 0  # every read uses up its turn
        writes = srv.node.writes.pending
        conn, t = connect(srv)
        conn.data_received(cmd(b"SET", b"small", b"v"))
        assert len(writes) == 1  # at once
        conn.data_received(cmd(b"SET", b"big", b"x" * LARGE_REQUEST) + cmd(b"PING"))
        assert len(writes) == 1 and conn.held_cmd is not None
        await turns()
        assert len(writes) == 2 and conn.held_cmd is None
        assert [op.key for op in writes.values()] == [b"small", b"big"]

    asyncio.run(main())


def test_topology_replies_follow_membership_and_ring_changes(tmp_path: Path) -> None:
    """The kept CLUSTER SLOTS / SHARDS / NODES replies are answered again only while
    the ring, the members and their status are what they described: a member joining
    (a new ring) shows in all three, its leaving takes them back to the first replies,
    and a member seen down and up again does too."""
    subs = (b"SLOTS", b"SHARDS", b"NODES")

    async def main() -> None:
        srv, _ = three_node_server(tmp_path, engine="memory")
        node = srv.node
        conn, t = connect(srv)

        async def replies() -> list[bytes]:
            out = []
            for sub in subs:
                t.sent = b""
                conn.data_received(cmd(b"CLUSTER", sub))
                await turns()
                out.append(t.sent)
            return out

        first = await replies()
        assert await replies() == first  # from the kept replies
        names = sorted(node.members)
        joined = "127.0.0.1:4"
        node.members = {*names, joined}
        node.ring = new_ring([*names, joined], previous=node.ring)
        grown = await replies()
        ids = (node_id(joined).encode(), replica_id(joined).encode())
        assert all(any(i in r for i in ids) for r in grown)
        node.members = set(names)
        node.ring = new_ring(names, previous=node.ring)
        back = await replies()
        assert not any(i in r for i in ids for r in back)
        assert back[0] == first[0] and back[1] == first[1]  # SLOTS and SHARDS: as first
        node.peer_down(PEERS[1])
        assert (await replies()) != back
        node.peer_up(PEERS[1])
        assert (await replies()) == back

    asyncio.run(main())


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_input_never_breaks_a_connection_or_its_accounts(tmp_path: Path,
                                                                data: st.DataObject) -> None:
    """Whatever comes in, a node answers or refuses it without raising, counts exactly
    the input its clients hold, and forgets all of it when they go."""
    draws = HypothesisDraw(data)
    inputs = [build(draws)[0] for _ in range(3)]

    async def body(srv: NodeServer) -> None:
        conns = [connect(srv) for _ in inputs]
        for step in range(max(len(chunks) for chunks in inputs)):
            for (conn, _), chunks in zip(conns, inputs, strict=True):
                if step < len(chunks) and not conn.closing:
                    conn.data_received(chunks[step])
            await turns(3)
            assert srv.input_held == sum(conn.parser.held() for conn, _ in conns)
        for conn, _ in conns:
            conn.connection_lost(None)
        assert srv.input_held == 0 and srv.client_count == 0

    run(tmp_path / str(len(list(tmp_path.iterdir()))), body)


class BackedUpPeer(Transport):
    """A peer link's transport with `unsent` bytes it could not send yet."""

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass


def test_a_peer_link_past_its_output_limit_is_cut(tmp_path: Path) -> None:
    """client-output-buffer-limit's slave class cuts a link to a peer whose unsent output
    passed it (the link reconnects; its messages are lost, as Dynamo allows): whether
    asyncio paused the link's writing (more than its high-water mark unsent) or the
    limit is below that mark; a link under the limit keeps going."""

    def send_with(slave: str, unsent: int, paused: bool) -> BackedUpPeer:
        return asyncio.run(sending(slave, unsent, paused))

    async def sending(slave: str, unsent: int, paused: bool) -> BackedUpPeer:
        srv, _ = three_node_server(tmp_path / f"{slave}-{unsent}-{paused}".replace(" ", "_"),
                                   engine="memory")
        limits, reason = parse_output_limits(f"slave {slave}", srv.limits.output,
                                             lambda raw: int(raw))
        assert reason is None and limits is not None
        srv.limits.output = limits
        link = srv.links[PEERS[0]]
        t = BackedUpPeer(unsent)
        link.transport = t  # type: ignore[assignment]
        link.writing_paused = paused
        srv.node.send(PEERS[0], ("hb",))
        srv.flush()
        return t

    hard = 64 << 20
    assert send_with(f"{hard} 0 0", hard + 1, paused=True).aborted
    assert not send_with(f"{hard} 0 0", 1000, paused=False).aborted
    assert send_with("1000 0 0", 5000, paused=False).aborted  # a limit below the mark
    assert not send_with("1000 0 0", 10, paused=False).aborted


def test_a_value_bigger_than_the_peer_limit_still_goes(tmp_path: Path) -> None:
    """The value being written on a peer link does not count toward the slave class's
    limit, whatever its size up to proto-max-bulk-len (a 512 MB value cut both links of its
    coordinator, past the 256 MB default, and its write failed NOQUORUM); what waits behind
    it does."""

    async def sending() -> list[bool]:
        srv, _ = three_node_server(tmp_path, engine="memory")
        limits, reason = parse_output_limits("slave 1048576 0 0", srv.limits.output,
                                             lambda raw: int(raw))
        assert reason is None and limits is not None
        srv.limits.output = limits
        link = srv.links[PEERS[0]]
        t = BackedUpPeer(1000)
        link.transport = t  # type: ignore[assignment]
        link.writing_paused = True  # the batches wait: nothing of them written yet
        cut = []
        for _ in range(2):
            link._queue_bulk([b"v" * (3 << 20)])
            srv.node.send(PEERS[0], ("hb",))
            srv.flush()
            cut.append(t.aborted)
        return cut

    assert asyncio.run(sending()) == [False, True]


def test_a_command_that_used_up_the_turn_is_the_last_of_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn's time was checked against the clock read before the command just run:
    after a slow one (a SCAN of a million keys, 35 ms) the next of the same read ran in
    the same turn too, and a loop piece held two. The clock read before each later
    command says whether the turn is over: that command waits for the next turn."""
    clock = [1_000_000.0]

    def slow_clock() -> float:
        clock[0] += 1.0  # every read of the clock finds a second gone
        return clock[0]

    async def main() -> None:
        srv, _ = three_node_server(tmp_path, engine="memory")
        conn, t = connect(srv)
        before = srv.commands_processed
        monkeypatch.setattr(srv, "wall_clock", slow_clock)
        conn.data_received(b"PING\r\n" * 3)
        ran = srv.commands_processed - before
        monkeypatch.undo()
        assert ran == 1 and conn.held_cmd is not None
        await turns(20)
        assert t.sent == b"+PONG\r\n" * 3 and conn.held_cmd is None

    asyncio.run(main())
