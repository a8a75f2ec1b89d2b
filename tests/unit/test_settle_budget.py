"""A settle given `spent` (core/driver.py) hands back the rest of a chain of operations
that finish at once, for a later loop turn: on a 1-node cluster every write is
acknowledged as it is made, and a FLUSHDB or a RENAME of a long list ran whole in one
settle (24-34 s and 6.8-16 s without a reply to any other client)."""

from __future__ import annotations

from typing import Any

from dynredis.core import driver
from dynredis.core.node import Node
from dynredis.storage.memory import MemoryEngine


def _raise(exc: Exception) -> None:
    raise exc


def chain(node: Node, length: int, ran: list[int]) -> None:
    """A chain of `length` callbacks, each finishing the next one at once."""

    def step(i: int) -> Any:
        def cb(_result: Any) -> None:
            ran.append(i)
            if i + 1 < length:
                node.done.append((step(i + 1), None))
        return cb

    node.done.append((step(0), None))


class Asks:
    """A `spent` that says the time is spent from its `after`-th ask on."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked > self.after


def test_a_chain_is_handed_back_once_spent_and_finishes_in_order_later() -> None:
    node = Node("a:1", b"A", MemoryEngine())
    ran: list[int] = []
    chain(node, 5000, ran)
    calls = 0
    while True:
        left = driver.settle(node, _raise, Asks(100))
        calls += 1
        assert node.done == []
        if left is None:
            break
        assert len(ran) == 101 * calls  # the first batch, then one per ask not spent
        node.done.extend(left)  # (the server: in its next loop turn's walk step)
    assert ran == list(range(5000))
    assert calls == 50


def test_a_settle_without_spent_runs_everything() -> None:
    node = Node("a:1", b"A", MemoryEngine())
    ran: list[int] = []
    chain(node, 5000, ran)
    assert driver.settle(node, _raise) is None
    assert ran == list(range(5000))
    chain(node, 500, ran)
    assert driver.settle(node, _raise, Asks(10**9)) is None  # never spent: all of it


def test_a_batch_finished_at_once_is_cut_after_any_callback_and_keeps_its_order() -> None:
    """Callbacks that finished together are asked about one by one: each may start
    costly work (33 pipelined SORT_RO ... BY of a big set ran back to back, 0.5-1.6 s)."""
    node = Node("a:1", b"A", MemoryEngine())
    ran: list[int] = []
    for i in range(300):
        node.done.append((lambda _r, i=i: ran.append(i), None))
    asks = Asks(2)
    left = driver.settle(node, _raise, asks)
    # (asked before the first too: its time counts; 33 plans' turns due at once ran two
    # or three 20-30 ms slices in one walk step when the clock started after the first)
    assert ran == [0, 1] and asks.asked == 3
    assert left is not None and node.done == [] and len(left) == 298
    node.done.extend(left)
    assert driver.settle(node, _raise) is None
    assert ran == list(range(300))


def test_callbacks_finished_by_a_cut_batch_wait_behind_its_rest() -> None:
    node = Node("a:1", b"A", MemoryEngine())
    ran: list[str] = []

    def first(_r: object) -> None:
        ran.append("first")
        node.done.append((lambda _r: ran.append("finished by first"), None))

    node.done.append((first, None))
    node.done.append((lambda _r: ran.append("second"), None))
    left = driver.settle(node, _raise, Asks(0))
    assert ran == ["first"] and left is not None
    node.done.extend(left)
    assert driver.settle(node, _raise) is None
    assert ran == ["first", "second", "finished by first"]


def test_the_last_callback_asks_nothing() -> None:
    node = Node("a:1", b"A", MemoryEngine())
    ran: list[int] = []
    node.done.append((lambda _r: ran.append(1), None))
    asks = Asks(0)
    assert driver.settle(node, _raise, asks) is None
    assert ran == [1] and asks.asked == 0
