"""A deterministic in-process cluster: real `core.Node`s, a simulated network and clock.

Messages travel through a queue with per-message delivery times drawn from a seeded
RNG, so a seed reproduces a run exactly. Links can be cut (one way or both) and nodes
stopped; messages to a cut link or a stopped node are lost.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from dynredis.core.node import Config, Node, Result
from dynredis.core.ring import new_ring
from dynredis.server.wire import batch, unframe
from dynredis.storage.memory import MemoryEngine


@dataclass(order=True)
class _Delivery:
    at: int
    seq: int
    src: str = field(compare=False)
    dst: str = field(compare=False)
    msg: tuple = field(compare=False)


class SimCluster:
    def __init__(self, n_nodes: int = 3, seed: int = 0, config: Config | None = None,
                 latency: tuple[int, int] = (1, 5), preformed: bool = True) -> None:
        self.rng = random.Random(seed)
        self.now = 1_000_000
        self.latency = latency
        self.names = [f"10.0.0.{i + 1}:7000" for i in range(n_nodes)]
        self.queue: list[_Delivery] = []
        self.seq = 0
        self.cut: set[tuple[str, str]] = set()
        self.stopped: set[str] = set()
        self.trace: list[str] = []
        ring = new_ring(self.names, (config or Config()).q) if preformed else None
        self.nodes: dict[str, Node] = {}
        for i, name in enumerate(self.names):
            cfg = Config(**vars(config)) if config else Config()
            self.nodes[name] = Node(
                name, f"actor{i}".encode(), MemoryEngine(), cfg,
                ring=ring, members=set(self.names) if preformed else None,
                seeds=() if preformed else (self.names[0],),
                rng=random.Random(self.rng.random()),
            )
            self.nodes[name].now = self.now

    # --- network ---------------------------------------------------------------------

    def _collect(self, name: str) -> None:
        node = self.nodes[name]
        while node.done:
            done, node.done = node.done, []
            for cb, result in done:
                cb(result)
        box, node.outbox = node.outbox, {}
        for dst, msgs in box.items():
            # Round-trip through the real wire encoding, as the shell does.
            body = batch(msgs)
            for msg in unframe(body[body.index(b"\r\n") + 2 : -2]):
                self.seq += 1
                at = self.now + self.rng.randint(*self.latency)
                heapq.heappush(self.queue, _Delivery(at, self.seq, name, dst, msg))

    def partition(self, a: str, b: str, both: bool = True) -> None:
        self.cut.add((a, b))
        if both:
            self.cut.add((b, a))

    def heal(self) -> None:
        self.cut.clear()

    def stop(self, name: str) -> None:
        self.stopped.add(name)

    def start(self, name: str) -> None:
        self.stopped.discard(name)

    # --- time --------------------------------------------------------------------------

    def run(self, ms: int) -> None:
        """Advance simulated time by `ms`, delivering messages and ticking every 10 ms."""
        end = self.now + ms
        for name in self.names:
            self._collect(name)
        next_tick = self.now
        while self.now <= end:
            if self.queue and self.queue[0].at <= min(next_tick, end):
                d = heapq.heappop(self.queue)
                self.now = max(self.now, d.at)
                if (d.src, d.dst) in self.cut or d.dst in self.stopped or d.src in self.stopped:
                    self.trace.append(f"{self.now} lost {d.src}->{d.dst} {d.msg[0]}")
                    continue
                node = self.nodes[d.dst]
                node.now = self.now
                node.on_message(d.src, d.msg)
                self._collect(d.dst)
                continue
            if next_tick > end:
                break
            self.now = next_tick
            for name in self.names:
                if name not in self.stopped:
                    node = self.nodes[name]
                    node.now = self.now
                    node.tick()
                    self._collect(name)
            next_tick += 10
        self.now = end

    # --- client operations -------------------------------------------------------------

    def call(self, via: str, op: str, *args: Any, wait_ms: int = 3000) -> Result:
        """Run one coordinator operation through node `via` and wait for its result."""
        box: list[Result] = []
        node = self.nodes[via]
        node.now = self.now
        getattr(node, op)(*args, box.append)
        self._collect(via)
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
