"""Write plans sent through different nodes run at one node per destination
(cluster/affinity.py, commands/plangate.py's `destination`).

Issue 12: two RENAMEs of one list sent through two nodes both read the source whole and
both appended every slice to the destination (a 200,000-item list ended with ~400,000):
each node's key gate saw one of them. Here, on a simulated 3-node cluster where each
node has its own gate and its own hand-over (as server/app.py), the second waits for the
first at the destination's node and finds no source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dynredis.cluster import affinity
from dynredis.cluster.affinity import ROUTED, Affinity, routed_key
from dynredis.commands import slicedwrite
from dynredis.commands.databases import storage_key
from dynredis.commands.gate import KeyGate
from dynredis.commands.table import lookup
from dynredis.core.node import Node
from tests.sim.harness import SimCluster
from tests.unit.test_plangate import Face, Slot, items, parse


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicedwrite, "SLICE", 4)


class Handed(Slot):
    """The reply of a command run for another node: goes back to it (`done`), and each
    step of its plan is told (`touch`)."""

    def __init__(self, done: Callable[[bytes], None], touch: Callable[[], None]) -> None:
        super().__init__()
        self.done = done
        self.moved = touch

    def set(self, reply: bytes) -> None:
        if self.data is None:
            self.data = reply
            self.done(reply)

    def touch(self) -> None:
        super().touch()
        self.moved()


class Client(Face):
    """A client connection of one node, as the hand-over sees it."""

    db = 0
    user = "default"
    cluster_view = False

    def __init__(self, node: Node, gate: KeyGate, slots: list[Any],
                 handed: Handed | None = None) -> None:
        super().__init__(node, gate, slots)
        self.handed = handed

    def defer(self) -> Slot:
        if self.handed is not None:
            self.slots.append(self.handed)
            return self.handed
        return super().defer()

    def hold(self) -> None:
        pass

    def release_hold(self) -> None:
        pass


class Routed:
    def __init__(self) -> None:
        self.sim = SimCluster(3, seed=5)
        self.names = sorted(self.sim.sn)
        self.gates = {name: KeyGate() for name in self.names}
        self.affinity: dict[str, Affinity] = {}
        self.taken: dict[str, list[bytes]] = {name: [] for name in self.names}
        for name in self.names:
            node = self.sim.sn[name].node
            assert node is not None
            self.affinity[name] = Affinity(node, self._runner(name))

    def _runner(self, name: str) -> Any:
        def run(args: list[bytes], user: str, proto: int, r: int, w: int, db: int,
                done: Callable[[bytes], None], touch: Callable[[], None]) -> None:
            self.taken[name].append(args[0])
            node = self.sim.sn[name].node
            cmd = lookup(args[0])
            assert node is not None and cmd is not None
            reply = cmd.handler(Client(node, self.gates[name], [], Handed(done, touch)), args)
            if reply is not None:
                done(reply)

        return run

    def start(self, via: str, *words: str) -> Slot:
        """Send a command through node `via`, handed over where affinity says."""
        args = [w.encode() for w in words]
        slots: list[Slot] = []

        def go(node: Node) -> None:
            cmd = lookup(args[0])
            assert cmd is not None
            client = Client(node, self.gates[via], slots)
            if cmd.name in ROUTED and self.affinity[via].forward(client, cmd.name, args):
                return
            reply = cmd.handler(client, args)
            if reply is not None:
                slots.append(Slot())
                slots[-1].set(reply)

        assert self.sim.on_node(via, go, catch=False)
        return slots[0]

    def settle(self, *slots: Slot) -> None:
        waited = 0
        while any(s.data is None for s in slots) and waited < 20_000:
            self.sim.run(5)
            for name, aff in self.affinity.items():
                self.sim.on_node(name, lambda _, aff=aff: aff.tick())
            waited += 5
        self.sim.run(100)

    def run(self, via: str, *words: str) -> Any:
        slot = self.start(via, *words)
        self.settle(slot)
        assert slot.data is not None, words
        return parse(slot.data)

    def coordinator(self, key: bytes) -> str:
        node = self.sim.sn[self.names[0]].node
        assert node is not None
        return str(node.route(node.partition(key)).targets[0][0])


def test_two_renames_of_one_list_through_two_nodes_end_as_one_after_the_other(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(affinity, "PROGRESS_MS", 1)  # (the plan takes less than a second)
    c = Routed()
    home = c.coordinator(b"dst")
    a, b = [n for n in c.names if n != home]  # both handed over
    c.run(a, "RPUSH", "src", *[i.decode() for i in items(40)])
    first = c.start(a, "RENAME", "src", "dst")
    c.sim.run(30)  # the first plan is appending its slices
    assert first.data is None
    second = c.start(b, "RENAME", "src", "dst")
    c.settle(first, second)
    assert (first.data, second.data) == (b"+OK\r\n", b"-ERR no such key\r\n")
    assert c.run(b, "LRANGE", "dst", "0", "-1") == items(40)
    assert c.run(a, "EXISTS", "src") == 0
    assert c.taken[home] == [b"RENAME", b"RENAME"]
    # both clients' replies were seen working meanwhile (server/client.py's unstick):
    # the second's while it waited for the first at the destination's node
    assert first.steps > 2 and second.steps > 2


def test_two_stores_into_one_key_through_two_nodes_do_not_merge() -> None:
    c = Routed()
    home = c.coordinator(b"dst")
    a, b = [n for n in c.names if n != home]
    c.run(a, "SADD", "x", *[i.decode() for i in items(25, "x")])
    c.run(a, "SADD", "y", *[i.decode() for i in items(25, "y")])
    one = c.start(a, "SUNIONSTORE", "dst", "x")
    two = c.start(b, "SUNIONSTORE", "dst", "y")
    c.settle(one, two)
    assert (one.data, two.data) == (b":25\r\n", b":25\r\n")
    assert sorted(c.run(home, "SMEMBERS", "dst")) == sorted(items(25, "y"))


@pytest.mark.parametrize(("words", "key"), [
    (["rename", "s", "d"], b"d"),
    (["renamenx", "s", "d"], b"d"),
    (["copy", "s", "d", "REPLACE"], b"d"),
    (["sunionstore", "d", "a", "b"], b"d"),
    (["zinterstore", "d", "2", "a", "b"], b"d"),
    (["zrangestore", "d", "s", "0", "-1"], b"d"),
    (["geosearchstore", "d", "s", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"], b"d"),
    (["georadius", "s", "0", "0", "1", "km", "STORE", "d"], b"d"),
    (["sort", "s", "BY", "w:*", "STORE", "d"], b"d"),
    (["move", "k", "3"], storage_key(3, b"k")),
    (["sort", "s", "BY", "w:*"], None),  # a read
    (["smove", "s", "d", "m"], None),  # one element a step: no gate (plangate.py)
    (["lmove", "s", "d", "LEFT", "RIGHT"], None),
    (["move", "k", "x"], None),  # refused where it was sent
])
def test_a_write_plan_is_routed_by_the_key_it_writes_whole(words: list[str],
                                                           key: bytes | None) -> None:
    args = [w.encode() for w in words]
    assert routed_key(words[0], args) == key
