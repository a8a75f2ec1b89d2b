"""SORT over many elements, done by C loops where it may: the weights read at once
(sortspec.sort_scores) are those read one by one as Redis' strtod reads them, and the
order by weight (sortspec.order) is that of the (weight, element) pairs, whatever the
elements and however many weights are equal."""

from __future__ import annotations

import random

import pytest

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
                                     ("ALPHA", "LIMIT", "3", "9"), ("LIMIT", "5", "-1")])
def test_a_sort_weighed_and_sorted_over_loop_turns_orders_as_at_once(
        monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...]) -> None:
    from dynredis.commands import collection, sortcmd
    from tests.collharness import LocalRunner

    rng = random.Random(5)
    items = [b"%d" % rng.randrange(-50, 50) for _ in range(60)] + [b"1.0", b"01", b"1"]
    r = LocalRunner()
    r.run("RPUSH", "l", *items)
    at_once = r.run("SORT", "l", *options)
    monkeypatch.setattr(sortcmd, "SLICE", 8)
    steps: list[list[bytes]] = []
    plan = collection.PLANS["sort"]([b"SORT", b"l", *(o.encode() for o in options)], 2)
    out: list[bytes] = []

    def step(args: list[bytes], cb: object) -> None:
        steps.append(args)
        cb((None, r.step(args)))  # type: ignore[operator]

    collection.drive(plan, step, out.append)  # type: ignore[arg-type]
    assert out[0] == at_once
    assert steps.count(collection.TURN) >= 63 // 8
