"""Commands that run over loop turns leave nothing for Python's cyclic collector (issue
12, "no unbounded memory").

What a reference cycle holds is freed only by a full collection, which a node doing
little else runs every few dozen commands: a script's HGETALL of a million fields left
25-50 MB a call that way (closures handing themselves to the loop, a run's callbacks
naming the run). Here the collector is off while the commands run; afterwards nothing
may be found in cycles (dynredis/memdebug.py's `cyclic_garbage` names what is).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dynredis import memdebug
from dynredis.cluster.affinity import Affinity
from dynredis.commands import storedbits
from dynredis.commands.gate import KeyGate
from dynredis.core import collsync
from dynredis.core import messages as m
from dynredis.core.obj import LARGE_VALUE
from dynredis.server.streamed import STREAM_SLICE, PiecesReply, gather

from .test_client_connection import one_client


@contextmanager
def collector_off() -> Iterator[list[tuple[dict[str, int], int]]]:
    """Runs its body with the cyclic collector off; yields a list that gets what
    was left in cycles afterwards (objects by name, bytes they held)."""
    found: list[tuple[dict[str, int], int]] = []
    gc.collect()
    gc.disable()
    try:
        yield found
        garbage, held = memdebug.cyclic_garbage()
        found.append((dict(garbage), held))
    finally:
        gc.enable()


class Pin:
    def alive(self) -> bool:
        return True

    def release(self) -> None:
        pass


class Reply(PiecesReply):
    """(A PiecesReply a weak reference can follow.)"""


class Body:
    """A gate's body (a weak reference can follow it): keeps its `leave`."""

    def __init__(self) -> None:
        self.leaves: list[Any] = []

    def __call__(self, leave: Any) -> None:
        self.leaves.append(leave)


def test_a_reply_gathered_over_turns_is_let_go_once_made() -> None:
    big = b"x" * (STREAM_SLICE * 9)  # 3 turns
    for parts in (False, True):
        with collector_off():
            due: list[Any] = []
            got: list[Any] = []
            reply = Reply([b"$%d\r\n" % len(big), memoryview(big), b"\r\n"], [Pin()])
            gone = weakref.ref(reply)
            gather(reply, due.append, got.append, parts)
            del reply
            while due:
                due.pop(0)(None)
            whole = b"".join(got[0]) if parts else got[0]
            assert whole == b"$%d\r\n%b\r\n" % (len(big), big)
            assert gone() is None  # not kept in a cycle for the collector


def test_entering_several_gates_lets_go_of_the_body_once_it_left() -> None:
    gate = KeyGate()
    with collector_off():
        first = Body()
        gate.enter(b"b", None, first)  # held: the others wait for it
        body = Body()
        gone = weakref.ref(body)
        gate.enter_all([b"c", b"a", b"b"], None, body)
        assert not body.leaves
        first.leaves.pop()()
        leave = body.leaves.pop()
        del body
        leave()
        del leave
        assert gate.busy() == 0
        assert gone() is None  # not kept in a cycle for the collector


Send = Callable[[str], Awaitable[bytes]]


def on_a_node(tmp_path: Path, body: Callable[[Send], Awaitable[None]],
              handed: list[Send] | None = None, **options: Any) -> None:
    """`body(send)` against one in-process node and a client of it; `send(line)` is
    the reply (scripts run in the Lua thread: waited for, 30 s at most). With
    `handed`, it gets a `send` of commands as another node hands them to this one
    (cluster/affinity.py), whose reply is the answer to that node. `options`: the
    node's (NodeOptions)."""

    async def main() -> None:
        srv, conn, transport = one_client(tmp_path, **options)
        if handed is not None:
            handed.append(handing(srv))

        async def send(line: str) -> bytes:
            transport.sent = b""
            conn.data_received(line.encode() + b"\r\n")
            deadline = srv.loop.time() + 30
            while (conn.waiting or not transport.sent) and srv.loop.time() < deadline:
                await asyncio.sleep(0.001)
            return transport.sent

        try:
            await body(send)
        finally:
            srv.scripts.stop()

    asyncio.run(main())


FIELDS = 40_000  # more than a loop turn's rows (resp/bulks.py STREAM_ROWS): over turns
SCRIPT = "return #redis.call('HGETALL', KEYS[1])"


def test_scripts_transactions_and_bitops_leave_no_cycle_holding_their_data(
        tmp_path: Path) -> None:
    async def body(send: Send) -> None:
        for lo in range(0, FIELDS, 10_000):
            fields = " ".join(f"f{i} {i}" for i in range(lo, lo + 10_000))
            assert await send(f"HSET h {fields}") == b":10000\r\n"
        assert await send("SETRANGE b1 1000000 x") == b":1000001\r\n"
        assert await send("SETRANGE b2 1000000 y") == b":1000001\r\n"
        eval_ = f'EVAL "{SCRIPT}" 1 h'
        for cmd in (eval_, "MULTI", "HGETALL h", "EXEC", "BITOP OR b3 b1 b2"):
            await send(cmd)  # (warm: the interpreter's caches)
        with collector_off() as found:
            for _ in range(3):
                assert await send(eval_) == b":%d\r\n" % (2 * FIELDS)
                assert await send("MULTI") == b"+OK\r\n"
                assert await send("HGETALL h") == b"+QUEUED\r\n"
                assert (await send("EXEC")).startswith(b"*1\r\n*%d\r\n" % (2 * FIELDS))
                assert await send("BITOP OR b3 b1 b2") == b":1000001\r\n"
        garbage, held = found[0]
        assert held < 50_000, f"{held} bytes held in cycles by {garbage}"

    on_a_node(tmp_path, body)


EVERYDAY = [
    ("SET s v", b"+OK\r\n"), ("GET s", b"$1\r\nv\r\n"), ("INCR n", None),
    ("SETNX s w", b":0\r\n"), ("GETSET s v", b"$1\r\nv\r\n"), ("APPEND s x", b":2\r\n"),
    ("EXPIRE s 100", b":1\r\n"), ("TTL s", b":100\r\n"), ("DEL s", b":1\r\n"),
    ("HSET h f v", None), ("HGET h f", b"$1\r\nv\r\n"), ("HINCRBY h c 1", None),
    ("SADD st m", None), ("SISMEMBER st m", b":1\r\n"), ("ZADD z 1 m", None),
    ("ZINCRBY z 1 m", None), ("ZRANGE z 0 -1", b"*1\r\n$1\r\nm\r\n"),
    ("RPUSH l a", None), ("LPOP l", b"$1\r\na\r\n"), ("HDEL h f", b":1\r\n"),
]


def test_everyday_commands_leave_no_cycle(tmp_path: Path) -> None:
    """The string, hash, set, sorted-set and list commands an application sends all day
    leave nothing in cycles: compiled, a closure whose environment holds it (DEL's
    gathering of its keys' results, HINCRBY's body) was one per command, freed only by
    the cyclic collector."""
    async def body(send: Send) -> None:
        for line, _ in EVERYDAY:
            await send(line)  # (warm: the interpreter's caches, the keys' views)
        with collector_off() as found:
            for _ in range(20):
                for line, want in EVERYDAY:
                    got = await send(line)
                    assert want is None or got == want, (line, got)
        garbage, held = found[0]
        assert not garbage, f"{held} bytes held in cycles by {garbage}"

    on_a_node(tmp_path, body)


BIG = 3 * 512  # members; a removal of 1,124 of them runs over turns (per-element
TAKEN = 2 * 512 + 100  # records, collview.TURN_REMOVALS a turn: most survive)
LEFT = BIG - TAKEN


def test_plans_and_removals_over_turns_leave_no_cycle(tmp_path: Path) -> None:
    """A removal made over turns (SPOP and LTRIM of 1,124 of 1,536), a plan with batches
    of lookups (SORT ... BY / GET) and plans storing their result (SUNIONSTORE,
    GEOSEARCHSTORE) leave nothing in cycles. Compiled, a removal's step that handed
    itself to the next turn held the key's loaded view, and each plan's driver and
    batches their steps (33 SORT BY of 100,000: 218,000 dead steps), until the
    collector found them."""
    async def body(send: Send) -> None:
        members = " ".join(f"m{i}" for i in range(BIG))
        for _ in range(2):
            assert await send(f"SADD s {members}") == b":%d\r\n" % BIG
            assert await send(f"RPUSH l {members}") == b":%d\r\n" % BIG
            assert await send("SET w_m1200 -1") == b"+OK\r\n"
            assert await send("GEOADD g 13.36 38.11 a 15.08 37.50 b") == b":2\r\n"
            with collector_off() as found:
                popped = await send(f"SPOP s {TAKEN}")
                assert popped.startswith(b"*%d\r\n" % TAKEN)
                assert await send(f"LTRIM l {TAKEN} -1") == b"+OK\r\n"
                assert await send("LLEN l") == b":%d\r\n" % LEFT
                assert await send("SORT l BY w_* LIMIT 0 1") == b"*1\r\n$5\r\nm1200\r\n"
                assert (await send("SORT l BY nosort GET w_*")).startswith(
                    b"*%d\r\n" % LEFT)
                assert await send("SUNIONSTORE u s s") == b":%d\r\n" % LEFT
                assert await send("GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 500 km"
                                  " STOREDIST") == b":2\r\n"
                assert await send("DEL s l u gs g") == b":5\r\n"
            garbage, held = found[0]
            assert not garbage, f"{held} bytes held in cycles by {garbage}"

    on_a_node(tmp_path, body)


LIST = "RPUSH l a b a c a x y a"  # a at 0, 2, 4 and 7
LPOS = [
    ("LPOS l a", b":0\r\n"), ("LPOS l a RANK 2", b":2\r\n"), ("LPOS l a RANK -1", b":7\r\n"),
    ("LPOS l a COUNT 0", b"*4\r\n:0\r\n:2\r\n:4\r\n:7\r\n"),
    ("LPOS l a RANK 2 COUNT 2", b"*2\r\n:2\r\n:4\r\n"),
    ("LPOS l a RANK -2 COUNT 2 MAXLEN 5", b"*1\r\n:4\r\n"),
    ("LPOS l a MAXLEN 1 RANK 2", b"$-1\r\n"), ("LPOS l a COUNT 3 MAXLEN 3", b"*2\r\n:0\r\n:2\r\n"),
    ("LPOS l z", b"$-1\r\n"), ("LPOS nokey a", b"$-1\r\n"), ("LPOS nokey a COUNT 1", b"*0\r\n"),
    ("LPOS s a", b"-WRONGTYPE"), ("LPOS l a RANK 0", b"-ERR RANK can't be zero"),
    ("EVAL \"return redis.call('LPOS', KEYS[1], 'a', 'RANK', -3)\" 1 l", b":2\r\n"),
]


async def no_cycle(send: Send, lines: list[tuple[str, bytes | None]], times: int = 5
                   ) -> None:
    """Run `lines` (each reply starting as given, if given) `times` over with the
    collector off: nothing may be left in cycles."""
    for line, _ in lines:
        await send(line)  # (warm: the interpreter's caches, the keys' views)
    with collector_off() as found:
        for _ in range(times):
            for line, want in lines:
                got = await send(line)
                assert want is None or got.startswith(want), (line, got)
    garbage, held = found[0]
    assert not garbage, f"{held} bytes held in cycles by {garbage}"


def test_lpos_leaves_no_cycle(tmp_path: Path) -> None:
    """LPOS, with RANK, COUNT and MAXLEN or without, found or not: compiled, its op was a
    closure naming `_wrap` as its builder does, which mypyc then keeps in the builder's
    environment, held by the closure: a reference cycle per LPOS."""
    async def body(send: Send) -> None:
        assert await send(LIST) == b":8\r\n"
        assert await send("SET s v") == b"+OK\r\n"
        await no_cycle(send, LPOS)

    on_a_node(tmp_path, body)


BIG_VALUE = LARGE_VALUE + 1  # a string whose RENAME and COPY run on the plain string paths
MOVES = [
    ("RENAME s1 s2", b"+OK"), ("RENAMENX s2 s1", b":1"), ("COPY s1 s3 REPLACE", b":1"),
    ("COPY s1 s3", b":0"), ("MOVE s3 1", b":1"), ("SELECT 1", b"+OK"), ("MOVE s3 0", b":1"),
    ("SELECT 0", b"+OK"), ("RENAME st st2", b"+OK"), ("RENAME st2 st", b"+OK"),
    ("COPY st st3 REPLACE", b":1"), ("RENAME big big2", b"+OK"),
    ("COPY big2 big REPLACE", b":1"), ("DEL big2", b":1"), ("STRLEN big", b":%d" % BIG_VALUE),
    ("MULTI", b"+OK"), ("RENAME s1 s4", b"+QUEUED"), ("RENAME s4 s1", b"+QUEUED"),
    ("EXEC", b"*2\r\n+OK\r\n+OK"),
]


def test_steps_a_node_takes_over_leave_no_cycle(tmp_path: Path) -> None:
    """RENAME, RENAMENX, COPY and MOVE of small strings, a set and a large string: their
    steps go through collection.run_step's LOCAL_STEPS (heldmoves.py), whose fallback
    was a closure naming `_run_built` as run_step does; compiled, it was kept in
    run_step's environment, which it held: a reference cycle per step that held the
    plan's driver, its client's reply slot and its keys' gates."""
    async def body(send: Send) -> None:
        assert await send("SET s1 v") == b"+OK\r\n"
        assert await send("SADD st m n") == b":2\r\n"
        assert await send(f"SETRANGE big {BIG_VALUE - 1} x") == b":%d\r\n" % BIG_VALUE
        await no_cycle(send, MOVES)

    on_a_node(tmp_path, body)


def script(call: str, *keys: str) -> str:
    """EVAL of `return redis.call(call's words)`, KEYS[i] standing for the i-th key."""
    words = ", ".join(w if w.startswith("KEYS[") else f"'{w}'" for w in call.split())
    return f'EVAL "return redis.call({words})" {len(keys)} {" ".join(keys)}'


SCRIPTED = [
    (script("SMOVE KEYS[1] KEYS[2] m", "st", "st2"), b":1"),
    (script("SMOVE KEYS[1] KEYS[2] m", "st2", "st"), b":1"),
    (script("SUNIONSTORE KEYS[1] KEYS[2] KEYS[3]", "u", "st", "st"), b":2"),
    (script("SINTERSTORE KEYS[1] KEYS[2]", "u", "st"), b":2"),
    (script("RENAME KEYS[1] KEYS[2]", "s1", "s2"), b"+OK"),
    (script("RENAMENX KEYS[1] KEYS[2]", "s2", "s1"), b":1"),
    (script("COPY KEYS[1] KEYS[2] REPLACE", "s1", "s3"), b":1"),
    (script("COPY KEYS[1] KEYS[2] REPLACE", "big", "big2"), b":1"),
    (script("LMOVE KEYS[1] KEYS[2] LEFT RIGHT", "l", "l2"), b"$1\r\na"),
    (script("LMOVE KEYS[1] KEYS[2] RIGHT LEFT", "l2", "l"), b"$1\r\na"),
    (script("ZUNIONSTORE KEYS[1] 1 KEYS[2]", "zu", "z"), b":2"),
    (script("SORT KEYS[1] ALPHA STORE KEYS[2]", "l", "sorted"), b":8"),
]


def test_write_plans_from_scripts_leave_no_cycle(tmp_path: Path) -> None:
    """A script's multi-key writes (SMOVE, SUNIONSTORE, RENAME, COPY, LMOVE ...) leave
    nothing in cycles: those whose steps run through LOCAL_STEPS (RENAME, COPY) kept the
    plan's closures, gates and the script's whole run in the fallback's cycle."""
    async def body(send: Send) -> None:
        assert await send("SET s1 v") == b"+OK\r\n"
        assert await send("SADD st m n") == b":2\r\n"
        assert await send(LIST) == b":8\r\n"
        assert await send("ZADD z 1 m 2 n") == b":2\r\n"
        assert await send(f"SETRANGE big {BIG_VALUE - 1} x") == b":%d\r\n" % BIG_VALUE
        await no_cycle(send, SCRIPTED)

    on_a_node(tmp_path, body)


class _Handing:
    """What cluster/affinity.py asks of a node, for an Affinity that takes commands
    handed by another node to this one: the answers it sends go to `sent`."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.sent: list[tuple] = []

    @property
    def now(self) -> int:
        return int(self.node.now)

    def register(self, kind: str, handler: Any) -> None:
        pass

    def send(self, peer: str, msg: tuple) -> None:
        self.sent.append(msg)


def handing(srv: Any) -> Send:
    """A `send(line)` of commands handed to `srv` as from another node: its answer."""
    peer = _Handing(srv.node)
    affinity = Affinity(peer, srv._run_forwarded)

    async def send(line: str) -> bytes:
        peer.sent.clear()
        args = [w.encode() for w in line.split()]
        affinity._on_forward("10.0.0.2:7000", m.command_forward(1, args, "default", 2, 0, 0, 0))
        srv.pump()  # (as after a peer's message: its callbacks settled)
        deadline = srv.loop.time() + 30
        while not any(msg[0] == m.COMMAND_ANSWER for msg in peer.sent) and (
                srv.loop.time() < deadline):
            await asyncio.sleep(0.001)
        return [msg for msg in peer.sent if msg[0] == m.COMMAND_ANSWER][0][2]

    return send


HANDED = [
    ("RENAME s1 s2", b"+OK"), ("RENAMENX s2 s1", b":1"), ("COPY s1 s3 REPLACE", b":1"),
    ("COPY big big2 REPLACE", b":1"), ("SUNIONSTORE u st st", b":2"), ("SET n v NX", b"+OK"),
    ("SETNX n w", b":0"), ("EXPIRE n 100", b":1"), ("DEL n", b":1"),
]


def test_commands_handed_over_by_another_node_leave_no_cycle(tmp_path: Path) -> None:
    """Commands another node hands to this one, their keys' node (cluster/affinity.py:
    a plan by its destination, a read-then-write by its key), leave nothing in cycles:
    the plans' fallback cycles held the hand-over's closures too."""
    handed: list[Send] = []

    async def body(send: Send) -> None:
        assert await send("SET s1 v") == b"+OK\r\n"
        assert await send("SADD st m n") == b":2\r\n"
        assert await send(f"SETRANGE big {BIG_VALUE - 1} x") == b":%d\r\n" % BIG_VALUE
        await no_cycle(handed[0], HANDED)

    on_a_node(tmp_path, body, handed)


OTHERS = [
    ("HINCRBYFLOAT h f 1.5", None), ("HINCRBYFLOAT h f -1.5", b"$1\r\n0"),
    ("MSETNX m1 a m2 b", None), ("MSETNX m1 a m3 c", b":0"), ("DEL m1 m2", b":2"),
]


def test_hincrbyfloat_and_msetnx_leave_no_cycle(tmp_path: Path) -> None:
    """Compiled, HINCRBYFLOAT's op (naming `isinstance` as its builder does) and MSETNX's
    read (naming its writes' callback, another closure) were kept in the environments
    they held: a reference cycle per command, MSETNX's holding its values."""
    async def body(send: Send) -> None:
        await no_cycle(send, OTHERS)

    on_a_node(tmp_path, body)


class Record:
    """(A record a weak reference can follow.)"""


def _send_a_whole_key() -> list[weakref.ref[Record]]:
    """collsync.gather of 2 slices and a few records: weak references to its last record
    and its removal record (sent in its answer)."""
    records = [Record() for _ in range(2 * collsync.SLICE + 10)]
    removal = Record()
    due: list[Callable[[Any], None]] = []
    parts: list[list[Any]] = []
    done: list[tuple[list[Any], int]] = []
    collsync.gather([], iter(records), lambda: [removal], due.append, parts.append,
                    lambda rest, sent: done.append((rest, sent)))
    while due:
        due.pop(0)(None)
    assert [len(p) for p in parts] == [collsync.SLICE, collsync.SLICE]
    assert done == [(records[2 * collsync.SLICE:] + [removal], 2)]
    return [weakref.ref(records[-1]), weakref.ref(removal)]


def test_a_whole_key_sent_over_turns_leaves_no_cycle() -> None:
    """collsync.gather, sending a key's records a slice a turn: its step handed itself to
    the next turn, a closure naming itself (a cycle, compiled or not) that held the last
    records it sent and the store's reader."""
    with collector_off() as found:
        gone = _send_a_whole_key()
        assert [ref() for ref in gone] == [None, None]  # not kept in a cycle
    garbage, held = found[0]
    ours = {name: k for name, k in garbage.items() if "gather" in name.lower()}
    assert not ours, f"{held} bytes held in cycles by {garbage}"


SCANNED = 2 * storedbits.SLICE + 1  # bytes: a count or search over 3 loop turns
BIT_SCANS = [
    ("BITCOUNT big", b":1\r\n"), ("BITCOUNT big 0 100", b":0\r\n"),
    ("BITPOS big 1", b":%d\r\n" % (8 * SCANNED - 1)), ("BITPOS big 1 0 100", b":-1\r\n"),
    ("BITPOS big 0 -1", b":%d\r\n" % (8 * SCANNED - 8)),
]


def test_bit_scans_of_a_large_value_leave_no_cycle(tmp_path: Path) -> None:
    """BITCOUNT and BITPOS of a large value left in the store read it a slice a loop turn
    (storedbits.scan): a closure handing itself on to the next turn, a cycle (compiled or
    not) that held the command's client and reply."""
    async def body(send: Send) -> None:
        assert await send(f"SETRANGE big {SCANNED - 1} \x01") == b":%d\r\n" % SCANNED
        await no_cycle(send, BIT_SCANS)

    # (the value left in the store, not kept in the node's cache of objects)
    on_a_node(tmp_path, body, engine="lmdb", object_cache_max_memory=LARGE_VALUE * 4)
