"""Long replies inside EXEC and scripts are encoded over loop turns, driven through a
node in-process (no sockets): EXEC's reply writes one slice of a collection's rows a
turn (streamed.ChainReply), a script's redis.call of a long collection reply has it
encoded a slice a turn while the script waits (calls.ScriptCall.send_streamed), and a
script's own long reply is written over turns. The replies are those given at once.

A loop turn here is one `await asyncio.sleep(0)`: the test counts what each does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dynredis.resp import bulks
from dynredis.resp.bulks import SlicedReply
from dynredis.server import streamed
from dynredis.server.app import NodeServer

from .test_client_limits import Transport, cmd, connect, run

ROWS = 50  # rows a slice (bulks.STREAM_ROWS, made small)
ITEMS = 20 * ROWS
WAIT_S = 60.0  # (a bound on the Lua thread, not a measure)


@pytest.fixture
def rows_by_turn(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of long replies encoded, per loop turn (the last entry: this turn's)."""
    monkeypatch.setattr(bulks, "STREAM_ROWS", ROWS)
    counts = [0]
    next_slice, whole = SlicedReply.next_slice, SlicedReply.whole

    def counted_slice(self: SlicedReply) -> bytes | None:
        at = self.at
        out = next_slice(self)
        counts[-1] += self.at - at
        return out

    def counted_whole(self: SlicedReply) -> bytes:
        counts[-1] += self.n
        return whole(self)

    monkeypatch.setattr(SlicedReply, "next_slice", counted_slice)
    monkeypatch.setattr(SlicedReply, "whole", counted_whole)
    return counts


async def until(done: Callable[[], bool], counts: list[int] | None = None) -> int:
    """Run loop turns until `done()`; how many it took (a new count for each)."""
    deadline = time.monotonic() + WAIT_S
    n = 0
    while not done():
        assert time.monotonic() < deadline, "no reply"
        if counts is not None:
            counts.append(0)
        await asyncio.sleep(0)
        n += 1
    return n


async def reply_of(srv: NodeServer, *args: bytes) -> bytes:
    """A command's reply, on a connection of its own."""
    conn, t = connect(srv)
    conn.data_received(cmd(*args))
    await until(lambda: bool(t.sent) and _complete(t.sent))
    conn.connection_lost(None)
    return t.sent


def _complete(data: bytes) -> bool:
    try:
        return _skip(data, 0) == len(data)
    except (IndexError, ValueError):
        return False


def _skip(data: bytes, at: int) -> int:
    """Where the RESP2 value at `at` ends (IndexError/ValueError: not all there)."""
    end = data.index(b"\r\n", at)
    kind, n = data[at:at + 1], data[at + 1:end]
    at = end + 2
    if kind == b"$":
        if int(n) < 0:
            return at
        if len(data) < at + int(n) + 2:
            raise IndexError
        return at + int(n) + 2
    if kind == b"*":
        for _ in range(max(0, int(n))):
            at = _skip(data, at)
    return at


def counting_writes(srv: NodeServer) -> tuple[Any, Transport, list[int]]:
    """A connection whose transport counts the bytes written in each loop turn (`until`
    starts each turn's count)."""
    conn, t = connect(srv)
    writes = [0]
    write = t.write

    def counted(data: bytes) -> None:
        writes[-1] += len(data)
        write(data)

    t.write = counted  # type: ignore[method-assign]
    return conn, t, writes


async def fill(srv: NodeServer) -> None:
    items = [b"item-%05d" % i for i in range(ITEMS)]
    await reply_of(srv, b"RPUSH", b"l", *items)
    await reply_of(srv, b"SADD", b"s", *items)
    await reply_of(srv, b"ZADD", b"z", *[w for i, m in enumerate(items)
                                         for w in (b"%d.5" % i, m)])


READS = [[b"LRANGE", b"l", b"0", b"-1"], [b"SMEMBERS", b"s"],
         [b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"]]


async def exec_of_reads(srv: NodeServer, reads: list[list[bytes]], counts: list[int]) -> None:
    """MULTI, `reads`, EXEC on the filled keys: its reply must be the reads' replies
    outside a transaction (`counts` gets a new count each loop turn meanwhile)."""
    await fill(srv)
    alone = [await reply_of(srv, *args) for args in reads]
    conn, t = connect(srv)
    counts[:] = [0]
    conn.data_received(cmd(b"MULTI") + b"".join(cmd(*args) for args in reads) + cmd(b"EXEC"))
    want = (b"+OK\r\n" + b"+QUEUED\r\n" * len(reads) + b"*%d\r\n" % len(reads)
            + b"".join(alone))
    await until(lambda: len(t.sent) >= len(want), counts)
    assert t.sent == want


def test_a_long_reply_encodes_none_of_its_rows_in_the_turn_that_made_it(
        tmp_path: Path, rows_by_turn: list[int]) -> None:
    """A reply written over turns goes out with its head in the turn its command
    answered, its first rows in the next: that turn had the command's own work (a
    search, a random pick or a merge over a million elements), and 16,384 rows more in
    it held the node 20-35 ms longer. Then one slice a turn, and the whole is the
    reply."""

    async def body(srv: NodeServer) -> None:
        await fill(srv)
        for args in READS:
            alone = await reply_of(srv, *args)
            conn, t, writes = counting_writes(srv)
            rows_by_turn[:] = [0]
            conn.data_received(cmd(*args))
            await until(partial(_sent_at_least, t, len(alone)),
                        _both(rows_by_turn, writes))
            assert t.sent == alone
            first = next(i for i, n in enumerate(writes) if n)
            head = alone[:alone.index(b"\r\n") + 2]
            assert writes[first] == len(head) and rows_by_turn[first] == 0, (
                writes, rows_by_turn)
            assert max(rows_by_turn) <= ROWS and sum(rows_by_turn) == ITEMS

    run(tmp_path, body)


def _sent_at_least(t: Transport, n: int) -> bool:
    return len(t.sent) >= n


class _both(list):  # type: ignore[type-arg]
    """Two per-turn counts started together (`until` appends a turn's count)."""

    def __init__(self, *counts: list[int]) -> None:
        super().__init__()
        self.counts = counts

    def append(self, item: int) -> None:
        for c in self.counts:
            c.append(item)


def test_exec_writes_one_slice_of_rows_a_turn(tmp_path: Path, rows_by_turn: list[int]) -> None:
    """MULTI; LRANGE l 0 -1; SMEMBERS s; ZRANGE z 0 -1 WITHSCORES; EXEC: the reply is
    the three replies as they come outside a transaction, and no loop turn encodes more
    than one slice of their rows (every slice of all three was encoded in the first
    turn of writing: 4 MB of rows a turn)."""

    async def body(srv: NodeServer) -> None:
        await exec_of_reads(srv, READS, rows_by_turn)
        assert sum(rows_by_turn) == 3 * ITEMS  # (a row: an element, or a member and score)
        assert max(rows_by_turn) <= ROWS, rows_by_turn

    run(tmp_path, body)


def test_exec_writes_its_whole_replies_a_turns_worth_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many replies each made whole (short reads) are written STREAM_TURN bytes a turn,
    not joined into one reply in one turn."""
    monkeypatch.setattr(streamed, "STREAM_SLICE", 1000)
    monkeypatch.setattr(streamed, "STREAM_TURN", 2000)
    from dynredis.commands import transactions
    monkeypatch.setattr(transactions, "STREAM_SLICE", 1000)

    async def body(srv: NodeServer) -> None:
        items = [b"item-%05d" % i for i in range(100)]
        await reply_of(srv, b"RPUSH", b"l", *items)
        one = await reply_of(srv, b"LRANGE", b"l", b"0", b"-1")  # ~1,700 bytes
        conn, t, writes = counting_writes(srv)
        conn.data_received(cmd(b"MULTI") + cmd(b"LRANGE", b"l", b"0", b"-1") * 20
                           + cmd(b"EXEC"))
        want = b"+OK\r\n" + b"+QUEUED\r\n" * 20 + b"*20\r\n" + one * 20
        await until(lambda: len(t.sent) >= len(want), writes)
        assert t.sent == want
        # a turn: the queued replies' acks or the head, and 2,000 bytes, plus the
        # reply that crossed that line
        assert max(writes) <= len(b"+QUEUED\r\n") * 21 + 2000 + len(one), writes

    run(tmp_path, body)


def test_a_scripts_long_redis_call_reply_is_encoded_a_slice_a_turn(
        tmp_path: Path, rows_by_turn: list[int]) -> None:
    """EVAL "return redis.call('LRANGE', KEYS[1], 0, -1)": the reply LRANGE gives, its
    rows encoded a slice a loop turn while the script waits (all at once before)."""

    async def body(srv: NodeServer) -> None:
        await fill(srv)
        alone = await reply_of(srv, b"LRANGE", b"l", b"0", b"-1")
        for script, args in [(b"return redis.call('LRANGE', KEYS[1], 0, -1)", [b"l"]),
                             (b"return #redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
                              [b"z"])]:
            conn, t = connect(srv)
            rows_by_turn[:] = [0]
            conn.data_received(cmd(b"EVAL", script, b"1", *args))
            await until(lambda t=t: bool(t.sent) and _complete(t.sent),  # type: ignore[misc]
                        rows_by_turn)
            assert t.sent == (alone if args == [b"l"] else b":%d\r\n" % (2 * ITEMS))
            assert sum(rows_by_turn) == ITEMS
            assert max(rows_by_turn) <= ROWS, rows_by_turn

    run(tmp_path, body)


def test_a_scripts_long_reply_is_written_over_turns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script's reply of more than STREAM_SLICE bytes goes out STREAM_SLICE at a time,
    STREAM_TURN a turn (a PiecesReply of it), the same bytes."""
    from dynredis.scripting import service  # (after the server: their imports circle)

    monkeypatch.setattr(service, "STREAM_SLICE", 1000)
    monkeypatch.setattr(streamed, "STREAM_SLICE", 1000)
    monkeypatch.setattr(streamed.PiecesReply, "turn", 2000)

    async def body(srv: NodeServer) -> None:
        items = [b"item-%05d" % i for i in range(1000)]
        await reply_of(srv, b"RPUSH", b"l", *items)
        alone = await reply_of(srv, b"LRANGE", b"l", b"0", b"-1")
        conn, t, writes = counting_writes(srv)
        conn.data_received(cmd(b"EVAL", b"return redis.call('LRANGE', KEYS[1], 0, -1)",
                               b"1", b"l"))
        await until(lambda: len(t.sent) >= len(alone), writes)
        assert t.sent == alone
        assert len(alone) > 8000 and max(writes) <= 2000, writes

    run(tmp_path, body)


def test_exec_takes_a_later_turn_after_a_turns_worth_of_replies(
        tmp_path: Path, rows_by_turn: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """On one node every queued read answers at once: after STREAM_TURN bytes of replies
    the next runs in a later loop turn (all their snapshots were taken in one)."""
    from dynredis.commands import transactions
    monkeypatch.setattr(transactions, "STREAM_TURN", 1)
    taken: list[int] = [0]
    made = SlicedReply.__init__

    def counted(self: SlicedReply, *args: Any, **kw: Any) -> None:
        taken[-1] += 1
        made(self, *args, **kw)

    monkeypatch.setattr(SlicedReply, "__init__", counted)

    async def body(srv: NodeServer) -> None:
        await exec_of_reads(srv, READS * 2, taken)
        assert sum(taken) == 6 and max(taken) == 1, taken

    run(tmp_path, body)


@pytest.fixture
def store_reads_by_turn(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of values taken out of the store (a memory engine's) per loop turn (the last
    entry: this turn's): whole records read (in LMDB, a copy of each), ranges read in
    place, and slices copied from a value pinned there."""
    from dynredis.storage.memory import Held, MemoryEngine

    counts = [0]
    get, read, next_slice = MemoryEngine.get, MemoryEngine.read, streamed.PiecesReply.next_slice

    def counted_get(self: MemoryEngine, partition: int, key: bytes) -> bytes | None:
        out = get(self, partition, key)
        counts[-1] += len(out or b"")
        return out

    def head(self: MemoryEngine, partition: int, key: bytes, n: int) -> bytes | None:
        value = get(self, partition, key)  # (only its head is taken)
        return value if value is None or len(value) <= n else value[:n]

    def pin(self: MemoryEngine, partition: int, key: bytes) -> Any:
        value = get(self, partition, key)  # (viewed in place)
        return None if value is None else Held(value)

    def counted_read(self: MemoryEngine, partition: int, key: bytes, reader: Any) -> Any:
        out = read(self, partition, key, reader)
        counts[-1] += len(out) if type(out) is bytes else 0
        return out

    def counted_slice(self: streamed.PiecesReply) -> bytes | None:
        out = next_slice(self)
        counts[-1] += len(out or b"") if self.pins else 0  # (not a script's own reply)
        return out

    monkeypatch.setattr(MemoryEngine, "get", counted_get)
    monkeypatch.setattr(MemoryEngine, "get_head", head)
    monkeypatch.setattr(MemoryEngine, "pin", pin)
    monkeypatch.setattr(MemoryEngine, "read", counted_read)
    monkeypatch.setattr(streamed.PiecesReply, "next_slice", counted_slice)
    monkeypatch.setattr(streamed.PiecesReply, "turn", TURN)
    return counts


TURN = 1 << 20  # bytes of a reply made a loop turn (streamed.STREAM_TURN, made small)
BIG = 3 * TURN + 5  # a large value (over streamed.STREAM_SLICE: sent from the store)


def test_a_scripts_read_of_a_large_value_takes_it_from_the_store_a_slice_a_turn(
        tmp_path: Path, store_reads_by_turn: list[int]) -> None:
    """EVAL "return redis.call('GET', KEYS[1])" (or GETRANGE of a long range) of a large
    value: the bytes a client's GET and GETRANGE get, the value copied from the store a
    slice a loop turn while the script waits, as for a client (it was read whole in one
    turn: a 100 MiB GETRANGE in a script, 110 ms of a node's CPU in one loop piece)."""
    value = bytes(range(256)) * (BIG // 256) + b"tail!"

    async def body(srv: NodeServer) -> None:
        await reply_of(srv, b"SET", b"big", value)
        for script, alone in [
                (b"return redis.call('GET', KEYS[1])", [b"GET", b"big"]),
                (b"return redis.call('GETRANGE', KEYS[1], 0, -1)",
                 [b"GETRANGE", b"big", b"0", b"-1"]),
                (b"return redis.call('GETRANGE', KEYS[1], 7, -3)",
                 [b"GETRANGE", b"big", b"7", b"-3"]),
                (b"return redis.pcall('GET', KEYS[1])", [b"GET", b"big"])]:
            want = await reply_of(srv, *alone)
            conn, t = connect(srv)
            store_reads_by_turn[:] = [0]
            conn.data_received(cmd(b"EVAL", script, b"1", b"big"))
            await until(lambda t=t: bool(t.sent) and _complete(t.sent),  # type: ignore[misc]
                        store_reads_by_turn)
            assert t.sent == want and len(want) > BIG
            assert sum(store_reads_by_turn) >= len(want) - 20  # (all of it, once)
            assert max(store_reads_by_turn) <= TURN, (script, store_reads_by_turn)
            conn.connection_lost(None)

    run(tmp_path, body, object_cache_max_memory=1 << 20)  # (the value is not cached)
