"""Large lookup plans take turns on a node (core/planslots.py): 33 pipelined SORT_RO ...
BY of a 1,000,000-member set ran all at once and grew their node to 6.3 GB. Never more
plans hold a place than the limit, places go first come first served, a place comes
back however its plan ends, the waiting plans' clients are kept told they are alive,
and a SORT waiting its turn answers what a SORT run alone answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import collection, sortcmd
from dynredis.commands.sortspec import parse
from dynredis.core.planslots import PlanSlot, PlanSlots

from .test_client_connection import one_client


def _later_list() -> tuple[PlanSlots, list[tuple[Callable[[Any], None], Any]]]:
    """PlanSlots whose answers wait in a list (the node's completions)."""
    due: list[tuple[Callable[[Any], None], Any]] = []
    return PlanSlots(lambda cb, result: due.append((cb, result)), limit=2), due


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=80))
def test_never_more_than_the_limit_and_first_come_first_served(
        moves: list[tuple[bool, int]]) -> None:
    slots, due = _later_list()
    held: list[PlanSlot] = []
    granted: list[int] = []
    asked = 0

    def grant(n: int) -> Callable[[Any], None]:
        def got(result: Any) -> None:
            granted.append(n)
            held.append(result[1])
        return got

    for take, pick in moves:
        if take:
            slots.take(grant(asked))
            asked += 1
        elif held:
            held.pop(pick % len(held)).release()
        while due:  # (the node runs its completions)
            cb, result = due.pop(0)
            cb(result)
        assert slots.running == len(held) <= 2
    assert granted == list(range(len(granted)))  # in the order asked
    while held:  # every plan ends: each one asked got its place in turn
        slot = held.pop(0)
        slot.release()
        slot.release()  # (a second release gives back nothing more)
        while due:
            cb, result = due.pop(0)
            cb(result)
        assert slots.running == len(held) <= 2
    assert granted == list(range(asked))
    assert slots.running == 0 and not slots.waiting


def test_waiting_plans_are_touched_at_each_step_of_a_holder() -> None:
    slots, due = _later_list()
    slots.limit = 1
    touched = [0, 0]
    holder: list[PlanSlot] = []
    slots.take(lambda r: holder.append(r[1]))
    slots.take(lambda r: None, lambda: touched.__setitem__(0, touched[0] + 1))
    slots.take(lambda r: None, lambda: touched.__setitem__(1, touched[1] + 1))
    cb, result = due.pop(0)
    cb(result)
    assert not due and len(slots.waiting) == 2
    for _ in range(3):
        holder[0].step()
    assert touched == [3, 3]


def _big_lookups(n: int) -> Any:
    """A plan as a big SORT's: a place, then lookups, then their results."""
    spec = parse([b"SORT", b"k", b"BY", b"w_*"], True, True)
    assert not isinstance(spec, bytes)
    return sortcmd.sort_plan(b"k", spec, 2)


def _run(slots: PlanSlots, fail: bool, out: list[Any]) -> list[Callable[[], None]]:
    """Drive one SORT plan over a source of 20,000 elements; its lookups answered
    later (returned), the first of them failing when `fail`."""
    pending: list[Callable[[], None]] = []

    def run_step(args: list[bytes], cb: Callable[[Any], None]) -> None:
        if args == collection.PLAN_SLOT:
            slots.take(cb)
        elif args[0] == b"dyn.sortsrc":
            cb((None, ("set", [b"m%d" % i for i in range(20_000)])))
        elif args == collection.TURN:
            cb((None, None))
        else:
            err = "NOQUORUM" if fail and not pending else None
            pending.append(lambda: cb((err, None)))

    collection.drive(_big_lookups(20_000), run_step, out.append)
    return pending


def test_a_place_comes_back_when_its_plan_fails_or_ends() -> None:
    slots = PlanSlots(lambda cb, result: cb(result), limit=1)
    first: list[Any] = []
    second: list[Any] = []
    failing = _run(slots, True, first)
    waiting = _run(slots, False, second)
    assert failing and not waiting  # the second waits for the place
    assert slots.running == 1 and len(slots.waiting) == 1
    for answer in failing:
        answer()
    assert first[0].startswith(b"-NOQUORUM")
    assert slots.running == 1 and not slots.waiting  # the second holds it now
    assert not second


SET = 20_000  # members: more lookups than sortcmd.TURN_ELEMENTS


def test_pipelined_big_sorts_take_turns_and_answer_as_one_alone(tmp_path: Path) -> None:
    """Four SORT ... BY of a 20,000-member set and a small one, in one write: the big
    ones run one at a time on the node, the small one does not wait for a place, and
    every reply is what the same SORT sent alone answers."""

    async def main() -> None:
        srv, conn, transport = one_client(tmp_path)
        coll = srv.node.coll
        slots = coll.plan_slots
        seen = {"running": 0, "waiting": 0, "takes": 0}
        take = slots.take

        def counted(cb: Any, touch: Any = None) -> None:
            seen["takes"] += 1
            take(cb, touch)

        slots.take = counted  # type: ignore[method-assign]

        async def send(data: bytes, lines: int) -> bytes:
            transport.sent = b""
            conn.data_received(data)
            for _ in range(60_000):
                seen["running"] = max(seen["running"], slots.running)
                seen["waiting"] = max(seen["waiting"], len(slots.waiting))
                if not conn.waiting and transport.sent.count(b"\r\n") >= lines:
                    break
                await asyncio.sleep(0.001)
            return transport.sent

        def line(*words: str) -> bytes:
            return b"".join([b"*%d\r\n" % len(words)] + [
                b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words])

        try:
            for lo in range(0, SET, 5000):
                await send(line("SADD", "s", *[f"m{i}" for i in range(lo, lo + 5000)]), 1)
            await send(line("SADD", "small", "b", "a", "c"), 1)
            await send(line("MSET", "w_m7", "-5", "w_m19999", "-9", "w_a", "3"), 1)
            big = line("SORT", "s", "BY", "w_*", "LIMIT", "0", "2")
            small = line("SORT", "small", "BY", "w_*")
            alone = await send(big, 5)
            assert alone == b"*2\r\n$6\r\nm19999\r\n$2\r\nm7\r\n"
            assert seen["takes"] == 1
            together = await send(big * 4 + small, 4 * 5 + 7)
            assert together == alone * 4 + b"*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n"
            assert seen["takes"] == 5  # (not the small one)
            assert seen["running"] == 1 and seen["waiting"] >= 1
            assert slots.running == 0 and not slots.waiting
            # In a transaction and in a script, behind a big SORT of another write.
            multi = line("MULTI") + big + big + line("EXEC")
            script = line("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'w_*', "
                          "'LIMIT', '0', '2')", "1", "s")
            got = await send(big + multi + script, 5 + 4 + 2 * 5 + 5)
            assert got == (alone + b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n" + alone * 2
                           + alone)
            assert slots.running == 0 and not slots.waiting
        finally:
            srv.scripts.stop()

    asyncio.run(main())
