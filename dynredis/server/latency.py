"""Where a request's time goes: a sampled latency breakdown (DYN.LATENCY, bench/latency.py).

Off by default, and then it costs one `is None` test at each place it would stamp.
On (`--latency-trace K`, or DYN.LATENCY ON K), it follows the requests whose request id
is a multiple of K, on both sides of the wire: the coordinator stamps when the bytes
were read, when the command was dispatched, when its peer messages left, when each
replica's answer was read, when the quorum was met and when the reply was written; a
replica stamps the same requests (same rule on the coordinator's request id) when their
message was read, handled (applied or looked up), committed (fsync durability: the
group commit before the answer leaves) and its answer sent. All stamps are
`time.monotonic_ns()`, one clock for every process of a host, so bench/latency.py joins
a coordinator's records with its replicas' into one timeline per request.

Beside the requests, as histograms of their own: event-loop lag (how late a timer
runs: the turn it waited behind), the duration of each kind of loop work (a client's
read, a peer's read, the end-of-turn flush, the tick, the group commit, a turn of a
reply written over turns, a script's call or reply) and garbage collector pauses by
generation (gc.callbacks).

The clock is read here and in the server only; the core stays pure (it never sees any
of this).
"""

from __future__ import annotations

import asyncio
import gc
import time
from array import array
from collections import deque
from typing import Any

from ..core.messages import PUT_FIELDS, REPLICA_GET, REPLICA_PUTS

# Completed records (and samples per histogram) kept: the latest ones.
KEEP = 100_000
# Records still waiting (a request whose reply never comes: its connection closed):
# the oldest are forgotten past this many.
OPEN_MAX = 20_000
LAG_EVERY_S = 0.005  # the loop-lag probe's period

# A peer message (other than puts, gets and their acks) whose handling took this much
# CPU or more is noted under msg_<kind>_cpu: which kind a long peer_read spent on.
MSG_NOTED_NS = 1_000_000


class Sampled:
    """One coordinated request followed from its read to its reply."""

    __slots__ = ("kind", "reqid", "conn", "slot", "read", "dispatch", "sent", "acks",
                 "quorum", "ordered", "written")

    def __init__(self, kind: str, reqid: int, conn: Any, slot: Any, read: int,
                 dispatch: int) -> None:
        self.kind = kind
        self.reqid = reqid
        self.conn = conn
        self.slot = slot
        self.read = read
        self.dispatch = dispatch
        self.sent = 0
        self.acks: list[tuple[str, int]] = []  # (replica, when its answer was read)
        self.quorum = 0
        self.ordered = 0  # its reply's turn came (the replies before it were in)
        self.written = 0

    def fields(self, names: Names) -> list[int]:
        """The record as ROW_FIELDS integers (its first two answers)."""
        acks = self.acks[:2]
        row = [names.index(self.kind), self.reqid, self.read, self.dispatch, self.sent,
               self.quorum, self.written, len(acks)]
        for peer, when in acks:
            row += (names.index(peer), when)
        row += [0] * (ROW_FIELDS - 1 - len(row))
        row.append(self.ordered)
        return row


class ReplicaSampled:
    """A sampled request as one of its replicas saw it."""

    __slots__ = ("src", "reqid", "kind", "read", "handled", "committed", "sent")

    def __init__(self, src: str, reqid: int, kind: str, read: int, handled: int) -> None:
        self.src = src
        self.reqid = reqid
        self.kind = kind
        self.read = read
        self.handled = handled
        self.committed = 0
        self.sent = 0

    def fields(self, names: Names) -> list[int]:
        return [names.index(self.src), self.reqid, names.index(self.kind), self.read,
                self.handled, self.committed, self.sent]


# kind reqid read dispatch sent quorum written acks (peer when) x 2, ordered
ROW_FIELDS = 13
REPLICA_FIELDS = 7  # src reqid kind read handled committed sent


class Names:
    """The strings records name (peers, kinds), as small integers."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: dict[str, int] = {}

    def index(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i


class Records:
    """Completed records as rows of `width` integers in one flat array: kept records
    are no objects the garbage collector tracks (a list per record would make the trace
    itself trigger collections, whose pauses it would then report)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.data = array("q")

    def add(self, row: list[int]) -> None:
        data = self.data
        data.extend(row)
        if len(data) > 2 * KEEP * self.width:
            del data[:KEEP * self.width]  # the oldest half goes

    def __len__(self) -> int:
        return len(self.data) // self.width

    def rows(self) -> list[list[int]]:
        w = self.width
        d = self.data
        return [d[i:i + w].tolist() for i in range(0, len(d), w)]

    def clear(self) -> None:
        self.data = array("q")


# The coordinator's stages of a request, as (name, from stamp, to stamp); and the
# replica's.
STAGES = (
    ("queued", "read", "dispatch"),  # in the connection's buffer: window, gate, turn
    ("to_peers", "dispatch", "sent"),  # run, then waiting for the turn's peer batch
    ("replica_rtt", "sent", "ack"),  # to the replica and back (its share: replica_*)
    ("to_quorum", "ack", "quorum"),  # the answer read, the rest of its batch handled
    ("in_order", "quorum", "ordered"),  # the pipeline's earlier replies still missing
    ("flush", "ordered", "written"),  # the rest of the loop turn, to the client write
    ("total", "read", "written"),
)
REPLICA_STAGES = (
    ("replica_in_batch", "read", "handled"),  # the frame's earlier messages
    ("replica_to_ack", "handled", "sent"),  # (commit in fsync mode) to the answer's send
)


def queued_ns() -> int:
    """How long (ns) this thread has waited, runnable, for a CPU (Linux schedstat; 0
    where there is none)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def percentile(ordered: list[int], fraction: float) -> int:
    """The value at `fraction` of an ascending list (nearest rank); 0 if empty."""
    if not ordered:
        return 0
    i = min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[i]


def summary(name: str, values: list[int]) -> list[Any]:
    """[name, count, p50, p99, p99.9, max] of `values` (µs)."""
    ordered = sorted(values)
    return [name, len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.99),
            percentile(ordered, 0.999), ordered[-1] if ordered else 0]


def stage_values(row: list[int]) -> dict[str, int]:
    """A completed coordinator record's stage durations (µs); its first answer is the
    one that counts (W=2, R=2: the coordinator's own copy and one replica's)."""
    _kind, _reqid, read, dispatch, sent, quorum, written, nacks = row[:8]
    ack = min(row[9:9 + 2 * nacks:2], default=quorum)
    stamps = {"read": read, "dispatch": dispatch, "sent": sent or dispatch, "ack": ack,
              "quorum": quorum or written, "ordered": row[12] or written,
              "written": written}
    return {name: max(0, stamps[b] - stamps[a]) // 1000 for name, a, b in STAGES}


class LatencyTrace:
    """The sampled records and histograms of one node (see the module docstring)."""

    def __init__(self, every: int, name: str = "") -> None:
        self.every = max(1, every)
        self.name = name
        self.open: dict[int, Sampled] = {}
        self.unsent: list[Sampled] = []
        self.awaiting: list[Sampled] = []  # sent, quorum not yet met
        self.blocked: list[Sampled] = []  # quorum met, an earlier reply still missing
        self.replica_open: list[ReplicaSampled] = []
        self.names = Names()
        self.requests = Records(ROW_FIELDS)
        self.replica = Records(REPLICA_FIELDS)
        self.hists: dict[str, deque[int]] = {}
        self.peer_read = 0  # when the peer read being handled was read
        self._gc_started = 0
        self._gc_cpu = 0
        self._lag_due = 0.0
        self._begun: dict[int, tuple[int, int]] = {}  # `begin`'s starts: (cpu, queued) ns
        self._lag_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- on and off ------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Install the GC callback and the loop-lag probe."""
        if self._gc_callback not in gc.callbacks:
            gc.callbacks.append(self._gc_callback)
        self._loop = loop
        if loop is not None and self._lag_timer is None:
            self._lag_due = time.monotonic() + LAG_EVERY_S
            self._lag_timer = loop.call_later(LAG_EVERY_S, self._lag_probe)

    def stop(self) -> None:
        if self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None
        for s in self.open.values():
            if s.conn is not None:
                s.conn.traced = None
        self.open.clear()

    def reset(self) -> None:
        self.requests.clear()
        self.replica.clear()
        self.hists.clear()

    # --- histograms ------------------------------------------------------------------

    def note(self, name: str, us: int) -> None:
        h = self.hists.get(name)
        if h is None:
            h = self.hists[name] = deque(maxlen=KEEP)
        h.append(us)

    def begin(self) -> int:
        """The start of a piece of loop work (monotonic ns, for `took`), with the main
        thread's CPU time and run-queue wait then."""
        started = time.monotonic_ns()
        begun = self._begun
        if len(begun) >= 64:
            begun.clear()  # starts never ended by a `took` (an exception on the way)
        begun[started] = (time.thread_time_ns(), queued_ns())
        return started

    def took(self, name: str, started: int) -> None:
        """Record the time since `started` (monotonic ns) under `name`; if `begin` gave
        `started`, also the CPU the thread spent meanwhile (`name`_cpu) and the time it
        waited, runnable, for a CPU (`name`_queued): a long piece of work whose CPU is
        short was the machine's doing (or a wait on a lock), not the node's."""
        self.note(name, (time.monotonic_ns() - started) // 1000)
        at = self._begun.get(started)
        if at is not None:
            self.note(name + "_cpu", (time.thread_time_ns() - at[0]) // 1000)
            self.note(name + "_queued", (queued_ns() - at[1]) // 1000)

    def _gc_callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.monotonic_ns()
            self._gc_cpu = time.thread_time_ns()
        elif self._gc_started:
            gen = info.get("generation", 0)
            self.note(f"gc_gen{gen}", (time.monotonic_ns() - self._gc_started) // 1000)
            self.note(f"gc_gen{gen}_cpu", (time.thread_time_ns() - self._gc_cpu) // 1000)
            self.note(f"gc_gen{gen}_collected", info.get("collected", 0))
            self._gc_started = 0

    def _lag_probe(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = time.monotonic()  # (the loop's own clock may count whole milliseconds)
        self.note("loop_lag", int(max(0.0, now - self._lag_due) * 1e6))
        self._lag_due = now + LAG_EVERY_S
        self._lag_timer = loop.call_later(LAG_EVERY_S, self._lag_probe)

    # --- the coordinator's stamps ----------------------------------------------------

    def dispatched(self, conn: Any, args: list[bytes], reqid_before: int, reqid_after: int,
                   waiting_before: int, started: int) -> None:
        """A command ran: follow it if it started exactly one request whose id is
        sampled and its reply waits in a slot."""
        if reqid_after != reqid_before + 1 or reqid_after % self.every:
            return
        waiting = conn.waiting
        if len(waiting) <= waiting_before:
            return  # answered at once (an error, a local reply)
        s = Sampled(args[0].decode("ascii", "replace").upper(), reqid_after, conn,
                    waiting[waiting_before], conn.read_ns or started, started)
        opened = self.open
        if len(opened) >= OPEN_MAX:
            old = opened.pop(next(iter(opened)))
            if old.conn is not None and old.conn.traced:
                old.conn.traced.remove(old)
        opened[reqid_after] = s
        self.unsent.append(s)
        if conn.traced is None:
            conn.traced = [s]
        else:
            conn.traced.append(s)

    def sent(self) -> None:
        """The turn's peer messages were handed to the links."""
        now = time.monotonic_ns()
        if self.unsent:
            for s in self.unsent:
                s.sent = now
            self.awaiting.extend(self.unsent)
            self.unsent = []
        if self.replica_open:
            for r in self.replica_open:
                r.sent = now
                self.replica.add(r.fields(self.names))
            self.replica_open = []

    def committed(self) -> None:
        """The staged writes were committed before the answers leave (fsync mode)."""
        now = time.monotonic_ns()
        for r in self.replica_open:
            if not r.committed:
                r.committed = now

    def on_peer_message(self, node: Any, src: str, msg: tuple) -> None:
        """Hand `msg` to the node, stamping what it answers or asks for."""
        kind = msg[0]
        if kind == "pas" or kind == "gas":
            opened = self.open
            items = msg[1]
            step = 1 if kind == "pas" else 2
            for i in range(0, len(items), step):
                s = opened.get(items[i])
                if s is not None:
                    s.acks.append((src, self.peer_read))
            node.on_message(src, msg)
        elif kind == REPLICA_PUTS:
            node.on_message(src, msg)
            handled = time.monotonic_ns()
            items = msg[1]
            for i in range(0, len(items), PUT_FIELDS):
                if not items[i] % self.every:
                    self.replica_open.append(
                        ReplicaSampled(src, items[i], kind, self.peer_read, handled))
        elif kind == REPLICA_GET and not msg[1] % self.every:
            node.on_message(src, msg)
            self.replica_open.append(
                ReplicaSampled(src, msg[1], kind, self.peer_read, time.monotonic_ns()))
        else:
            cpu = time.thread_time_ns()
            node.on_message(src, msg)
            cpu = time.thread_time_ns() - cpu
            if cpu >= MSG_NOTED_NS:  # (which kind of message a long peer_read spent on)
                self.note(f"msg_{kind}_cpu", cpu // 1000)

    def peer_event_done(self) -> None:
        """A peer's read was handled and settled: the requests it completed met their
        quorum now."""
        awaiting = self.awaiting
        blocked = self.blocked
        if not awaiting and not blocked:
            return
        now = time.monotonic_ns()
        if blocked:
            self.blocked = blocked = [s for s in blocked if not self._in_order(s, now)]
        still = []
        for s in awaiting:
            if s.slot.data is not None:
                s.quorum = now
                if not self._in_order(s, now):
                    blocked.append(s)
            elif s.conn.transport is not None:
                still.append(s)
            else:
                self.open.pop(s.reqid, None)
        self.awaiting = still

    @staticmethod
    def _in_order(s: Sampled, now: int) -> bool:
        """Whether `s`'s reply left the connection's waiting slots (stamped now)."""
        conn = s.conn
        if conn is None or s.slot not in conn.waiting:
            if not s.ordered:
                s.ordered = now
            return True
        return False

    def written(self, conn: Any) -> None:
        """`conn`'s replies so far were written: its sampled requests whose reply left
        are complete."""
        traced = conn.traced
        waiting = conn.waiting
        now = time.monotonic_ns()
        left = []
        for s in traced:
            if s.slot.data is not None and s.slot not in waiting:
                s.written = now
                if not s.quorum:  # met by the coordinator alone, or in a client event
                    s.quorum = now
                    if s in self.awaiting:
                        self.awaiting.remove(s)
                if not s.ordered:
                    s.ordered = now
                    if s in self.blocked:
                        self.blocked.remove(s)
                if s in self.unsent:
                    self.unsent.remove(s)
                self.open.pop(s.reqid, None)
                s.conn = None
                s.slot = None
                self.requests.add(s.fields(self.names))
            else:
                left.append(s)
        conn.traced = left or None

    # --- what DYN.LATENCY answers ----------------------------------------------------

    def stages(self) -> list[list[Any]]:
        """[stage, count, p50, p99, p99.9, max] (µs) of this node's records and
        histograms: the coordinator's stages, the replica's, then the loop's."""
        coord: dict[str, list[int]] = {name: [] for name, _, _ in STAGES}
        for row in self.requests.rows():
            for name, us in stage_values(row).items():
                coord[name].append(us)
        out = [summary(name, values) for name, values in coord.items()]
        rep: dict[str, list[int]] = {name: [] for name, _, _ in REPLICA_STAGES}
        for _src, _reqid, _kind, read, handled, _committed, sent in self.replica.rows():
            rep["replica_in_batch"].append(max(0, handled - read) // 1000)
            rep["replica_to_ack"].append(max(0, sent - handled) // 1000)
        out += [summary(name, values) for name, values in rep.items()]
        out += [summary(name, list(h)) for name, h in sorted(self.hists.items())]
        return out

    def dump(self) -> dict[str, Any]:
        """Everything recorded, for bench/latency.py (JSON)."""
        return {"node": self.name, "every": self.every, "now_ns": time.monotonic_ns(),
                "names": self.names.names, "requests": self.requests.rows(),
                "replica": self.replica.rows(),
                "hists": {k: list(v) for k, v in self.hists.items()},
                "gc": {"stats": gc.get_stats(), "count": gc.get_count(),
                       "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}}
