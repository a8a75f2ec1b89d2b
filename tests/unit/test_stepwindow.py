"""The node's window over plans' batches (core/stepwindow.py): never more steps in flight
than its limit however many plans run, every step started once, batches first come first
served, and steps that answer at once do not recurse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import collection
from dynredis.core.stepwindow import Batch, StepWindow


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 8), sizes=st.lists(st.integers(0, 12), max_size=8),
       answers=st.lists(st.tuples(st.booleans(), st.integers(0, 1000)), max_size=200))
def test_no_more_in_flight_than_the_limit_and_every_step_once_in_order(
        limit: int, sizes: list[int], answers: list[tuple[bool, int]]) -> None:
    """Steps answer at once or later, in any order: at most `limit` are ever unanswered,
    each starts once, and they start batch after batch, in each batch's order."""
    window = StepWindow(limit)
    started: list[tuple[int, int]] = []
    unanswered: list[int] = []  # indexes into `started`
    most = [0]
    draws = iter(answers)

    def start_of(b: int) -> Callable[[int], None]:
        def start(i: int) -> None:
            started.append((b, i))
            most[0] = max(most[0], window.running)
            at_once, _ = next(draws, (False, 0))
            if at_once:
                window.release()
            else:
                unanswered.append(len(started) - 1)
        return start

    for b, size in enumerate(sizes):
        window.add(Batch(start_of(b), size))
    while unanswered:
        _, pick = next(draws, (False, 0))
        unanswered.pop(pick % len(unanswered))
        window.release()
    assert started == [(b, i) for b, size in enumerate(sizes) for i in range(size)]
    assert most[0] <= limit
    assert window.running == 0 and not window.waiting


def test_a_hundred_thousand_steps_answered_at_once_do_not_recurse() -> None:
    """A one-node cluster answers a local read at once: the window's loop starts the next
    step, no call stack per step."""
    window = StepWindow(4)
    count = [0]

    def start(i: int) -> None:
        count[0] += 1
        window.release()

    window.add(Batch(start, 100_000))
    assert count[0] == 100_000 and window.running == 0


def _lookup_plan(n: int, tag: bytes) -> Any:
    """A plan as SORT's lookups: two batches of n one-key steps, then their results."""
    first = yield tuple([b"dyn.get", b"%s:%d" % (tag, i)] for i in range(n))
    second = yield tuple([b"dyn.get", b"%s:x%d" % (tag, i)] for i in range(n))
    return [*first, *second]


def test_plans_batches_through_one_window_keep_their_results() -> None:
    """33 plans' batches of 256 lookups through a window of 1,024, answered in a
    scrambled order later: never more than 1,024 unanswered, each plan's reply its own
    results in its batches' order."""
    window = StepWindow(1024)
    waiting: list[tuple[list[bytes], Callable[[Any], None]]] = []
    most = [0]

    def run_step(args: list[bytes], cb: Callable[[Any], None]) -> None:
        waiting.append((args, cb))
        most[0] = max(most[0], len(waiting))

    replies: dict[int, Any] = {}
    for p in range(33):
        collection.drive(_lookup_plan(256, b"p%d" % p), run_step,
                         lambda reply, p=p: replies.__setitem__(p, reply), None, window)
    turn = 0
    while waiting:
        turn += 1
        now, later = waiting[::2], waiting[1::2]  # (half answered this turn, the rest after)
        waiting[:] = later
        for args, cb in reversed(now):
            cb((None, args[1]))
    assert most[0] == 1024
    for p in range(33):
        tag = b"p%d" % p
        assert replies[p] == ([b"%s:%d" % (tag, i) for i in range(256)]
                              + [b"%s:x%d" % (tag, i) for i in range(256)])


def test_a_failed_step_still_frees_its_place() -> None:
    """A lookup that fails ends its plan with the error; the window's places come back
    (the other plans go on)."""
    window = StepWindow(2)
    out: dict[str, Any] = {}
    pending: list[tuple[list[bytes], Callable[[Any], None]]] = []
    collection.drive(_lookup_plan(3, b"a"), lambda a, cb: pending.append((a, cb)),
                     lambda reply: out.__setitem__("a", reply), None, window)
    collection.drive(_lookup_plan(1, b"b"), lambda a, cb: cb((None, a[1])),
                     lambda reply: out.__setitem__("b", reply), None, window)
    assert not out
    while pending:
        args, cb = pending.pop(0)
        cb(("NOQUORUM", None) if args[1] == b"a:1" else (None, args[1]))
    assert out["a"].startswith(b"-NOQUORUM")
    assert out["b"] == [b"b:0", b"b:x0"]
    assert window.running == 0 and not window.waiting


def test_a_finished_plan_leaves_no_cycle_for_the_collector() -> None:
    """A plan's driver and batches are freed by reference counting as they finish: no
    reference cycle holds a batch's steps until the cyclic collector runs (with 33 SORTs
    of 100,000 lookups, 218,000 dead steps walked by each older collection)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        out: list[Any] = []
        for window in (None, StepWindow(8)):
            collection.drive(_lookup_plan(64, b"k"), lambda a, cb: cb((None, a[1])),
                             out.append, None, window)
        assert len(out) == 2 and out[0] == out[1]
        del out
        assert gc.collect() == 0
    finally:
        gc.enable()
