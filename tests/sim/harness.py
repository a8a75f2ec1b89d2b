"""A deterministic in-process cluster: real `core.Node`s over a simulated network and clock.

Everything random comes from one `random.Random(seed)`, and events are totally ordered
(time, then a sequence number), so a seed reproduces a run exactly, in any process
(outboxes are drained in sorted peer order, so set iteration order inside the node does
not leak into the schedule).

What is simulated:

- Network (`NetConfig`): each message gets its own latency (uniform base, an optional
  exponential slow tail, an optional extra delay that reorders it behind later messages);
  messages can be lost or duplicated. Links can be cut one way (`cut(a, b)`: a's messages
  to b are dropped) or both ways (`partition`). A message is dropped if its link is cut
  when it is sent or when it would arrive; the kinds in `drop_kinds` are always lost,
  those in `deliver_twice` handed over twice. Every message goes through the real wire
  encoding (`server.wire`), so the node sees exactly the types it would over TCP.
- Connections: a message is addressed to one incarnation of its destination, as a TCP
  connection is: if the destination crashed (or crashed and restarted) meanwhile, the
  message is dropped. When a node crashes its peers are told `peer_down` a moment later
  (their connections break) and `peer_up` once it is back; partitions are silent (only
  the failure detector notices them).
- Crash-restart (`crash`/`restart`): the `Node` object is thrown away and a new one is
  built over the same engine, as the server does at start (`core.driver.boot`: actor id
  and ring from the engine's metadata). Each node has a durability mode, as `server.app`: `fsync` commits
  before any message or reply leaves the node (end of every event), `buffered` and
  `none` commit on a group-commit timer (5 ms, 100 ms). `SimEngine` keeps an undo log
  of what was staged since the last commit and rolls it back on a crash, so a crash
  loses exactly the uncommitted writes. (Metadata writes are durable at once.)
- Pausing (`stop`/`start`): the node keeps its state but neither ticks nor exchanges
  messages (a frozen process or a cable pulled); used by the unit tests.
- Events end as the driver contract says (`core.driver`: settle, then release), the
  same functions the server uses.
- Node exceptions: with `strict` (the default) they propagate; otherwise they are
  recorded in `errors` (for the checker) and the run goes on, as the server logs them.
- Clocks: node i's `now` is sim time plus a fixed offset plus a linear drift (ppm).
- Ticks: every node ticks every `tick_ms` at its own phase.

`StoreLog` watches every object any engine stores, for the checker: which dot each
value got, the causal context (version vector) of the write that created it, dots that
two different values claim, and writes that made an object grow past `obj.SIBLING_MAX`
siblings (merges may pass it: they keep every sibling).

The trace keeps the last `trace_len` events as tuples and formats them only on demand.
"""

from __future__ import annotations

import heapq
import random
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from dynredis.commands.collection import run_forwarded
from dynredis.core import clock as dvv
from dynredis.core import driver, messages
from dynredis.core import obj as objmod
from dynredis.core.hints import HINT_PARTITION, parse_hint_key
from dynredis.core.node import Config, Node, Result
from dynredis.core.records import ELEM_BASE
from dynredis.core.ring import Ring, new_ring
from dynredis.server.wire import batch, unframe
from dynredis.storage.memory import MemoryEngine

DURABILITY_MODES = ("fsync", "buffered", "none")
# As server.app.COMMIT_INTERVAL_S, in ms; fsync commits at the end of every event instead.
COMMIT_INTERVAL_MS = {"buffered": 5.0, "none": 100.0}
T0 = 1_000_000.0  # sim time starts here (ms), so node clocks are never near zero


# --- storage -------------------------------------------------------------------------


class StoreLog:
    """What every engine of the cluster ever stored, reduced to what the checker needs."""

    def __init__(self) -> None:
        # (key, actor, counter) -> the sibling first seen with that dot
        self.dots: dict[tuple[bytes, bytes, int], tuple] = {}
        # key -> [(dot, sibling, version vector of the object it was created in, the dots
        #          of that object's siblings, node, sim time)], in creation order
        self.created: dict[bytes, list[tuple[tuple[bytes, int], tuple, dict, frozenset,
                                             str, float]]] = {}
        # first time each (key, dot) was seen naming a second version, with the trace then
        self.reused: list[tuple[float, str, bytes, tuple[bytes, int], tuple, tuple, str]] = []
        self._reuse_seen: set[tuple[bytes, bytes, int]] = set()
        self.oversized: list[tuple[float, str, bytes, int]] = []
        self.snapshot: Callable[[], str] = lambda: ""  # the trace tail, set by SimCluster
        self.deleted: dict[bytes, list[tuple[float, str]]] = {}  # key -> [(time, node)]
        self.anonymous: list[tuple[float, str, bytes]] = []
        self.max_siblings = 0
        self.stores = 0

    def on_put(self, node: str, now: float, p: int, key: bytes, enc: bytes,
               before: bytes | None = None) -> None:
        """`enc` stored over `before` (what the engine held for the key)."""
        self.stores += 1
        if p == HINT_PARTITION:
            _, p, key = parse_hint_key(key)
        if p >= ELEM_BASE:
            return  # a collection's records (checked by the collection simulations)
        obj = objmod.decode(enc)
        entries, anon = obj
        size = len(anon)
        for _, _, vals in entries:
            size += len(vals)
        if size > self.max_siblings:
            self.max_siblings = size
        created = False
        if anon:
            self.anonymous.append((now, node, key))
        vv: dict | None = None
        present: frozenset = frozenset()
        dots = self.dots
        for actor, n, vals in entries:
            for k, sib in enumerate(vals):
                d = (key, actor, n - k)
                old = dots.get(d)
                if old is None:
                    dots[d] = sib
                    created = True
                    if vv is None:
                        vv = dict(dvv.join(obj))
                        present = frozenset((a, m - i) for a, m, vs in entries
                                            for i in range(len(vs)))
                    self.created.setdefault(key, []).append(
                        ((actor, n - k), sib, vv, present, node, now))
                elif old != sib and d not in self._reuse_seen:
                    self._reuse_seen.add(d)
                    self.reused.append((now, node, key, (actor, n - k), old, sib,
                                        self.snapshot()))
        # A write (a new dot) may leave more than SIBLING_MAX siblings only if the
        # object it was made from held more already.
        if created and size > objmod.SIBLING_MAX and (
                before is None or size > dvv.size(objmod.decode(before))):
            self.oversized.append((now, node, key, size))


    def on_delete(self, node: str, now: float, key: bytes) -> None:
        """A replica removed a key from its store (the node does so only when reaping)."""
        self.deleted.setdefault(key, []).append((now, node))


class SimEngine:
    """A MemoryEngine whose uncommitted writes a crash can take back.

    Writes apply at once (reads see them), and the value each staged key had at the
    last commit is kept in an undo log; `commit` forgets the log, `crash` replays it.
    """

    name = "sim"

    def __init__(self, owner: str, sim: SimCluster | None = None) -> None:
        self.base = MemoryEngine()
        self.owner = owner
        self.sim = sim
        self.undo: dict[tuple[int, bytes], bytes | None] = {}
        self.commits = 0
        self.lost_on_crash = 0

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.base.get(partition, key)

    def get_head(self, partition: int, key: bytes, n: int) -> bytes | None:
        return self.base.get_head(partition, key, n)

    def read(self, partition: int, key: bytes, reader: Callable[[Any], Any]) -> Any:
        return self.base.read(partition, key, reader)

    def pin(self, partition: int, key: bytes) -> Any:
        return self.base.pin(partition, key)

    def staged(self, partition: int, key: bytes) -> bool:
        """True while a write to the key is not committed (a crash would undo it)."""
        return (partition, key) in self.undo

    def _stage(self, partition: int, key: bytes) -> None:
        k = (partition, key)
        if k not in self.undo:
            self.undo[k] = self.base.get(partition, key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self._stage(partition, key)
        sim = self.sim
        before = self.base.get(partition, key) if sim is not None and sim.log else None
        self.base.put(partition, key, value)
        if sim is not None and sim.log is not None:
            sim.log.on_put(self.owner, sim.now, partition, key, value, before)

    def delete(self, partition: int, key: bytes) -> None:
        self._stage(partition, key)
        self.base.delete(partition, key)
        sim = self.sim
        if sim is not None and sim.log is not None and partition != HINT_PARTITION:
            sim.log.on_delete(self.owner, sim.now, key)

    def scan(self, partition: int, head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        return self.base.scan(partition, head)

    def scan_prefix(self, partition: int, key_prefix: bytes,
                    head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        return self.base.scan_prefix(partition, key_prefix, head)

    def partitions(self) -> list[int]:
        return self.base.partitions()

    def wipe(self, bury: Callable[[Any], None] | None = None) -> None:
        for p in self.base.partitions():
            for key, _ in list(self.base.scan(p)):
                self._stage(p, key)
        self.base.wipe(bury)

    def pending(self) -> int:
        return len(self.undo)

    def commit(self, sync: bool = True, wait: bool = True) -> None:
        if self.undo:
            self.undo.clear()
            self.commits += 1

    def crash(self) -> int:
        """Lose everything staged since the last commit; returns how many keys reverted."""
        lost = len(self.undo)
        for (p, key), old in self.undo.items():
            if old is None:
                self.base.delete(p, key)
            else:
                self.base.put(p, key, old)
        self.undo.clear()
        self.lost_on_crash += lost
        return lost

    def meta_get(self, name: str) -> bytes | None:
        return self.base.meta_get(name)

    def meta_put(self, name: str, value: bytes) -> None:
        self.base.meta_put(name, value)  # durable at once, as the real engines do

    def close(self) -> None:
        self.commit(True)


# --- network -------------------------------------------------------------------------


@dataclass
class NetConfig:
    latency_ms: tuple[float, float] = (1.0, 5.0)  # uniform base latency
    slow_p: float = 0.0  # chance of an extra exponential delay ...
    slow_mean_ms: float = 40.0  # ... with this mean
    reorder_p: float = 0.0  # chance of an extra uniform delay up to reorder_ms
    reorder_ms: float = 30.0
    dup_p: float = 0.0  # chance a message is delivered twice (independent latencies)
    loss_p: float = 0.0  # chance a message is dropped

    def reliable(self) -> NetConfig:
        """The same latencies without loss or duplication."""
        return replace(self, dup_p=0.0, loss_p=0.0)


# event kinds in the queue: (at, seq, kind, a, b, c, d)
_MSG, _TICK, _COMMIT, _CALL = 0, 1, 2, 3


@dataclass
class SimNode:
    name: str
    index: int
    engine: SimEngine
    config: Config
    durability: str = "fsync"
    offset_ms: float = 0.0
    drift: float = 0.0  # fraction, e.g. 100e-6 for 100 ppm
    phase_ms: float = 0.0
    node: Node | None = None
    incarnation: int = 0
    up: bool = True  # False between crash and restart
    paused: bool = False
    crashes: int = 0
    stats: list = field(default_factory=list)  # Stats of earlier incarnations


class SimCluster:
    """N real nodes, a simulated network, per-node clocks, crashes and partitions."""

    def __init__(
        self,
        n_nodes: int = 3,
        seed: int = 0,
        config: Config | None = None,
        latency: tuple[float, float] = (1, 5),
        preformed: bool = True,
        *,
        rng: random.Random | None = None,
        net: NetConfig | None = None,
        tick_ms: float = 10.0,
        durability: str | list[str] = "fsync",
        skew_ms: list[float] | None = None,
        drift_ppm: list[float] | None = None,
        trace_len: int = 200,
        log_stores: bool = True,
        link_events: bool = True,
        strict: bool = True,
        zones: list[str] | None = None,
        spares: int = 0,
        sliced_walks: bool = False,
    ) -> None:
        self.seed = seed
        # Walk collection records a slice per event, as the server does between
        # clients (collstrip.py); otherwise each walk runs at once.
        self.sliced_walks = sliced_walks
        self.rng = rng or random.Random(seed)
        self.now = T0
        self.net = net or NetConfig(latency_ms=latency)
        self.tick_ms = tick_ms
        self.link_events = link_events
        self.strict = strict  # re-raise node exceptions (False: record them and go on)
        self.names = [f"10.0.0.{i + 1}:7000" for i in range(n_nodes)]
        # The last `spares` nodes start outside the cluster, alone and without seeds
        # (they join by a membership change); nodes that left or were removed stay down.
        self.spares = set(self.names[n_nodes - spares:]) if spares else set()
        self.departed: set[str] = set()
        self.queue: list[tuple] = []
        self.seq = 0
        self.cut: set[tuple[str, str]] = set()
        # Message kinds handed to their receiver twice in a row (a targeted duplicate).
        self.deliver_twice: set[str] = set()
        # Message kinds dropped whenever sent (a targeted loss).
        self.drop_kinds: set[str] = set()
        self.trace: deque[tuple] = deque(maxlen=trace_len)
        self.log: StoreLog | None = StoreLog() if log_stores else None
        if self.log is not None:
            self.log.snapshot = lambda: self.format_trace(last=20)
        self.msgs_sent = 0
        self.msgs_delivered = 0
        self.events = 0
        self.errors: list[tuple[float, str, str, str]] = []
        base = config or Config()
        founders = [x for x in self.names if x not in self.spares]
        ring = new_ring(founders, base.q) if preformed else None
        modes = [durability] * n_nodes if isinstance(durability, str) else list(durability)
        self.sn: dict[str, SimNode] = {}
        for i, name in enumerate(self.names):
            sn = SimNode(
                name, i, SimEngine(name, self),
                replace(base, zone=zones[i]) if zones else replace(base),
                durability=modes[i],
                offset_ms=(skew_ms[i] if skew_ms else 0.0),
                drift=(drift_ppm[i] * 1e-6 if drift_ppm else 0.0),
                phase_ms=self.rng.random() * tick_ms,
            )
            if sn.durability not in DURABILITY_MODES:
                raise ValueError(f"unknown durability {sn.durability}")
            sn.engine.meta_put("actor", f"actor{i}".encode())
            sn.engine.meta_put("clean_shutdown", b"1")  # a new node, not a crashed one
            if ring is not None and name not in self.spares:
                driver.save_membership(sn.engine, ring, set(founders))
            self.sn[name] = sn
            self._boot(sn, seeds=() if preformed else (self.names[0],))

    # --- nodes -------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, Node]:
        """The live Node objects (a crashed node has none)."""
        return {name: sn.node for name, sn in self.sn.items() if sn.node is not None}

    def node_now(self, sn: SimNode) -> int:
        return int(self.now + sn.offset_ms + sn.drift * (self.now - T0))

    def _boot(self, sn: SimNode, seeds: tuple[str, ...] = ()) -> None:
        """Start a node over its engine, as `server.app.NodeServer` does."""
        # The server's start (core/driver.py): a crash in a lossy durability mode, or a
        # new data directory, means a fresh clock identity (core/identity.py).
        fresh = self.rng.getrandbits(64).to_bytes(8, "big")
        started = driver.boot(sn.engine, sn.durability, fresh)
        if not seeds and not (sn.name in self.spares and started.ring is None):
            seeds = tuple(self.names[:1])
        node = Node(sn.name, started.actor, sn.engine, replace(sn.config), ring=started.ring,
                    members=started.members, seeds=seeds,
                    rng=random.Random(self.rng.random()))
        node.now = self.node_now(sn)
        # Collection commands forwarded to this node are rebuilt as the server does.
        node.coll.remote = lambda payload, answer: run_forwarded(node, payload, answer)
        sn.node = node
        sn.up = True
        sn.incarnation += 1
        if self.sliced_walks:
            node.coll.store.wake = lambda sn=sn, inc=sn.incarnation: self.after(
                0.01, self._walk_step, sn, inc)
            node.graveyard.wake = node.coll.store.wake
        self._push(self.now + sn.phase_ms, _TICK, sn.name, sn.incarnation)
        if sn.durability != "fsync":
            self._push(self.now + COMMIT_INTERVAL_MS[sn.durability], _COMMIT, sn.name,
                       sn.incarnation)
        self._flush(sn)

    def _walk_step(self, sn: SimNode, incarnation: int) -> None:
        """One slice of the node's collection walks, and the commands waiting on them
        (the server's `_walk_step`)."""
        if not sn.up or sn.incarnation != incarnation:
            return
        if sn.paused:
            self.after(self.tick_ms, self._walk_step, sn, incarnation)
            return
        node = sn.node
        assert node is not None
        node.now = self.node_now(sn)
        try:
            more = node.coll.step()
            more = node.graveyard.step() or more
        except Exception as exc:  # the server logs these and goes on
            self._error(sn, "walk", exc)
            more = False
        self._flush(sn)
        if more:
            self.after(0.01, self._walk_step, sn, incarnation)

    def crash(self, name: str) -> int:
        """Kill a node: its Node object is gone, uncommitted writes are lost."""
        sn = self.sn[name]
        if not sn.up:
            return 0
        assert sn.node is not None
        sn.stats.append(sn.node.stats)
        sn.node = None
        sn.up = False
        sn.crashes += 1
        lost = sn.engine.crash()
        self._trace("crash", name, f"lost {lost} uncommitted")
        if self.link_events:
            for peer in self.names:
                if peer != name:
                    self.at(self.now + 1 + self.rng.random() * 5, self._link_event, peer, name,
                            False)
        return lost

    def depart(self, name: str) -> None:
        """Take a node out for good (it left, or is removed): down, never restarted."""
        self.departed.add(name)
        self.crash(name)
        self._trace("departed", name, "")

    def restart(self, name: str) -> None:
        sn = self.sn[name]
        if sn.up or name in self.departed:
            return
        self._boot(sn)
        self._trace("restart", name, f"incarnation {sn.incarnation}")
        if self.link_events:
            for peer in self.names:
                if peer != name:
                    self.at(self.now + 1 + self.rng.random() * 5, self._link_event, peer, name,
                            True)

    def _link_event(self, peer: str, about: str, up: bool) -> None:
        sn = self.sn[peer]
        if sn.node is None or sn.paused:
            return
        if up and not self.sn[about].up:
            return
        node = sn.node
        node.now = self.node_now(sn)
        if up:
            node.peer_up(about)
        else:
            node.peer_down(about)
        self._flush(sn)

    def stop(self, name: str) -> None:
        """Freeze a node (no ticks, no messages in or out); `start` resumes it as it was."""
        self.sn[name].paused = True
        self._trace("pause", name, "")

    def start(self, name: str) -> None:
        sn = self.sn[name]
        if sn.paused:
            sn.paused = False
            self._trace("resume", name, "")

    # --- network -------------------------------------------------------------------------

    def partition(self, a: str, b: str, both: bool = True) -> None:
        self.cut.add((a, b))
        if both:
            self.cut.add((b, a))
        self._trace("cut", a, b + ("" if both else " (one way)"))

    def cut_groups(self, side_a: list[str], side_b: list[str]) -> None:
        for a in side_a:
            for b in side_b:
                self.partition(a, b)

    def heal(self) -> None:
        self.cut.clear()
        self._trace("heal", "*", "")

    def _latency(self) -> float:
        net = self.net
        r = self.rng.random
        lo, hi = net.latency_ms
        lat = lo + (hi - lo) * r()
        if net.slow_p and r() < net.slow_p:
            lat += self.rng.expovariate(1.0 / net.slow_mean_ms)
        if net.reorder_p and r() < net.reorder_p:
            lat += r() * net.reorder_ms
        return lat

    def _send(self, src: str, dst: str, msg: tuple) -> None:
        self.msgs_sent += 1
        dsn = self.sn.get(dst)
        if dsn is None:
            return
        if (src, dst) in self.cut:
            self._trace("cut", src, dst, msg)
            return
        net = self.net
        if msg[0] in self.drop_kinds:
            self._trace("lost", src, dst, msg)
            return
        if net.loss_p and self.rng.random() < net.loss_p:
            self._trace("lost", src, dst, msg)
            return
        inc = dsn.incarnation if dsn.up else -1
        self._push(self.now + self._latency(), _MSG, src, dst, msg, inc)
        if net.dup_p and self.rng.random() < net.dup_p:
            self._push(self.now + self._latency(), _MSG, src, dst, msg, inc)
            self._trace("dup", src, dst, msg)

    def _deliver(self, src: str, dst: str, msg: tuple, inc: int) -> None:
        sn = self.sn[dst]
        if not sn.up or sn.incarnation != inc:
            self._trace("gone", src, dst, msg)
            return
        if sn.paused or self.sn[src].paused or (src, dst) in self.cut:
            self._trace("cut", src, dst, msg)
            return
        node = sn.node
        assert node is not None
        node.now = self.node_now(sn)
        self.msgs_delivered += 1
        self._trace(">", src, dst, msg)
        for _ in range(2 if msg[0] in self.deliver_twice else 1):
            try:
                node.on_message(src, msg)
            except Exception as exc:  # the server logs these and goes on
                self._error(sn, f"on_message {fmt_msg(msg, self.short)} from {self.short(src)}",
                            exc)
        self._flush(sn)

    def _flush(self, sn: SimNode) -> None:
        """End of a node's event: completions, commit (fsync), ring persistence, sends."""
        node = sn.node
        assert node is not None
        # The server logs a failed callback and goes on.
        driver.settle(node, lambda exc: self._error(sn, "completion callback", exc))
        box = driver.release(node, sn.engine, sn.durability == "fsync")
        name = sn.name
        if node.left and name not in self.departed:
            # The server stops a node that left (once its messages are out).
            self.at(self.now + 1, self.depart, name)
        for dst in sorted(box):
            # Round-trip through the real wire encoding, as the shell does.
            body = batch(box[dst])
            for msg in unframe(body[body.index(b"\r\n") + 2 : -2]):
                wrong = messages.check(msg)
                if wrong is not None:
                    self._error(sn, f"sent a malformed message: {wrong}",
                                ValueError(wrong))
                self._send(name, dst, msg)

    # --- the event loop -----------------------------------------------------------------

    def _push(self, at: float, kind: int, a: Any = None, b: Any = None, c: Any = None,
              d: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, a, b, c, d))

    def at(self, when: float, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` at sim time `when` (ms)."""
        self._push(max(when, self.now), _CALL, fn, args)

    def after(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self._push(self.now + delay, _CALL, fn, args)

    def run_until(self, end: float) -> None:
        queue = self.queue
        pop = heapq.heappop
        sns = self.sn
        while queue and queue[0][0] <= end:
            at, _, kind, a, b, c, d = pop(queue)
            if at > self.now:
                self.now = at
            self.events += 1
            if kind == _MSG:
                self._deliver(a, b, c, d)
            elif kind == _TICK:
                sn = sns[a]
                if not sn.up or sn.incarnation != b:
                    continue
                self._push(at + self.tick_ms, _TICK, a, b)
                if sn.paused:
                    continue
                node = sn.node
                node.now = self.node_now(sn)
                try:
                    node.tick()
                    while node.fold_step():  # (the server: a slice a loop turn)
                        pass
                except Exception as exc:  # the server logs these and goes on
                    self._error(sn, "tick", exc)
                self._flush(sn)
            elif kind == _COMMIT:
                sn = sns[a]
                if not sn.up or sn.incarnation != b:
                    continue
                if not sn.paused:
                    sn.engine.commit(sn.durability == "buffered")
                self._push(at + COMMIT_INTERVAL_MS[sn.durability], _COMMIT, a, b)
            else:
                a(*b)
        if end > self.now:
            self.now = end

    def run(self, ms: float) -> None:
        """Advance simulated time by `ms`."""
        self.run_until(self.now + ms)

    # --- running an operation on a node ---------------------------------------------------

    def on_node(self, name: str, fn: Callable[[Node], Any], catch: bool = True) -> bool:
        """Run `fn(node)` as an event of node `name` (False if it is down or paused).

        An exception is recorded as a node error (as the server logs a failed command)
        unless `catch` is False."""
        sn = self.sn[name]
        if not sn.up or sn.paused:
            return False
        node = sn.node
        assert node is not None
        node.now = self.node_now(sn)
        try:
            fn(node)
        except Exception as exc:
            if not catch:
                raise
            self._error(sn, "client request", exc)
        self._flush(sn)
        return True

    def call(self, via: str, op: str, *args: Any, wait_ms: int = 3000) -> Result:
        """Run one coordinator operation through node `via` and wait for its result."""
        box: list[Result] = []
        assert self.on_node(via, lambda node: getattr(node, op)(*args, box.append),
                            catch=False), via
        waited = 0
        while not box and waited < wait_ms:
            self.run(5)
            waited += 5
        assert box, f"{op} through {via} got no answer in {wait_ms} ms"
        return box[0]

    def get(self, via: str, key: bytes) -> Result:
        return self.call(via, "get", key)

    def put(self, via: str, key: bytes, value: bytes | None, ctx: Any = None,
            expire_at: int = 0) -> Result:
        return self.call(via, "put", key, ctx, value, expire_at)

    # --- inspection ----------------------------------------------------------------------

    def ring(self) -> Ring:
        rings = {sn.node.ring.version: sn.node.ring for sn in self.sn.values() if sn.node}
        assert len(rings) == 1, f"nodes disagree on the ring: {sorted(rings)}"
        return next(iter(rings.values()))

    def primaries(self, key: bytes) -> tuple[int, tuple[str, ...]]:
        ring = self.ring()
        p = ring.partition_of(key)
        n = next(iter(self.sn.values())).config.n
        return p, ring.preference_list(p, n)

    def stored(self, name: str, key: bytes) -> bytes | None:
        """What node `name`'s engine holds for `key` (its own replica, not hints)."""
        sn = self.sn[name]
        p = sn.node.ring.partition_of(key) if sn.node else self.ring().partition_of(key)
        return sn.engine.get(p, key)

    def hints_held(self) -> dict[str, int]:
        return {name: sum(1 for _ in sn.engine.scan(HINT_PARTITION))
                for name, sn in self.sn.items()}

    def all_stats(self, name: str) -> list:
        sn = self.sn[name]
        return sn.stats + ([sn.node.stats] if sn.node else [])

    def _error(self, sn: SimNode, what: str, exc: Exception) -> None:
        """A node raised while handling an event: recorded for the checker, run goes on."""
        tb = traceback.extract_tb(exc.__traceback__)
        where = " <- ".join(f"{f.name}:{f.lineno}" for f in reversed(tb[-4:]))
        text = f"{self.short(sn.name)} {what}: {type(exc).__name__}: {exc} [{where}]"
        self._trace("error", sn.name, "", text)
        self.errors.append((self.now, sn.name, text, self.format_trace(last=15)))
        if self.strict:
            raise exc

    # --- trace -----------------------------------------------------------------------------

    def _trace(self, tag: str, a: str, b: str, msg: Any = None) -> None:
        self.trace.append((self.now, tag, a, b, msg))

    def note(self, text: str) -> None:
        """Add a free-form line to the trace."""
        self.trace.append((self.now, "note", "", "", text))

    def short(self, name: str) -> str:
        return f"n{self.sn[name].index + 1}" if name in self.sn else name

    def format_trace(self, last: int | None = None, key: bytes | None = None) -> str:
        items = list(self.trace)
        if key is not None:
            items = [e for e in items if _mentions(e[4], key)]
        if last is not None:
            items = items[-last:]
        return "\n".join(self._fmt(e) for e in items)

    def _fmt(self, e: tuple) -> str:
        t, tag, a, b, msg = e
        when = f"{t - T0:10.1f}"
        if tag in ("note", "error"):
            return f"{when}  {'' if tag == 'note' else 'ERROR '}{msg}"
        if msg is None:
            return f"{when}  {tag:7} {self.short(a)} {b if tag != 'cut' else self.short(b)}"
        return f"{when}  {tag:7} {self.short(a)}->{self.short(b)} {fmt_msg(msg, self.short)}"


def _mentions(msg: Any, key: bytes) -> bool:
    if isinstance(msg, str):
        return f" {key.decode(errors='replace')} " in msg + " "
    if isinstance(msg, tuple):
        return key in msg[1:4]
    return False


def _short_value(x: Any, short: Callable[[str], str]) -> str:
    if isinstance(x, bytes):
        if len(x) <= 24 and all(32 <= c < 127 for c in x):
            return x.decode()
        return f"<{len(x)}B>"
    if isinstance(x, str):
        return short(x)
    if isinstance(x, tuple):
        return f"<{len(x)}-tuple>"
    return repr(x)


def fmt_msg(msg: tuple, short: Callable[[str], str] = str) -> str:
    """A peer message in a few words: its type and its short fields."""
    return " ".join([str(msg[0])] + [_short_value(x, short) for x in msg[1:]])
