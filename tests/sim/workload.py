"""Simulated clients: sequential Redis-like operations through random nodes, all recorded.

Each client runs one operation at a time: the request reaches the chosen node after a
client-link latency, the node's callback result travels back the same way, then the
client thinks for a while and issues the next one. A client gives up on an operation
after `client_timeout_ms` (the node crashed, or its answer was lost with it): such an
operation is indeterminate, like any write that failed. Every operation is an `Op`
with its start and end (sim ms), outcome and, for writes, the unique value written
(b"c<client>-<n>", or None for a delete), the context it was written with and, when
acknowledged, the dot and sibling the coordinator created for it.

Operation types mirror what the Redis commands do with the node (`commands/`):

    GET      node.get_value (the LWW sibling, if live: read_value of the merge)
    GETCTX   node.get -> (join(obj), live siblings); the client keeps the context
    SET      node.put(key, None, value)           the coordinator's own context
    SETCTX   node.put(key, <ctx of the client's last GETCTX of key, or ()>, value)
    DEL      node.get, then, if a live value was read, node.put(key, join(obj), None)
    DELCTX   node.put(key, <last GETCTX ctx, or ()>, None)

New types (INCR with counters) are added by subclassing `OpType` and calling
`register`; `Workload(mix=...)` picks types by weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.clock import VV
from dynredis.core.node import Node, Result

from .harness import SimCluster

PENDING, OK, ERR, TIMEOUT, REFUSED = "pending", "ok", "err", "timeout", "refused"


@dataclass
class Op:
    id: int
    client: int
    kind: str
    key: bytes
    node: str
    start: float
    end: float | None = None
    status: str = PENDING
    error: str | None = None
    writes: bool = False  # the type writes (SET, SETCTX, DEL, DELCTX)
    wrote: bool = False  # a put was handed to a coordinator (DEL may decide not to)
    value: bytes | None = None  # data written (None: a tombstone)
    ctx: VV | None = None  # context written with (None: the coordinator's own, plain SET)
    dot: tuple[bytes, int] | None = None  # the new version's dot, from the acknowledgement
    sibling: tuple | None = None  # the new version (ts, expire_at, data), from the ack
    read: Any = None  # GET: bytes or None; GETCTX: (ctx, [live sibling data, newest first])
    late: str | None = None  # an answer that came after the client gave up
    anomaly: str | None = None  # something the client saw that cannot be right

    @property
    def acked(self) -> bool:
        return self.status == OK and self.wrote

    def describe(self, short: Callable[[str], str] = str) -> str:
        what = f"{self.kind} {self.key.decode()}"
        if self.writes:
            what += f" {self.value.decode() if self.value else 'TOMBSTONE'}"
            if self.ctx is not None:
                what += f" ctx={fmt_vv(self.ctx)}"
        if self.dot is not None:
            what += f" dot={fmt_dot(self.dot)}"
        if self.read is not None or (self.kind == "GET" and self.status == OK):
            what += f" read={fmt_read(self.read)}"
        end = f"{self.end - 1_000_000:.1f}" if self.end is not None else "-"
        res = self.status + (f" ({self.error})" if self.error else "")
        if self.late:
            res += f", late answer {self.late}"
        return (f"op{self.id} c{self.client} {what} via {short(self.node)} "
                f"[{self.start - 1_000_000:.1f}..{end}] -> {res}")


def fmt_dot(dot: tuple[bytes, int]) -> str:
    return f"{dot[0].decode(errors='replace')}:{dot[1]}"


def fmt_vv(vv: VV | dict) -> str:
    items = vv.items() if isinstance(vv, dict) else vv
    return "{" + ",".join(f"{a.decode(errors='replace')}:{n}" for a, n in sorted(items)) + "}"


def fmt_read(read: Any) -> str:
    if isinstance(read, tuple):
        ctx, vals = read
        return f"{fmt_vv(ctx)} [{' '.join(v.decode() for v in vals)}]"
    return "nil" if read is None else read.decode()


def new_dot(obj: Any) -> tuple[tuple[bytes, int], tuple] | None:
    """The dot and sibling of the version a put created: the newest sibling of its result
    (the coordinator stamps it above every timestamp it holds), at index 0 of its actor."""
    w = objmod.winner(obj)
    if w is None or w[1] is None:
        return None
    sib, actor, idx = w
    for a, n, _ in obj[0]:
        if a == actor:
            return (actor, n - idx), sib
    return None


@dataclass
class Client:
    id: int
    ctx: dict[bytes, VV] = field(default_factory=dict)
    seq: int = 0
    current: Op | None = None
    idle: bool = True
    scripted: bool = False


class OpType:
    """One kind of client operation. Subclass, set `name`/`writes`, implement `begin`."""

    name = ""
    writes = False
    data = True  # a write of a value (False: a delete, which writes a tombstone)

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        """Start the operation on `node` (runs as that node's event); answer through
        `w.respond(client, op, result_status, error, **fields)` from a node callback."""
        raise NotImplementedError

    def received(self, w: Workload, client: Client, op: Op) -> None:
        """The client got the answer (op fields are set): update client-side state."""


OP_TYPES: dict[str, OpType] = {}


def register(t: OpType) -> OpType:
    OP_TYPES[t.name] = t
    return t


def _write_answer(w: Workload, client: Client, op: Op) -> Callable[[Result], None]:
    def cb(result: Result) -> None:
        err, obj = result
        if err is not None:
            w.respond(client, op, ERR, err)
            return
        fields: dict[str, Any] = {}
        got = new_dot(obj) if obj is not None else None
        if got is None:
            fields["anomaly"] = "acknowledged write without a new version in its result"
        else:
            fields["dot"], fields["sibling"] = got
            if got[1][2] != op.value:
                fields["anomaly"] = (f"acknowledged write's newest sibling is "
                                     f"{got[1][2]!r}, not the value written")
        w.respond(client, op, OK, None, **fields)

    return cb


class Get(OpType):
    name = "GET"

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        def cb(result: tuple) -> None:
            err, sib = result
            if err is not None:
                w.respond(client, op, ERR, err)
                return
            w.respond(client, op, OK, None, read=sib[2] if sib else None)

        node.get_value(op.key, cb)  # as the GET command reads


class GetCtx(OpType):
    name = "GETCTX"

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        def cb(result: Result) -> None:
            err, obj = result
            if err is not None:
                w.respond(client, op, ERR, err)
                return
            ctx = dvv.join(obj) if obj is not None else ()
            vals = [s[2] for s in objmod.live_siblings(obj, node.now)]
            w.respond(client, op, OK, None, read=(ctx, vals))

        node.get(op.key, cb)

    def received(self, w: Workload, client: Client, op: Op) -> None:
        if op.status == OK:
            client.ctx[op.key] = op.read[0]


class Set(OpType):
    name = "SET"
    writes = True

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        op.wrote = True
        node.put(op.key, None, op.value, 0, _write_answer(w, client, op))


class SetCtx(OpType):
    name = "SETCTX"
    writes = True

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        op.ctx = client.ctx.get(op.key, ())
        op.wrote = True
        node.put(op.key, op.ctx, op.value, 0, _write_answer(w, client, op))


class Del(OpType):
    name = "DEL"
    writes = True
    data = False

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        def read(result: Result) -> None:
            err, obj = result
            if err is not None:
                w.respond(client, op, ERR, err)
                return
            if objmod.read_value(obj, node.now) is None:
                w.respond(client, op, OK, None)  # nothing to delete: no write
                return
            op.ctx = dvv.join(obj)
            op.wrote = True
            node.put(op.key, op.ctx, None, 0, _write_answer(w, client, op))

        node.get(op.key, read)


class DelCtx(OpType):
    name = "DELCTX"
    writes = True
    data = False

    def begin(self, w: Workload, client: Client, op: Op, node: Node) -> None:
        op.ctx = client.ctx.get(op.key, ())
        op.wrote = True
        node.put(op.key, op.ctx, None, 0, _write_answer(w, client, op))


for _t in (Get(), GetCtx(), Set(), SetCtx(), Del(), DelCtx()):
    register(_t)

DEFAULT_MIX = {"GET": 15, "GETCTX": 25, "SET": 20, "SETCTX": 25, "DEL": 5, "DELCTX": 10}


class Workload:
    """Clients issuing operations through random nodes of `sim`, until `stop`."""

    def __init__(
        self,
        sim: SimCluster,
        rng: random.Random,
        *,
        clients: int = 3,
        keys: list[bytes] | None = None,
        mix: dict[str, float] | None = None,
        think_ms: tuple[float, float] = (0.0, 30.0),
        client_latency_ms: tuple[float, float] = (0.2, 1.0),
        client_timeout_ms: float = 5000.0,
    ) -> None:
        self.sim = sim
        self.rng = rng
        self.keys = keys or [b"key%d" % i for i in range(4)]
        mix = mix or DEFAULT_MIX
        self.kinds = [k for k in mix if mix[k] > 0]
        self.weights = [mix[k] for k in self.kinds]
        for k in self.kinds:
            if k not in OP_TYPES:
                raise ValueError(f"unknown operation type {k}")
        self.think_ms = think_ms
        self.client_latency_ms = client_latency_ms
        self.client_timeout_ms = client_timeout_ms
        self.clients = [Client(i + 1) for i in range(clients)]
        self.ops: list[Op] = []
        self.stopped = False
        self.paused = False

    # --- control ------------------------------------------------------------------------

    def start(self) -> None:
        for c in self.clients:
            if c.scripted:
                continue
            self.sim.after(self.rng.random() * self.think_ms[1], self._issue, c)
            c.idle = False

    def stop(self) -> None:
        """No new operations; those in flight finish (or time out on the client)."""
        self.stopped = True

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        for c in self.clients:
            if c.idle and not c.scripted and not self.stopped:
                c.idle = False
                self.sim.after(self.rng.random() * self.think_ms[1], self._issue, c)

    def in_flight(self) -> int:
        return sum(1 for c in self.clients if c.current is not None)

    # --- the client loop ------------------------------------------------------------------

    def _latency(self) -> float:
        lo, hi = self.client_latency_ms
        return lo + (hi - lo) * self.rng.random()

    def _issue(self, client: Client) -> None:
        if self.stopped or self.paused:
            client.idle = True
            return
        rng = self.rng
        kind = rng.choices(self.kinds, self.weights)[0]
        self._launch(client, kind, rng.choice(self.keys), rng.choice(self.sim.names))

    def script(self, at: float, client: int, kind: str, key: bytes, via: str) -> None:
        """Schedule one given operation at sim time `at` (for scripted scenarios: a
        scripted client does nothing else, so do not `start` the random loop for it)."""
        c = self.clients[client - 1]
        c.scripted = True
        self.sim.at(at, self._launch, c, kind, key, via)

    def _launch(self, client: Client, kind: str, key: bytes, via: str) -> None:
        t = OP_TYPES[kind]
        op = Op(len(self.ops) + 1, client.id, kind, key, via, self.sim.now, writes=t.writes)
        if t.writes and t.data:
            client.seq += 1
            op.value = b"c%d-%d" % (client.id, client.seq)
        self.ops.append(op)
        client.current = op
        self.sim.after(self._latency(), self._arrive, client, op)
        self.sim.after(self.client_timeout_ms, self._give_up, client, op)

    def _arrive(self, client: Client, op: Op) -> None:
        t = OP_TYPES[op.kind]
        self.sim.note(f"start {op.describe(self.sim.short)}")
        if not self.sim.on_node(op.node, lambda node: t.begin(self, client, op, node)):
            self.sim.after(self._latency(), self._complete, client, op, REFUSED,
                           "connection refused", {})

    def respond(self, client: Client, op: Op, status: str, error: str | None,
                **fields: Any) -> None:
        """The node answered: the reply reaches the client after the link latency."""
        self.sim.after(self._latency(), self._complete, client, op, status, error, fields)

    def _complete(self, client: Client, op: Op, status: str, error: str | None,
                  fields: dict[str, Any]) -> None:
        if op.status != PENDING:
            op.late = status
            return
        op.status = status
        op.error = error
        op.end = self.sim.now
        for name, value in fields.items():
            setattr(op, name, value)
        OP_TYPES[op.kind].received(self, client, op)
        self.sim.note(f"end   {op.describe(self.sim.short)}")
        self._next(client)

    def _give_up(self, client: Client, op: Op) -> None:
        if op.status != PENDING:
            return
        op.status = TIMEOUT
        op.end = self.sim.now
        self.sim.note(f"end   {op.describe(self.sim.short)}")
        self._next(client)

    def _next(self, client: Client) -> None:
        client.current = None
        if client.scripted:
            return
        lo, hi = self.think_ms
        self.sim.after(lo + (hi - lo) * self.rng.random(), self._issue, client)

    # --- what the checker needs ---------------------------------------------------------------

    def written_data(self) -> set[bytes]:
        """Every data value handed to a coordinator, acknowledged or not."""
        return {op.value for op in self.ops if op.wrote and op.value is not None}

    def acked_writes(self) -> list[Op]:
        return [op for op in self.ops if op.acked]

    def reads(self) -> list[Op]:
        return [op for op in self.ops if op.status == OK and op.kind in ("GET", "GETCTX")]

    def written_keys(self) -> list[bytes]:
        return sorted({op.key for op in self.ops if op.wrote})
