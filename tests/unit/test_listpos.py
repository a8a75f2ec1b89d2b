"""List positions: byte order is list order, there is always room, ties break by dot."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dynredis.core import listpos

ints = st.integers(-(2**63), 2**63)


@given(st.lists(ints, min_size=2, max_size=20))
def test_integer_encoding_preserves_order(xs):
    encoded = [listpos._enc_int(x) for x in xs]
    assert sorted(encoded) == [listpos._enc_int(x) for x in sorted(xs)]
    for x, e in zip(xs, encoded, strict=True):
        assert listpos._dec_int(e, 0) == (x, len(e))


# An operation: push at the head, the tail, or insert before/after the element at an index.
ops = st.lists(st.tuples(st.sampled_from(["lpush", "rpush", "ins_after", "ins_before"]),
                         st.integers(0, 1000)), min_size=1, max_size=60)


@given(ops)
def test_positions_follow_the_operations_like_a_python_list(steps):
    model: list[int] = []  # element numbers in list order
    positions: list[bytes] = []  # their positions, in the same order
    for n, (op, at) in enumerate(steps):
        dot = (b"actor", n + 1)
        if not positions:
            pos = listpos.first(dot)
            model.append(n)
            positions.append(pos)
            continue
        i = at % len(positions)
        if op == "lpush":
            pos, where = listpos.before(positions[0], dot), 0
        elif op == "rpush":
            pos, where = listpos.after(positions[-1], dot), len(positions)
        elif op == "ins_after":
            right = positions[i + 1] if i + 1 < len(positions) else None
            pos, where = listpos.between(positions[i], right, dot), i + 1
        else:
            left = positions[i - 1] if i > 0 else None
            pos, where = listpos.between_before(left, positions[i], dot), i
        model.insert(where, n)
        positions.insert(where, pos)
        assert positions == sorted(positions), (op, i)
        assert len(set(positions)) == len(positions)
    for pos in positions:  # every position decodes into well-formed levels
        assert all(len(actor) == 5 for _, actor, _ in listpos.levels(pos))


def test_head_and_tail_pushes_stay_one_level_deep():
    head = tail = listpos.first((b"a", 1))
    for n in range(2, 20_000):
        head = listpos.before(head, (b"a", n))
        tail = listpos.after(tail, (b"a", n))
    assert len(list(listpos.levels(head))) == 1 and len(head) < 20
    assert len(list(listpos.levels(tail))) == 1 and len(tail) < 20


def test_concurrent_inserts_at_the_same_place_are_both_kept_in_one_order():
    base = listpos.first((b"a", 1))
    x = listpos.before(base, (b"b", 7))  # two nodes push at the head concurrently
    y = listpos.before(base, (b"c", 3))
    assert x != y and x < base and y < base
    assert sorted([y, x]) == sorted([x, y])  # the same order everywhere
    z = listpos.between(min(x, y), max(x, y), (b"a", 2))  # and room between them
    assert min(x, y) < z < max(x, y)


def test_inserting_again_and_again_next_to_one_item_keeps_positions_shallow():
    """LINSERT BEFORE (or AFTER) the same pivot many times: positions stay short."""
    left, pivot = listpos.first((b"a", 1)), listpos.after(listpos.first((b"a", 1)), (b"a", 2))
    items = [left, pivot]
    for n in range(3, 1000):
        i = items.index(pivot)
        pos = listpos.between(items[i - 1], pivot, (b"a", n))  # just before the pivot
        items.insert(i, pos)
        after = listpos.between(pivot, items[i + 2] if i + 2 < len(items) else None,
                                (b"b", n))  # and just after it
        items.insert(i + 2, after)
    assert items == sorted(items) and len(set(items)) == len(items)
    assert max(len(p) for p in items) < 100
