"""The list operations list commands are made of, as plain functions of a key's view,
single-key steps and plans: what LPOP, LMPOP, LMOVE and RPOPLPUSH run, and what their
blocking forms (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH) run before and after they wait.

A list is a sequence CRDT (core/listpos.py): every item has a position that never
changes, kept in order by the view (`KeyView.lorder`, a sorted list: O(log n) by index).
A push takes a new position before the head or after the tail; a pop removes the item
versions its coordinator holds, so two pops through different nodes at the same time
may both return the same item (at-least-once), and an LSET of an item concurrent with
its pop keeps it (additions win over concurrent removals: core/elements.py).

Steps that cross nodes return plain data (None, the WRONG marker, bytes, ints, lists),
never a reply: the plans here turn them into replies.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..core.collview import KeyView
from ..core.records import LIST
from .collection import Built, Op, internal_step, on_string, wrong_type

LEFT, RIGHT = 0, 1
WHERE_WORDS = (b"LEFT", b"RIGHT")
WRONG = "WRONGTYPE"  # a step's result when the key holds another type than a list

# A plan's piece: yields single-key steps, gets their results, returns plain data.
Steps = Generator[list[bytes], Any, Any]


def parse_where(arg: bytes) -> int | None:
    """LEFT or RIGHT (any case), or None."""
    word = arg.upper()
    if word == b"LEFT":
        return LEFT
    if word == b"RIGHT":
        return RIGHT
    return None


# --- on one key's view ---------------------------------------------------------------


def end_position(v: KeyView, where: int) -> bytes | None:
    """The position of the list's first (LEFT) or last (RIGHT) item, or None if empty."""
    order = v.lorder
    if not order:
        return None
    return order[0] if where == LEFT else order[-1]  # type: ignore[no-any-return]


def push_items(v: KeyView, where: int, values: list[bytes]) -> int:
    """Push each value at the head (LEFT) or the tail (RIGHT), in turn, as LPUSH/RPUSH
    do; returns the list's new length."""
    order = v.lorder
    if where != LEFT and len(values) > 1:
        # one batch of positions and versions (KeyView.append_items): an RPUSH of
        # 100,000 items cost its coordinator ~10 us an item, one at a time
        v.append_items(order[-1] if order else None, values)
        return v.count(LIST)
    for value in values:
        if not order:
            v.list_insert(None, None, value)
        elif where == LEFT:
            v.list_insert(None, order[0], value)
        else:
            v.list_insert(order[-1], None, value)
    return v.count(LIST)


def pop_items(v: KeyView, where: int, count: int) -> list[bytes]:
    """Remove up to `count` items from the head (LEFT) or the tail (RIGHT); returns
    them in the order they were popped."""
    order = v.lorder
    n = min(count, len(order))
    if where == LEFT:
        positions = list(order.islice(0, n))
    else:
        positions = list(order.islice(len(order) - n, len(order), reverse=True))
    out = v.values_at(LIST, positions)
    left = len(order) - n
    v.remove(LIST, positions, n,
             lambda: order.islice(n, len(order)) if where == LEFT else order.islice(0, left))
    return out


def pop_op(where: int, count: int) -> Op:
    """Pop up to `count` items: None if the key holds no list, WRONG if it holds another
    type, else the items popped (at least one)."""

    def op(v: KeyView) -> Any:
        if wrong_type(v, "list"):
            return WRONG
        if not v.lorder:
            return None
        return pop_items(v, where, count)

    return op


def push_op(where: int, values: list[bytes]) -> Op:
    """Push values (making the list if the key has none): the new length, or WRONG."""

    def op(v: KeyView) -> Any:
        if wrong_type(v, "list"):
            return WRONG
        return push_items(v, where, values)

    return op


def peek_op(where: int) -> Op:
    """The item at one end without removing it: None, WRONG, or [position, item]."""

    def op(v: KeyView) -> Any:
        if wrong_type(v, "list"):
            return WRONG
        pos = end_position(v, where)
        if pos is None:
            return None
        return [pos, v.get(LIST, pos)]

    return op


def remove_op(pos: bytes) -> Op:
    """Remove the item at a position if it is still there: 1, else 0."""

    def op(v: KeyView) -> Any:
        if wrong_type(v, "list") or v.get(LIST, pos) is None:
            return 0
        v.put(LIST, pos, None)
        return 1

    return op


def rotate_op(wherefrom: int, whereto: int) -> Op:
    """LMOVE with the same source and destination: move the item at one end to the
    other, in one step (None, WRONG, or the item). The new item goes in before the old
    one goes, so the list never empties on the way; moving to the same end, or the only
    item, changes nothing."""

    def op(v: KeyView) -> Any:
        if wrong_type(v, "list"):
            return WRONG
        pos = end_position(v, wherefrom)
        if pos is None:
            return None
        item = v.get(LIST, pos)
        if wherefrom != whereto and v.count(LIST) > 1:
            push_items(v, whereto, [item])
            v.put(LIST, pos, None)
        return item

    return op


# --- single-key steps of plans (args: [name, key, ...]) ------------------------------


def _where_arg(arg: bytes) -> int:
    return LEFT if arg == b"LEFT" else RIGHT  # the plans here write these words


@internal_step("dyn.lpop")
def build_pop_step(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.lpop, key, LEFT|RIGHT, count] -> pop_op's result."""
    return args[1], on_string(pop_op(_where_arg(args[2]), int(args[3])), WRONG)


@internal_step("dyn.lpush")
def build_push_step(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.lpush, key, LEFT|RIGHT, value ...] -> push_op's result."""
    return args[1], on_string(push_op(_where_arg(args[2]), list(args[3:])), WRONG)


@internal_step("dyn.lpeek")
def build_peek_step(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.lpeek, key, LEFT|RIGHT] -> peek_op's result."""
    return args[1], on_string(peek_op(_where_arg(args[2])), WRONG)


@internal_step("dyn.lremove")
def build_remove_step(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.lremove, key, position] -> remove_op's result."""
    return args[1], on_string(remove_op(args[2]), 0)


@internal_step("dyn.lrotate")
def build_rotate_step(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.lrotate, key, from LEFT|RIGHT, to LEFT|RIGHT] -> rotate_op's result."""
    return args[1], on_string(rotate_op(_where_arg(args[2]), _where_arg(args[3])), WRONG)


# --- plans over several keys ---------------------------------------------------------


def pop_first(keys: list[bytes], where: int, count: int) -> Steps:
    """LMPOP's core: pop up to `count` items from the first key, in order, that holds a
    non-empty list. Returns (key, items), WRONG if a key before it holds another type,
    or None. Each key is tried where it lives, one after the other."""
    for key in keys:
        got = yield [b"dyn.lpop", key, WHERE_WORDS[where], b"%d" % count]
        if got is None:
            continue
        if got == WRONG:
            return WRONG
        return key, list(got)
    return None


def move(src: bytes, dst: bytes, wherefrom: int, whereto: int,
         source_wrong: Any = WRONG) -> Steps:
    """LMOVE's core: the item moved, None if the source holds no list, or WRONG (the
    source, then the destination, checked as Redis does; a source of another type gives
    `source_wrong` instead: a blocked BLMOVE waits on, as Redis' does).

    Across two keys it runs as three steps, each where its key lives: read the item at
    the source's end, push it to the destination (which refuses a key of another type),
    remove that item from the source. Not atomic: in between, other clients may see the
    item in both lists, and a pop of the same item through another node may return it
    too (at-least-once); but a step that fails (no quorum) leaves the item where it was,
    or at worst in both lists, never in neither."""
    if src == dst:
        got = yield [b"dyn.lrotate", src, WHERE_WORDS[wherefrom], WHERE_WORDS[whereto]]
        return source_wrong if got == WRONG else got
    peeked = yield [b"dyn.lpeek", src, WHERE_WORDS[wherefrom]]
    if peeked is None:
        return None
    if peeked == WRONG:
        return source_wrong
    pos, item = peeked
    pushed = yield [b"dyn.lpush", dst, WHERE_WORDS[whereto], item]
    if pushed == WRONG:
        return WRONG
    yield [b"dyn.lremove", src, pos]
    return item
