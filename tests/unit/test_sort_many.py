"""SORT over many elements, done by C loops where it may: the weights read at once
(sortspec.sort_scores) are those read one by one as Redis' strtod reads them, and the
order by weight (sortspec.order) is that of the (weight, element) pairs, whatever the
elements and however many weights are equal."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import sortspec

ODD = [b"1e400", b"-1e400", b"1e-400", b"0", b"-0", b"00", b"0.0", b"1e", b"", b"+-1",
       b"1..2", b".5", b"5.", b"2.2250738585072014e-308", b"4e-320", b"-4.9e-324",
       b"1.7976931348623157e308", b"1.8e308", b"12345678901234567890", b"0e0", b"+.e1",
       b"e5", b"-", b".", b"1 ", b" 1", b"1_0", b"nan", b"inf", b"-infinity", b"0x1p3",
       b"1\x002", b"\x00"]


def _one_by_one(raws: list[bytes]) -> list[float | None]:
    return [sortspec.sort_score(r) for r in raws]


@pytest.mark.parametrize("odd", ODD)
def test_each_odd_weight_among_plain_numbers(odd: bytes) -> None:
    raws = [b"3", odd, b"-2.5", b"1e5"]
    assert repr(sortspec.sort_scores(raws)) == repr(_one_by_one(raws))


def test_many_weights() -> None:
    rng = random.Random(7)
    raws = [rng.choice(ODD) if rng.random() < 0.01 else
            repr(rng.uniform(-1e6, 1e6)).encode() for _ in range(5000)]
    assert repr(sortspec.sort_scores(raws)) == repr(_one_by_one(raws))
    integers = [b"%d" % rng.randrange(-10**9, 10**9) for _ in range(5000)]
    assert sortspec.sort_scores(integers) == _one_by_one(integers)
    assert sortspec.sort_scores([]) == []


def _pairs_order(elements: list[bytes], weights: list[float], desc: bool) -> list[bytes]:
    pairs = sorted(zip(weights, range(len(elements)), strict=True),
                   key=lambda p: (p[0], elements[p[1]]), reverse=desc)
    return [elements[i] for _, i in pairs]


@pytest.mark.parametrize("desc", [False, True])
def test_order_by_weight_is_the_order_of_the_pairs(desc: bool) -> None:
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randrange(0, 40)
        elements = [rng.choice([b"a", b"b", b"10", b"2", b"x\x00"]) + bytes([rng.randrange(3)])
                    for _ in range(n)]
        weights = [rng.choice([0.0, -0.0, 1.0, 2.5, -1.0, float("inf")]) for _ in range(n)]
        got = sortspec.order(elements, weights, False, desc, False, None)  # type: ignore[arg-type]
        assert got == _pairs_order(elements, weights, desc)
    distinct = [float(i * 7919 % 1000) for i in range(1000)]
    elements = [b"%d" % w for w in distinct]
    got = sortspec.order(elements, distinct, False, desc, False, None)  # type: ignore[arg-type]
    assert got == _pairs_order(elements, distinct, desc)


def test_a_list_read_in_no_order_sorts_as_in_list_order() -> None:
    """SORT by the items themselves reads a list's values in no particular order (the
    map's, here the reverse of list order): the reply is that of the list in order,
    ALPHA's items equal up to a NUL byte included (read again in list order)."""
    from tests.collharness import LocalRunner

    r = LocalRunner()
    for item in [b"a\x00z", b"10", b"01", b"1.0", b"1", b"b", b"a\x00b"]:
        r.run("LPUSH", "l", item)
    assert r.run("SORT", "l", "ALPHA") == \
        b"*7\r\n$2\r\n01\r\n$1\r\n1\r\n$3\r\n1.0\r\n$2\r\n10\r\n$3\r\na\x00b\r\n" \
        b"$3\r\na\x00z\r\n$1\r\nb\r\n"
    r.run("DEL", "l")
    for item in [b"10", b"01", b"1.0", b"1", b"-2"]:
        r.run("LPUSH", "l", item)
    assert r.run("SORT", "l", "DESC") == \
        b"*5\r\n$2\r\n10\r\n$3\r\n1.0\r\n$1\r\n1\r\n$2\r\n01\r\n$2\r\n-2\r\n"


@pytest.mark.parametrize("options", [(), ("DESC",), ("ALPHA",), ("ALPHA", "DESC"),
                                     ("ALPHA", "LIMIT", "3", "9"), ("LIMIT", "5", "-1"),
                                     ("BY", "w_*"), ("BY", "w_*", "DESC", "GET", "#")])
@pytest.mark.parametrize("distinct", [False, True])
def test_a_sort_weighed_and_sorted_over_loop_turns_orders_as_at_once(
        monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...], distinct: bool) -> None:
    """Weights read, runs sorted, the sorted weights looked at for equal ones and the
    elements picked in their order a slice a turn: the reply of a sort at once, with
    equal weights (the elements' bytes decide) or none."""
    from dynredis.commands import collection, sortcmd
    from tests.collharness import LocalRunner

    rng = random.Random(5)
    if distinct:
        items = [b"%d" % (i * 37 % 63 - 20) for i in range(63)]
    else:
        items = [b"%d" % rng.randrange(-50, 50) for _ in range(60)] + [b"1.0", b"01", b"1"]
    r = LocalRunner()
    r.run("RPUSH", "l", *items)
    for i, item in enumerate(items[::2]):  # (the others weigh 0)
        r.run("SET", b"w_" + item, b"%d" % (i * 5 % 17 if distinct else i % 4))
    at_once = r.run("SORT", "l", *options)
    monkeypatch.setattr(sortcmd, "SLICE", 8)
    reply, steps = _sorted_by_steps(r, options)
    assert reply == at_once
    assert steps.count(collection.TURN) >= 63 // 8


@pytest.mark.parametrize("desc", [False, True])
def test_equal_weights_across_the_slices_looked_at_apart_are_seen(
        monkeypatch: pytest.MonkeyPatch, desc: bool) -> None:
    """The one pair of equal weights lies across two slices of the sorted weights: its
    elements are still ordered by their bytes."""
    from dynredis.commands import sortcmd

    monkeypatch.setattr(sortcmd, "SLICE", 2)
    elements = [b"e", b"d", b"c", b"b", b"a"]
    weights = [5.0, 2.0, 3.0, 2.0, 1.0]  # sorted: 1 2 | 2 3 | 5
    steps = sortcmd._by_weight(elements, weights, desc)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        assert done.value == _pairs_order(elements, weights, desc)


def _weight_order():  # type: ignore[no-untyped-def]
    try:
        from dynredis import _weightorder
    except ImportError:
        return None
    return _weightorder.order


WEIGHTS = st.lists(st.one_of(st.floats(allow_nan=False),
                             st.sampled_from([0.0, -0.0, 1.0, -1.0, float("inf"),
                                              float("-inf"), 5e-324, -5e-324])),
                   max_size=300)


@settings(deadline=None, max_examples=300)
@given(WEIGHTS, st.booleans())
def test_the_c_order_by_weight_is_pythons_stable_sort(weights: list[float], desc: bool) -> None:
    """The C helper orders positions as `sort(key=weights.__getitem__, reverse=desc)`
    does (equal weights, -0.0 and 0.0 among them, in position order either way) and
    tells whether two weights are equal."""
    order = _weight_order()
    if order is None:
        pytest.skip("the C helper is not built (pure Python run)")
    want = sorted(range(len(weights)), key=weights.__getitem__, reverse=desc)
    positions, ties = order(weights, desc)
    assert list(memoryview(positions).cast("I")) == want
    assert ties == (len(set(weights)) < len(weights))


def test_the_c_order_refuses_what_python_compares_otherwise() -> None:
    order = _weight_order()
    if order is None:
        pytest.skip("the C helper is not built (pure Python run)")
    for bad in ([1.0, 2], [float("nan")], [1.0, None]):
        with pytest.raises(TypeError):
            order(bad, False)
    assert order([], True) == (b"", False)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("desc", [False, True])
def test_a_large_order_by_weight_in_turns_is_the_order_of_the_pairs(
        monkeypatch: pytest.MonkeyPatch, native: bool, desc: bool) -> None:
    """_by_weight over more than a slice, by the C order or Python's, with equal
    weights or none: the order of the (weight, element) pairs."""
    from dynredis.commands import sortcmd

    if not native:
        monkeypatch.setattr(sortcmd, "_weight_order", None)
    monkeypatch.setattr(sortcmd, "SLICE", 16)
    rng = random.Random(11)
    for distinct in (True, False):
        n = 200
        weights = ([float(i * 7 % n) for i in range(n)] if distinct
                   else [rng.choice([0.0, -0.0, 1.5, float("inf")]) for _ in range(n)])
        elements = [b"%d" % rng.randrange(50) for _ in range(n)]
        steps = sortcmd._by_weight(elements, weights, desc)
        turns = 0
        try:
            while True:
                next(steps)
                turns += 1
        except StopIteration as done:
            assert done.value == _pairs_order(elements, weights, desc)
        assert turns >= n // 16


def _sorted_by_steps(r: object, options: tuple[str, ...]) -> tuple[bytes, list[list[bytes]]]:
    """SORT l `options` run as a node runs its plan, step by step (a LocalRunner `r`
    taking each): the reply and the steps."""
    from dynredis.commands import collection

    steps: list[list[bytes]] = []
    plan = collection.PLANS["sort"]([b"SORT", b"l", *(o.encode() for o in options)], 2)
    out: list[bytes] = []

    def step(args: list[bytes], cb: object) -> None:
        steps.append(args)
        cb((None, r.step(args)))  # type: ignore[attr-defined,operator]

    collection.drive(plan, step, out.append)  # type: ignore[arg-type]
    return out[0], steps


@pytest.mark.parametrize("options", [("BY", "w_*", "LIMIT", "0", "3"),
                                     ("BY", "nosort", "GET", "w_*", "GET", "#")])
def test_the_keys_a_pattern_names_are_found_and_read_a_slice_a_turn(
        monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...]) -> None:
    """SORT ... BY or GET a pattern over many elements finds the keys it names, and then
    their values per element, RESOLVE_TURN elements a loop turn (a million at once held
    a node ~3 s of CPU: the keys found, then each element's value looked up), with the
    reply of a sort at once."""
    from dynredis.commands import collection, sortcmd
    from tests.collharness import LocalRunner

    items = [b"%d" % (i * 37 % 63) for i in range(63)]
    r = LocalRunner()
    r.run("RPUSH", "l", *items)
    for i, item in enumerate(items[::3]):
        r.run("SET", b"w_" + item, b"%d" % (i % 5))
    at_once = r.run("SORT", "l", *options)
    monkeypatch.setattr(sortcmd, "RESOLVE_TURN", 8)
    reply, steps = _sorted_by_steps(r, options)
    assert reply == at_once
    reads = [i for i, s in enumerate(steps) if s[0] == b"dyn.get"]
    assert len(reads) == 63
    assert steps[:reads[0]].count(collection.TURN) >= 63 // 8  # the keys found
    assert steps[reads[-1]:].count(collection.TURN) >= 63 // 8  # the values looked up


@pytest.mark.parametrize("desc", [(), ("DESC",)])
@pytest.mark.parametrize("limit", [("0", "1"), ("3", "9"), ("50", "-1")])
def test_by_with_limit_is_the_range_of_the_whole_order_by_weight_and_bytes(
        monkeypatch: pytest.MonkeyPatch, desc: tuple[str, ...], limit: tuple[str, str]) -> None:
    """SORT ... BY ... LIMIT: Redis sorts partially, getting the range right, but equal
    weights are ordered by the elements' bytes, so the range is the whole order's (here
    in C over loop turns; Redis' partial sort in Python took ~480 ms of one turn for a
    million elements)."""
    from dynredis.commands import csort
    from tests.collharness import LocalRunner

    rng = random.Random(9)
    items = [b"%d" % rng.randrange(-30, 30) for _ in range(80)] + [b"x", b"y", b"x"]
    r = LocalRunner()
    r.run("RPUSH", "l", *items)
    for i, item in enumerate(items[::3]):  # (ties: most weigh 0, others by i % 5)
        r.run("SET", b"w_" + item, b"%d" % (i % 5))
    whole = r.run("SORT", "l", "BY", "w_*", *desc)

    def refused(*args: object) -> None:
        raise AssertionError("a partial sort in Python")

    monkeypatch.setattr(csort, "pqsort", refused)
    start, count = int(limit[0]), int(limit[1])
    got = r.run("SORT", "l", "BY", "w_*", *desc, "LIMIT", *limit)
    rows = whole.split(b"\r\n")[1:-1]
    elements = rows[1::2]
    chosen = elements[start:] if count < 0 else elements[start:start + count]
    assert got == b"*%d\r\n" % len(chosen) + b"".join(
        b"$%d\r\n%s\r\n" % (len(e), e) for e in chosen)


@pytest.mark.parametrize("options", [(), ("BY", "w_*")])
def test_weights_are_read_a_slice_a_turn_up_to_the_first_that_is_no_number(
        monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...]) -> None:
    """A SORT whose elements (or BY values) are words answers Redis' error after the
    slice holding the first word: not one Python read per element of the whole key in
    one turn (a list of 100,000 words held a node 75-104 ms); numbers are read a slice
    a turn."""
    from dynredis.commands import collection, sortcmd, sortspec
    from tests.collharness import LocalRunner

    numbers = [b"%d" % (i * 37 % 63) for i in range(63)]
    r = LocalRunner()
    r.run("RPUSH", "n", *numbers)
    r.run("RPUSH", "l", *numbers[:20], b"word", *numbers[20:])
    for item in numbers:
        r.run("SET", b"w_" + item, item)
    r.run("SET", b"w_word", b"word")
    want_n = r.run("SORT", "n", *options)
    want_l = r.run("SORT", "l", *options)
    assert want_l.startswith(b"-ERR One or more scores can't be converted into double")
    read: list[int] = []
    scores = sortspec.sort_scores
    monkeypatch.setattr(sortspec, "sort_scores", lambda raws: read.append(len(raws)) or
                        scores(raws))
    monkeypatch.setattr(sortcmd, "SCORES_PER_TURN", 8)
    reply, steps = _sorted_by_steps(r, options)
    assert (reply, sum(read)) == (want_l, 24)  # three slices: the third holds the word
    read.clear()
    monkeypatch.setattr(sortcmd, "RESOLVE_TURN", 1000)
    r_n = LocalRunner()
    r_n.run("RPUSH", "l", *numbers)
    for item in numbers:
        r_n.run("SET", b"w_" + item, item)
    reply, steps = _sorted_by_steps(r_n, options)
    assert (reply, sum(read)) == (want_n, 63)
    assert steps.count(collection.TURN) >= 63 // 8
