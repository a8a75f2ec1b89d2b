"""Plans that write keys run one at a time per key on their node (commands/plangate.py).

Issue 12: two RENAMEs of one list ran side by side (a client retried the first after its
reply was given up on) and the list ended with 1,761,408 items where it had 1,000,000:
both plans read the source whole, both replaced the destination, and both appended
their slices to it. Here plans run on a simulated 3-node cluster with slices of a few
items, so a plan takes many steps and a second command arrives while the first runs;
the outcome must be one of the serial orders Redis would give."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from dynredis.commands import slicedwrite
from dynredis.commands.gate import KeyGate
from dynredis.commands.table import lookup
from dynredis.core import collstore
from dynredis.core.node import Node
from tests.sim.harness import SimCluster

VIA = "10.0.0.1:7000"


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicedwrite, "SLICE", 4)


class Slot:
    """A client's reply slot: its reply once set, and how often its command was seen
    moving on (`touch`, what server/client.py's unstick watches)."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.steps = 0

    def set(self, reply: bytes) -> None:
        if self.data is None:
            self.data = reply

    def touch(self) -> None:
        self.steps += 1


class Face:
    """The part of a client connection (commands/context.Context) plans use, with the
    node's key gate (server/app.py's one gate per node)."""

    r = None
    w = None
    proto = 2
    perms = None

    def __init__(self, node: Node, gate: KeyGate, slots: list[Slot]) -> None:
        self.node = node
        self.gate = gate
        self.slots = slots
        self.pubsub = type("Subs", (), {"flags": 0})()

    def defer(self) -> Slot:
        slot = Slot()
        self.slots.append(slot)
        return slot

    def put(self, key: bytes, ctx: Any, data: Any, expire_at: int, cb: Any,
            w: int | None = None) -> None:
        self.node.put(key, ctx, data, expire_at, cb, w)


def parse(data: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(data)
    return reader.gets()


class Cluster:
    def __init__(self, sliced_walks: bool = False) -> None:
        self.sim = SimCluster(3, seed=5, sliced_walks=sliced_walks)
        self.gate = KeyGate()

    def start(self, *words: bytes | str) -> Slot:
        """Send a command through VIA; its slot (answered later)."""
        args = [w.encode() if isinstance(w, str) else w for w in words]
        slots: list[Slot] = []

        def go(node: Node) -> None:
            cmd = lookup(args[0])
            assert cmd is not None
            reply = cmd.handler(Face(node, self.gate, slots), args)
            if reply is not None:
                slots.append(Slot())
                slots[-1].set(reply)

        assert self.sim.on_node(VIA, go, catch=False)
        return slots[0]

    def settle(self, *slots: Slot) -> None:
        waited = 0
        while any(s.data is None for s in slots) and waited < 20_000:
            self.sim.run(5)
            waited += 5
        self.sim.run(100)

    def run(self, *words: bytes | str) -> Any:
        slot = self.start(*words)
        self.settle(slot)
        assert slot.data is not None, words
        return parse(slot.data)


def items(n: int, tag: str = "i") -> list[bytes]:
    return [f"{tag}{k}".encode() for k in range(n)]


def test_two_renames_of_one_long_list_end_as_one_after_the_other() -> None:
    c = Cluster()
    c.run("RPUSH", "src", *items(40))
    first = c.start("RENAME", "src", "dst")
    c.sim.run(30)  # the first plan is appending its slices
    assert first.data is None
    second = c.start("RENAME", "src", "dst")  # the client's retry
    c.settle(first, second)
    assert (first.data, second.data) == (b"+OK\r\n", b"-ERR no such key\r\n")
    assert c.run("LRANGE", "dst", "0", "-1") == items(40)
    assert c.run("EXISTS", "src") == 0


def test_two_copies_with_replace_onto_one_key_hold_each_item_once() -> None:
    c = Cluster()
    c.run("RPUSH", "a", *items(30, "a"))
    c.run("RPUSH", "b", *items(30, "b"))
    one = c.start("COPY", "a", "dst", "REPLACE")
    two = c.start("COPY", "b", "dst", "REPLACE")
    c.settle(one, two)
    assert (one.data, two.data) == (b":1\r\n", b":1\r\n")
    assert c.run("LRANGE", "dst", "0", "-1") == items(30, "b")  # the later one's
    assert c.run("LLEN", "a") == 30


@pytest.mark.parametrize("words", [
    ("SUNIONSTORE", "dst", "{k}"),
    ("ZUNIONSTORE", "dst", "1", "{k}"),
    ("SORT", "{k}", "ALPHA", "STORE", "dst"),
])
def test_two_stores_into_one_key_leave_the_later_ones_items_not_a_merge(
        words: tuple[str, ...]) -> None:
    c = Cluster()
    for key, tag in (("x", "x"), ("y", "y")):
        if words[0] == "ZUNIONSTORE":
            c.run("ZADD", key, *[w for n, m in enumerate(items(25, tag))
                                 for w in (str(n), m)])
        elif words[0] == "SORT":
            c.run("RPUSH", key, *items(25, tag))
        else:
            c.run("SADD", key, *items(25, tag))
    slots = [c.start(*[w.replace("{k}", key) for w in words]) for key in ("x", "y")]
    c.settle(*slots)
    assert [s.data for s in slots] == [b":25\r\n", b":25\r\n"]
    if words[0] == "SORT":
        assert c.run("LRANGE", "dst", "0", "-1") == sorted(items(25, "y"))
    elif words[0] == "ZUNIONSTORE":
        assert c.run("ZRANGE", "dst", "0", "-1") == items(25, "y")
    else:
        assert sorted(c.run("SMEMBERS", "dst")) == sorted(items(25, "y"))


def test_a_rename_back_and_forth_waits_for_the_one_before() -> None:
    """RENAME a b then RENAME b a, sent together: the second reads b once the first
    wrote all of it (not its first slice alone) and moves every item back."""
    c = Cluster()
    c.run("RPUSH", "a", *items(40))
    there = c.start("RENAME", "a", "b")
    back = c.start("RENAME", "b", "a")
    c.settle(there, back)
    assert (there.data, back.data) == (b"+OK\r\n", b"+OK\r\n")
    assert c.run("LRANGE", "a", "0", "-1") == items(40)
    assert c.run("EXISTS", "b") == 0


def test_a_plan_given_up_on_before_its_turn_does_not_run() -> None:
    """A plan waiting for another on its keys whose client was answered meanwhile (the
    connection's unstick: "the reply to this command was lost") writes nothing when its
    turn comes: the client was told it failed."""
    c = Cluster()
    c.run("RPUSH", "a", *items(40))
    c.run("RPUSH", "b", *items(8, "b"))
    first = c.start("COPY", "a", "dst")
    second = c.start("RENAME", "b", "dst")
    second.set(b"-ERR internal error: the reply to this command was lost\r\n")
    c.settle(first)
    c.sim.run(500)
    assert first.data == b":1\r\n"
    assert c.run("LRANGE", "dst", "0", "-1") == items(40)
    assert c.run("LRANGE", "b", "0", "-1") == items(8, "b")


def test_a_plan_waiting_for_its_turn_is_seen_moving_on_with_the_one_before() -> None:
    """A plan queued behind another on its keys is touched at each of the other's
    steps: its client's connection does not take it for lost (unstick) while the plan
    before it makes progress."""
    c = Cluster()
    c.run("RPUSH", "src", *items(40))
    first = c.start("RENAME", "src", "dst")
    second = c.start("RENAME", "src", "dst")
    c.sim.run(30)
    assert first.data is None and first.steps > 2
    assert second.steps >= first.steps - 1
    c.settle(first, second)


def test_a_step_waiting_behind_a_walk_of_its_key_is_seen_moving_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first write of a RENAME's destination waits while the destination's records
    are walked (a big list renamed away just before: its records are stripped over loop
    turns, core/collstrip.py, and its views were evicted). Each slice of that walk
    touches the plan: at load, a walk of a million records took over a minute and the
    client was told its reply was lost while the plan went on."""
    monkeypatch.setattr(collstore, "SLICE", 16)
    c = Cluster(sliced_walks=True)
    c.run("RPUSH", "dst", *items(2000, "old"))
    c.run("RPUSH", "src", *items(10))
    for node in c.sim.nodes.values():
        node.coll.store.budget = 8  # views kept: the newest key's only
    old = c.start("RENAME", "dst", "gone")
    c.settle(old)
    slot = c.start("RENAME", "src", "dst")
    c.settle(slot)
    assert slot.data == b"+OK\r\n"
    assert c.run("LRANGE", "dst", "0", "-1") == items(10)
    print("STEPS", slot.steps)
    assert slot.steps > 20  # its 6 steps, and a touch a slice of the walk it waited on


def test_a_delete_behind_a_plan_waits_for_it_and_is_seen_moving_on() -> None:
    """A DEL of a key a plan writes (a read-then-write: it enters the key's gate) runs
    once the plan is done, touched meanwhile at each of the plan's steps; one whose
    client was answered before its turn deletes nothing."""
    c = Cluster()
    c.run("RPUSH", "src", *items(40))
    c.run("RPUSH", "dst", *items(3, "old"))
    plan = c.start("COPY", "src", "dst", "REPLACE")
    c.sim.run(20)
    given_up = c.start("DEL", "dst")
    given_up.set(b"-ERR internal error: the reply to this command was lost\r\n")
    c.settle(plan)
    assert plan.data == b":1\r\n"
    assert c.run("LRANGE", "dst", "0", "-1") == items(40)
    plan = c.start("RENAME", "src", "dst")
    c.sim.run(20)
    wait = c.start("DEL", "dst")
    c.sim.run(20)
    assert plan.data is None and wait.steps > 0
    c.settle(plan, wait)
    assert (plan.data, wait.data) == (b"+OK\r\n", b":1\r\n")
    assert c.run("EXISTS", "dst", "src") == 0
