"""The core's blocked clients (core/blocking.py), without a network: a node alone, whose
waiters' attempts the test answers by hand, so that the order of attempts, their
coalescing, deadlines and cancellations can be read off exactly."""

from __future__ import annotations

from typing import Any

from dynredis.core import driver
from dynredis.core.blocking import RETRY_MS, Waiter
from dynredis.core.node import Node
from dynredis.storage.memory import MemoryEngine

T0 = 1_000_000


class Attempts:
    """Records every attempt (waiter name, key) and lets the test answer them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.log: list[tuple[str, bytes]] = []
        self.open: list[tuple[str, bytes, Any]] = []
        self.results: dict[str, Any] = {}

    def attempt_of(self, name: str) -> Any:
        def attempt(key: bytes, done: Any) -> None:
            self.log.append((name, key))
            self.open.append((name, key, done))

        return attempt

    def finish_of(self, name: str) -> Any:
        def finish(result: Any) -> None:
            self.results[name] = result

        return finish

    def answer(self, name: str, result: Any) -> None:
        """Answer the open attempt of `name` (as an attempt's callback runs: from the
        node's done list)."""
        found = [a for a in self.open if a[0] == name]
        assert len(found) == 1, (name, self.open)
        self.open.remove(found[0])
        self.node.done.append((found[0][2], result))
        settle(self.node)


def _raise(exc: Exception) -> None:
    raise exc


def settle(node: Node) -> None:
    driver.settle(node, _raise)


def setup() -> tuple[Node, Attempts]:
    node = Node("a:1", b"A", MemoryEngine())
    node.now = T0
    node.blocking.next_retry = T0 + RETRY_MS  # no periodic retry unless a test ticks
    return node, Attempts(node)


def block(node: Node, att: Attempts, name: str, keys: list[bytes],
          deadline: int = 0) -> Waiter:
    w = node.blocking.block(keys, att.attempt_of(name), att.finish_of(name), deadline)
    settle(node)
    return w


def test_a_new_key_is_tried_once_when_its_first_client_blocks_then_on_each_change() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"])
    assert att.log == [("c1", b"k")]  # the write-before-the-watch check
    att.answer("c1", None)
    assert node.blocking.queues[b"k"].waiters and "c1" not in att.results
    node.blocking.changed(b"k")
    assert att.log[-1] == ("c1", b"k")
    att.answer("c1", b"item")
    assert att.results == {"c1": b"item"}
    assert b"k" not in node.blocking.queues and not node.blocking.waiting
    assert b"k" not in node.watches.listeners  # the last waiter left: unwatched


def test_the_client_that_blocked_first_on_a_key_is_served_first_then_the_next_tries() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"])
    att.answer("c1", None)
    block(node, att, "c2", [b"k"])  # not a new key: no extra attempt
    assert att.log == [("c1", b"k")]
    node.blocking.changed(b"k")
    assert att.log[-1] == ("c1", b"k")
    att.answer("c1", b"x")
    assert att.results == {"c1": b"x"}
    assert att.log[-1] == ("c2", b"k")  # more may be left: the next one tries
    att.answer("c2", None)
    assert "c2" not in att.results and list(node.blocking.waiting) != []
    node.blocking.changed(b"k")
    att.answer("c2", b"y")
    assert att.results == {"c1": b"x", "c2": b"y"}


def test_changes_during_an_attempt_make_one_more_attempt_after_it() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"])
    for _ in range(5):
        node.blocking.changed(b"k")
    assert att.log == [("c1", b"k")]  # one attempt at a time
    att.answer("c1", None)
    assert att.log == [("c1", b"k")] * 2  # the five changes: one more attempt
    att.answer("c1", None)
    assert len(att.log) == 2  # nothing changed since: it waits


def test_a_client_on_two_keys_tries_one_at_a_time_and_keeps_its_place_on_both() -> None:
    node, att = setup()
    block(node, att, "c1", [b"a", b"b"])
    assert att.log == [("c1", b"a")]  # b waits: c1 is busy with a
    att.answer("c1", None)
    assert att.log[-1] == ("c1", b"b")
    att.answer("c1", None)
    block(node, att, "c2", [b"b"])
    node.blocking.changed(b"a")
    node.blocking.changed(b"b")  # c1 first on b too, but busy with a: b waits for it
    assert att.log[-1] == ("c1", b"a")
    assert ("c2", b"b") not in att.log
    att.answer("c1", None)
    assert att.log[-1] == ("c1", b"b")
    att.answer("c1", b"from-b")
    assert att.results["c1"] == b"from-b"
    assert att.log[-1] == ("c2", b"b")
    assert b"a" not in node.blocking.queues  # c1 left a's queue too


def test_a_deadline_ends_the_wait_with_none_but_an_attempt_in_flight_finishes_first() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"], deadline=T0 + 100)
    att.answer("c1", None)
    block(node, att, "c2", [b"j"], deadline=T0 + 100)  # its first attempt still open
    node.now = T0 + 100
    node.blocking.expire(node.now)
    settle(node)
    assert att.results == {"c1": None}  # not busy: ended at once
    assert "c2" not in att.results
    att.answer("c2", b"got-it")  # what the attempt got wins over the deadline
    assert att.results["c2"] == b"got-it"
    block(node, att, "c3", [b"m"], deadline=T0 + 150)
    node.now = T0 + 200
    node.blocking.expire(node.now)
    att.answer("c3", None)  # nothing: the deadline's None
    assert att.results["c3"] is None
    assert not node.blocking.waiting and not node.blocking.queues


def test_end_gives_the_callers_result_and_cancel_forgets_the_client() -> None:
    node, att = setup()
    w1 = block(node, att, "c1", [b"k"])
    att.answer("c1", None)
    w2 = block(node, att, "c2", [b"k"])
    node.blocking.end(w1, b"unblocked")
    settle(node)
    assert att.results == {"c1": b"unblocked"}
    node.blocking.cancel(w2)
    settle(node)
    assert "c2" not in att.results
    assert not node.blocking.waiting and b"k" not in node.watches.listeners


def test_a_cancelled_clients_attempt_is_unheard_and_lets_the_next_client_try() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"])
    att.answer("c1", None)
    w2 = block(node, att, "c2", [b"k"])
    block(node, att, "c3", [b"k"])
    node.blocking.changed(b"k")
    assert att.log[-1] == ("c1", b"k")
    att.answer("c1", b"one")
    assert att.log[-1] == ("c2", b"k")
    node.blocking.cancel(w2)  # c2 went away while its attempt was in flight
    att.answer("c2", b"two")  # popped for nobody (as a reply lost on the network)
    assert "c2" not in att.results
    assert att.log[-1] == ("c3", b"k")  # more may be left: c3 tries
    att.answer("c3", None)
    assert list(node.blocking.waiting)[0].keys == [b"k"]


def test_every_key_waited_on_is_tried_each_retry_period_even_without_a_change() -> None:
    node, att = setup()
    block(node, att, "c1", [b"k"])
    att.answer("c1", None)
    block(node, att, "c2", [b"j"])
    att.answer("c2", None)
    node.now = T0 + RETRY_MS - 1
    node.blocking.tick(node.now)
    assert len(att.log) == 2
    node.now = T0 + RETRY_MS
    node.blocking.tick(node.now)
    assert att.log[2:] == [("c1", b"k"), ("c2", b"j")]
    att.answer("c1", None)
    att.answer("c2", None)
    node.now = T0 + 2 * RETRY_MS - 1
    node.blocking.tick(node.now)
    assert len(att.log) == 4


def test_a_key_listed_twice_queues_the_client_once() -> None:
    node, att = setup()
    w = block(node, att, "c1", [b"k", b"k"])
    assert w.keys == [b"k"]
    assert att.log == [("c1", b"k")]


def test_waits_answered_before_their_deadline_do_not_pile_up_in_the_deadline_heap() -> None:
    node, att = setup()
    for i in range(1000):
        block(node, att, f"c{i}", [b"k"], deadline=T0 + 3_600_000)
        att.answer(f"c{i}", b"item")  # served long before its deadline
    assert len(node.blocking.deadlines) <= 64 + 2
    block(node, att, "late", [b"k"], deadline=T0 + 10)
    att.answer("late", None)
    node.now = T0 + 10
    node.blocking.expire(node.now)
    settle(node)
    assert att.results["late"] is None
